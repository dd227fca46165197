"""``auditgraph governance`` commands for policy bindings, the gate, releases and rollbacks, and rule files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from governance import binding
from governance import gate as gates
from governance.rules import builtin_packs, load_policy
from lineage.cli import render
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
from lineage.graph import Graph
from lineage.graphcheck import check_graph

STATUS_STYLE = {
    "pass": "PASS",
    "fail": "FAIL",
    "warn": "WARN",
    "not_evaluated": "NOT EVALUATED",
    "not_applicable": "N/A",
}


@click.command()
@click.argument("models", metavar="MODELS")
@click.option(
    "--policy",
    "policy_names",
    multiple=True,
    required=True,
    help="A rule file or built-in pack every release must pass (repeatable).",
)
@click.option("--reason", default="", help="Why, recorded with the binding.")
@click.option("--replace", is_flag=True, help="Allow dropping a policy the glob's current binding holds (recorded).")
@store_option
@actor_option
@domain_errors
def require(models, policy_names, reason, replace, store_url, actor):
    """Bind models to the policies every release of them must pass.

    MODELS is a model id or a glob over ids (quote it: 'model:credit/*'). A
    release of a matching model must include every bound policy; a policy
    is bound by the digest of its rules, so a rule file edited after binding
    must be bound again. For each glob the latest binding holds; dropping a
    policy it held needs --replace, and reports list every binding. An
    administrative action: once the store has an admin API key, it needs one.

    \b
    Example:
        auditgraph governance require 'model:demo/*' --policy baseline --policy nist-ai-rmf --reason "MRM-2026-04"
    """
    policy = load_policy(list(policy_names))
    with connect(store_url) as store:
        seq = binding.bind(store, models, policy, operator(store, actor, "binding policies"), reason, replace)
    click.echo(f"releases of {models} must pass {', '.join(policy.sources)} (ledger {seq})")


@click.command()
@click.argument("model", metavar="MODEL")
@store_option
@json_option
@domain_errors
def required(model, store_url, as_json):
    """Show the policies a release of MODEL must pass, and the bindings that say so.

    \b
    Example:
        auditgraph governance required model:demo/churn-classifier@3
    """
    with connect(store_url) as store:
        bound = binding.required(store, Graph(store).resolve(model).id)
    if as_json:
        emit_json([b.__dict__ for b in bound])
    elif not bound:
        click.echo("no policy is bound to this model: any policy may release it")
    else:
        render.table(
            None, ["policy", "rules digest", "glob", "ledger"], ((b.name, b.digest, b.glob, b.seq) for b in bound)
        )


def _print_gate(result: gates.GateResult) -> None:
    verdict = "PASSED" if result.outcome == "pass" else "BLOCKED"
    blocking = result.blocking
    if blocking:
        click.echo(f"{verdict}: {len(blocking)} blocking rule(s) for {result.model}")
        for r in blocking:
            click.echo(f"  {r.rule}: {r.reason}")
    else:
        click.echo(f"{verdict}: {result.model}")
    render.table(
        None,
        ["status", "severity", "rule", "observed", "threshold", "reason", "evidence"],
        (
            (
                STATUS_STYLE[r.status],
                r.severity,
                r.rule,
                _short(r.observed),
                _short(r.threshold),
                r.reason,
                ", ".join(r.evidence[:6]) + (" ..." if len(r.evidence) > 6 else ""),
            )
            for r in result.results
        ),
    )
    if result.seq:
        click.echo(f"recorded as ledger entry {result.seq}")


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release: bool) -> None:
    if release:
        _decide(
            lambda store, policy: gates.release(store, model, policy, default_actor(actor)),
            policy_names,
            store_url,
            as_json,
            junit_file,
            "release",
            "released {model} (ledger {seq})",
            "not released: the gate blocked it",
        )
    else:
        _decide(
            lambda store, policy: (
                gates.record(store, gates.evaluate(store, model, policy), default_actor(actor)),
                None,
            ),
            policy_names,
            store_url,
            as_json,
            junit_file,
            "release",
            None,
            None,
        )


def _write_junit(result: gates.GateResult, path: Path) -> None:
    """The gate result as JUnit XML, by the ``junit`` report format (registered by the reports plugin)."""
    from lineage.plugins import registry

    fmt = registry().report_formats.get("junit")
    if fmt is None:
        raise click.ClickException("--junit needs the junit report format, which the reports plugin registers")
    gate = {**result.model_dump(exclude={"results"}), "rules": [r.model_dump() for r in result.results]}
    path.write_bytes(fmt.render_bytes({"model": {"id": result.model}, "gate": gate}, None))


def _decide(
    action, policy_names, store_url, as_json, junit_file, key: str, done: str | None, refused: str | None
) -> None:
    """Run a gate decision (gate, release, rollback) and report it: exit 0 passed, 1 blocked.

    An error that stops it (a bad rule file, an unknown model, an unreachable store) is raised to
    ``domain_errors``, which exits with that error's own code.
    """
    policy = load_policy(list(policy_names))
    with connect(store_url) as store:
        result, seq = action(store, policy)
    if junit_file:
        _write_junit(result, Path(junit_file))
    if as_json:
        emit_json({**result.model_dump(), key: seq})
    else:
        _print_gate(result)
        if done:
            click.echo(done.format(model=result.model, seq=seq) if seq else refused)
    sys.exit(0 if result.outcome == "pass" else 1)


@click.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option(
    "--policy",
    "policy_names",
    multiple=True,
    required=True,
    metavar="FILE|PACK",
    help="A rule file or built-in pack (repeatable).",
)
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@click.option(
    "--verify-graph",
    is_flag=True,
    help="First check the whole graph against its ledger (as 'audit verify --graph'); refuse to run, exit 5, "
    "if anything differs.",
)
@store_option
@actor_option
@json_option
@domain_errors
def gate(model, policy_names, junit_file, verify_graph, store_url, actor, as_json):
    """Evaluate every applicable rule; exit 0 if it passes, 1 if blocked, else the error's code (2 bad input).

    Passed and failed rules are all printed with observed value, threshold and
    evidence, and the whole result is recorded in the ledger. With
    --verify-graph the gate first replays the ledger and compares the graph
    with it; a graph edited outside auditgraph (a deleted edge, a forged facet)
    makes it refuse to run (exit 5, naming what differs), recording nothing.

    \b
    Example:
        auditgraph governance gate model:demo/churn-classifier@3 --policy baseline --policy rules/privacy.yaml --junit gate.xml
        auditgraph governance gate model:demo/churn-classifier@3 --policy baseline --verify-graph
    """
    if verify_graph:
        load_policy(list(policy_names))  # a bad rule file is reported before the replay, not after
        with connect(store_url) as store, render.progress("verifying the graph", store.head().seq) as advance:
            check_graph(store, advance).require("the gate did not run")
    _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release=False)


@click.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--policy", "policy_names", multiple=True, required=True, metavar="FILE|PACK")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@store_option
@actor_option
@json_option
@domain_errors
def release(model, policy_names, junit_file, store_url, actor, as_json):
    """Run the gate and record a release only if it passes (exit codes as for gate).

    A release always checks first that what the gate reads of the graph (the
    model version's upstream, the jobs of its runs: their nodes, facets and the
    edges among them) is what the ledger projects; if not it is refused (exit 5,
    naming what differs) and nothing is recorded.

    \b
    Example:
        auditgraph governance release model:demo/churn-classifier@3 --policy baseline
    """
    _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release=True)


@click.command()
@click.argument("model", metavar="MODEL")
@click.option("--to", "to_version", required=True, metavar="MODEL@VERSION", help="An earlier released version.")
@click.option("--reason", required=True)
@click.option(
    "--policy",
    "policy_names",
    multiple=True,
    required=True,
    help="Rule file or built-in pack the version must pass again (repeatable; must include bound policies).",
)
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write the gate result as JUnit XML.")
@store_option
@actor_option
@json_option
@domain_errors
def rollback(model, to_version, reason, policy_names, junit_file, store_url, actor, as_json):
    """Make an earlier released version current again, if it passes the gate now.

    A rollback is a release of an older version: the gate runs again under
    POLICY (which must include every policy bound to the model), and the
    rollback is recorded only if it passes. Exit 0 rolled back, 1 blocked,
    else the error's code (as for gate); like a release, it is refused (exit
    5) if what the gate reads of the graph is not what the ledger projects.

    \b
    Example:
        auditgraph governance rollback model:demo/churn-classifier --to model:demo/churn-classifier@2 --reason "drift in v3" --policy baseline
    """
    _decide(
        lambda store, policy: gates.rollback(store, model, to_version, reason, policy, default_actor(actor)),
        policy_names,
        store_url,
        as_json,
        junit_file,
        "rollback",
        "rolled back to {model} (ledger {seq})",
        "not rolled back: the gate blocked it",
    )


@click.command()
@click.argument("model", metavar="MODEL")
@store_option
@json_option
@domain_errors
def releases(model, store_url, as_json):
    """The release history of a model: releases and rollbacks, newest last.

    \b
    Example:
        auditgraph governance releases model:demo/churn-classifier
    """
    from lineage.ids import parse_id

    with connect(store_url) as store:
        entity = str(parse_id(Graph(store).resolve(model).id).entity())
        history = gates.release_history(store, entity)
    if as_json:
        emit_json(history)
    else:
        render.table(
            f"releases of {entity}",
            ["ledger", "decision", "version", "previous", "at"],
            ((h["seq"], h["decision"], h["model"], h.get("previous"), h["at"]) for h in history),
        )


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE|PACK...")
@domain_errors
def validate(files):
    """Check rule files without evaluating anything; exit 2 with file:line errors if any is invalid.

    \b
    Example:
        auditgraph governance validate rules/*.yaml
    """
    policy = load_policy(list(files))
    click.echo(f"ok: {len(policy.rules)} rule(s) in {len(policy.sources)} file(s)")


@click.command()
def packs():
    """List the built-in rule packs (usable as --policy NAME).

    \b
    Example:
        auditgraph governance packs
    """
    for name, path in sorted(builtin_packs().items()):
        policy = load_policy([name])
        click.echo(f"{name}: {len(policy.rules)} rule(s)  {path}")


COMMANDS = (require, required, gate, release, rollback, releases, validate, packs)
