"""Options shared by every command, and the one place errors become exit codes.

Data goes to stdout, messages to stderr. Our errors exit with their class's code and a one-line
reason (``lineage.errors.EXIT_CODES``: invalid input 2, like click's own usage errors; unavailable
3; not found 4; conflict 5; unauthorized 6; forbidden 7); 1 is a negative answer (a blocked gate,
a ledger that does not verify), never an error.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from lineage.errors import LineageError
from lineage.openlineage import format_time, parse_time
from lineage.store import ENV_VAR, Store, open_store


def store_option(fn: Callable) -> Callable:
    return click.option(
        "--store",
        "store_url",
        envvar=ENV_VAR,
        metavar="URL",
        help=f"Store URL (sqlite:///path.db, neo4j://user:password@host:7687; the password runs to the last '@' "
        f"and is never printed). Default: ${ENV_VAR}, else sqlite under ~/.local/share/auditgraph/store.db.",
    )(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Write JSON to stdout, for scripts.")(fn)


def format_option(*choices: str) -> Callable:
    def decorate(fn: Callable) -> Callable:
        fn = click.option(
            "--format",
            "fmt",
            type=click.Choice(["table", "json", *choices]),
            default="table",
            show_default=True,
            help="Output format (--json is short for --format json).",
        )(fn)
        return json_option(fn)

    return decorate


def actor_option(fn: Callable) -> Callable:
    return click.option(
        "--actor",
        default=None,
        metavar="NAME",
        envvar="AUDITGRAPH_ACTOR",
        help="Who is recording this, as written in the ledger (default: $AUDITGRAPH_ACTOR, else cli:<OS login name>).",
    )(fn)


def default_actor(actor: str | None) -> str:
    """The operator an entry made from the CLI is recorded as.

    1. ``--actor``; 2. ``AUDITGRAPH_ACTOR``; 3. ``cli:<OS login name>`` (``cli:uid-<n>`` if the
    login name cannot be found).
    """
    if actor and actor.strip():
        return actor.strip()
    if env := os.environ.get("AUDITGRAPH_ACTOR", "").strip():
        return env
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return f"cli:uid-{os.getuid()}" if hasattr(os, "getuid") else "cli:unknown"


def operator(store, actor: str | None, action: str) -> str:
    """Who performs an administrative action from the CLI (registering keys, binding policies, revoking).

    1. While the store holds no admin API key, one local operator administers it (single-operator
       mode): the entry names ``--actor``, else ``AUDITGRAPH_ACTOR``, else ``cli:<OS login>``.
    2. Once it holds one, ``AUDITGRAPH_API_KEY`` must be an admin key of this store, and the entry
       names that key; ``--actor`` cannot say otherwise.
    """
    from lineage.server.auth import AuthError, KeyVerifier, ScopeError, has_admin_key

    if not has_admin_key(store):
        return default_actor(actor)
    token = os.environ.get("AUDITGRAPH_API_KEY", "").strip()
    if not token:
        raise AuthError(f"{action} needs an admin API key once the store has one: set AUDITGRAPH_API_KEY")
    principal = KeyVerifier().verify(store, f"Bearer {token}")
    if not principal.allows("admin"):
        raise ScopeError(
            f"{action} needs an admin API key; AUDITGRAPH_API_KEY ({principal.name}) lacks the admin scope"
        )
    if actor and actor.strip() and actor.strip() != principal.actor:
        raise ScopeError(
            f"{action} is recorded as the admin key's holder ({principal.actor}); --actor cannot change it"
        )
    return principal.actor


def as_of_option(fn: Callable) -> Callable:
    return click.option(
        "--as-of",
        "as_of",
        metavar="TIME",
        callback=time_callback,
        help="Answer as of this ISO 8601 time, years 0001-9999 in UTC (edges that became true later are left out).",
    )(fn)


def time_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment, _ = parse_time(value, where=param.opts[0])
    except LineageError as e:
        raise click.BadParameter(str(e)) from None
    return format_time(moment)


def domain_errors(fn: Callable) -> Callable:
    """Turn our errors into a one-line message on stderr and the error's own exit code (``EXIT_CODES``).

    The code comes from the error's class (``Invalid`` 2, ``Unavailable`` 3, ``NotFound`` 4...), never
    from its message; 1 stays for a negative answer, which the command itself exits with.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LineageError as e:
            error = click.ClickException(str(e))
            error.exit_code = e.exit_code
            raise error from None

    return wrapper


def connect(store_url: str | None) -> Store:
    return open_store(store_url)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def want_json(fmt: str, as_json: bool) -> bool:
    return as_json or fmt == "json"


def is_terminal() -> bool:
    return sys.stderr.isatty()
