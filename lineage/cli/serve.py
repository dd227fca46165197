"""``auditgraph serve``, ``auditgraph keys ...`` and ``auditgraph hooks ...``."""

from __future__ import annotations

import click

from lineage import hooks as webhooks
from lineage.cli import render
from lineage.cli.audit import checkpoint_every_option, log_key_file_option
from lineage.cli.options import (
    actor_option,
    connect,
    default_actor,
    domain_errors,
    emit_json,
    json_option,
    operator,
    store_option,
)
from lineage.server import auth


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--max-body-bytes",
    default=10 << 20,
    show_default=True,
    type=click.IntRange(1024),
    help="Larger request bodies (also after gzip decompression) get 413.",
)
@click.option("--public-reads", is_flag=True, help="Let queries through without an API key (writes always need one).")
@click.option("--no-webhooks", is_flag=True, help="Do not deliver webhooks from this server.")
@click.option(
    "--allow-private-targets",
    is_flag=True,
    help="Deliver webhooks to loopback, private and link-local addresses too (refused by default, "
    "checked at each delivery), e.g. 'auditgraph serve --allow-private-targets' for a receiver "
    "on this machine.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes. Kept-alive connections are as fast with several as with one.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="A request head not complete this long after its first byte (or after connecting) gets 408 and "
    "the connection is closed.",
)
@click.option(
    "--body-timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1),
    metavar="SECONDS",
    help="A request body not fully received this long after the server starts reading it gets 408.",
)
@click.option(
    "--keep-alive-timeout",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    metavar="SECONDS",
    help="An idle keep-alive connection is closed after this long.",
)
@click.option(
    "--limit-concurrency",
    default=512,
    show_default=True,
    type=click.IntRange(1),
    metavar="N",
    help="Past N open connections or requests in progress (per worker), new ones get 503.",
)
@checkpoint_every_option("after a write (published at GET /api/v1/checkpoint; 1: after every write)")
@log_key_file_option
@domain_errors
def serve(
    store_url,
    host,
    port,
    max_body_bytes,
    public_reads,
    no_webhooks,
    workers,
    allow_private_targets,
    header_timeout,
    body_timeout,
    keep_alive_timeout,
    limit_concurrency,
    checkpoint_every,
    log_key_file,
):
    """Run the HTTP API: OpenLineage ingestion, lineage queries, OpenAPI at /docs.

    Point any OpenLineage producer at it with OPENLINEAGE_URL=http://HOST:PORT
    and OPENLINEAGE_API_KEY=<a key with the ingest scope>.

    Slow and stalled clients are cut off: see --header-timeout, --body-timeout,
    --keep-alive-timeout and --limit-concurrency.

    \b
    Example:
        auditgraph keys create airflow --scope ingest
        auditgraph serve --port 5000
        auditgraph serve --port 5000 --workers 2
        auditgraph serve --header-timeout 5 --body-timeout 30 --limit-concurrency 256
        auditgraph serve --checkpoint-every 1000 --log-key-file ~/.config/auditgraph/log.key
    """
    import json
    import os

    import uvicorn

    from lineage.server.app import ServerConfig, create_app
    from lineage.server.limits import uvicorn_config

    config = ServerConfig(
        store_url=store_url,
        max_body_bytes=max_body_bytes,
        public_reads=public_reads,
        webhooks=not no_webhooks,
        allow_private_targets=allow_private_targets,
        body_timeout=body_timeout,
        checkpoint_every=checkpoint_every or 0,
        log_key_file=str(log_key_file) if log_key_file else None,
    )
    options = dict(
        host=host,
        port=port,
        log_level="info",
        header_timeout=header_timeout,
        timeout_keep_alive=keep_alive_timeout,
        limit_concurrency=limit_concurrency,
    )
    if workers == 1:
        server = uvicorn.Server(uvicorn_config(create_app(config), **options))
        server.run()
        if not server.started:
            raise SystemExit(3)  # as uvicorn.run: it could not start (the port is taken, say)
        return
    from uvicorn.supervisors import Multiprocess

    os.environ["AUDITGRAPH_SERVE_CONFIG"] = json.dumps(config.__dict__)
    uv = uvicorn_config("lineage.server.factory:app", factory=True, workers=workers, **options)
    Multiprocess(uv, sockets=[uv.bind_socket()]).run()


@click.group()
def keys():
    """Create, list and revoke API keys for the HTTP API.

    \b
    Example:
        auditgraph keys create ci-pipeline --scope ingest --scope read
    """


@keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(auth.SCOPES),
    help="What the key may do (repeatable).",
)
@store_option
@actor_option
@json_option
@domain_errors
def create_key(name, scopes, store_url, actor, as_json):
    """Create a key; prints the token once (only its hash is kept).

    \b
    Example:
        auditgraph keys create spark-prod --scope ingest
    """
    with connect(store_url) as store:
        key_id, token = auth.create_key(store, name, list(scopes), operator(store, actor, "creating an API key"))
    if as_json:
        emit_json({"key_id": key_id, "token": token, "scopes": sorted(scopes)})
    else:
        click.echo(token)
        render.note(f"key {key_id} ({', '.join(sorted(scopes))}); the token is not shown again")


@keys.command("list")
@store_option
@json_option
@domain_errors
def list_keys(store_url, as_json):
    """List keys (never their tokens).

    \b
    Example:
        auditgraph keys list --json
    """
    with connect(store_url) as store:
        rows = auth.list_keys(store)
    if as_json:
        emit_json(rows)
    else:
        render.table(
            None,
            ["key id", "name", "scopes", "created", "revoked"],
            ((r["key_id"], r["name"], ",".join(r["scopes"]), r["created_at"], r["revoked"]) for r in rows),
        )


@keys.command("revoke")
@click.argument("key_id")
@click.option("--reason", default="", help="Why, for the audit log.")
@store_option
@actor_option
@domain_errors
def revoke_key(key_id, reason, store_url, actor):
    """Revoke a key; requests with it fail from then on.

    \b
    Example:
        auditgraph keys revoke 3f2a9c0d1b2e4f56 --reason "laptop lost"
    """
    with connect(store_url) as store:
        auth.revoke_key(store, key_id, operator(store, actor, "revoking an API key"), reason)
    click.echo(f"revoked {key_id}")


@click.group()
def hooks():
    """Manage webhook subscriptions and read their delivery log.

    \b
    Example:
        auditgraph hooks add https://ci.example.com/retrain --event lineage.upstream_version
    """


@hooks.command("add")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=click.Choice(webhooks.EVENTS),
    help="Which events to send (repeatable).",
)
@click.option("--description", default="")
@click.option(
    "--allow-private-targets",
    is_flag=True,
    help="Accept a URL on a loopback, private or link-local address (the server must allow them too).",
)
@store_option
@actor_option
@json_option
@domain_errors
def add_hook(url, events, description, allow_private_targets, store_url, actor, as_json):
    """Subscribe URL; prints the secret its receiver checks signatures with.

    URL is http:// or https:// without credentials (receivers check the
    signature instead). Its host must resolve only to public addresses, checked
    now and again before each delivery, unless --allow-private-targets is given
    here and to 'auditgraph serve'.

    \b
    Example:
        auditgraph hooks add https://ci.example.com/retrain --event lineage.upstream_version
        auditgraph hooks add http://10.0.0.5:8080/hook --event governance.check_failed --allow-private-targets
    """
    with connect(store_url) as store:
        hook_id, secret = webhooks.subscribe(
            store, url, list(events), default_actor(actor), description, allow_private=allow_private_targets
        )
    if as_json:
        emit_json({"hook_id": hook_id, "secret": secret})
    else:
        click.echo(f"{hook_id} {secret}")
        render.note("check X-Auditgraph-Signature with this secret (see README: Webhooks)")


@hooks.command("list")
@store_option
@json_option
@domain_errors
def list_hooks(store_url, as_json):
    """List active subscriptions.

    \b
    Example:
        auditgraph hooks list
    """
    with connect(store_url) as store:
        rows = webhooks.subscriptions(store)
    if as_json:
        emit_json(rows)
    else:
        render.table(
            None, ["hook id", "url", "events"], ((h["hook_id"], h["url"], ",".join(h["events"])) for h in rows)
        )


@hooks.command("remove")
@click.argument("hook_id")
@store_option
@actor_option
@domain_errors
def remove_hook(hook_id, store_url, actor):
    """Stop sending to a subscription.

    \b
    Example:
        auditgraph hooks remove 9b1c2d3e4f5a6b7c
    """
    with connect(store_url) as store:
        webhooks.unsubscribe(store, hook_id, default_actor(actor))
    click.echo(f"removed {hook_id}")


@hooks.command("deliveries")
@click.option("--hook", "hook_id", default=None, help="Only this subscription.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@store_option
@json_option
@domain_errors
def list_deliveries(hook_id, limit, store_url, as_json):
    """The delivery log: each webhook sent, how many attempts, and the outcome.

    \b
    Example:
        auditgraph hooks deliveries --hook 9b1c2d3e4f5a6b7c --json
    """
    with connect(store_url) as store:
        rows = webhooks.deliveries(store, hook_id, limit)
    if as_json:
        emit_json(rows)
    else:
        render.table(
            None,
            ["at", "hook", "event", "status", "attempts", "http"],
            ((d["at"], d["hook_id"], d["event"], d["status"], d["attempts"], d["http_status"]) for d in rows),
        )
