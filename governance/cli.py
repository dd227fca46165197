"""``auditgraph governance ...``: metadata, keys, approvals, the gate and releases."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from governance import approvals as appr, binding, gate as gates, records
from governance.evidence import evidence_digest, evidence_view
from governance.rules import builtin_packs, load_policy
from lineage.cli import render
from lineage.cli.options import (actor_option, connect, default_actor, domain_errors, emit_json, json_option, operator,
                                  store_option)
from lineage.graph import Graph

STATUS_STYLE = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "not_evaluated": "NOT EVALUATED",
                "not_applicable": "N/A"}


@click.group()
def governance():
    """Rules, checks, signed approvals and the release gate.

    \b
    Example:
        auditgraph governance gate model:demo/churn-classifier@3 --policy baseline
    """


# --- metadata ------------------------------------------------------------------

@governance.command()
@click.argument("node_id", metavar="ID")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the tags instead of adding them.")
@store_option
@actor_option
@domain_errors
def tag(node_id, tags, remove, store_url, actor):
    """Tag a dataset, a version or a model (pii, restricted, deprecated, licence:cc-by-4.0 ...).

    A tag on a dataset applies to all its versions.

    \b
    Example:
        auditgraph governance tag dataset:postgres://crm-db:5432/crm.public.customers pii
    """
    with connect(store_url) as store:
        seqs = records.tag(store, node_id, list(tags), default_actor(actor), remove=remove)
    click.echo(f"{'removed' if remove else 'tagged'} {', '.join(tags)} (ledger {', '.join(map(str, seqs))})")


@governance.command()
@click.argument("node_id", metavar="ID")
@click.argument("owners", nargs=-1, required=True)
@store_option
@actor_option
@domain_errors
def owners(node_id, owners, store_url, actor):
    """Record who owns a model or dataset (replaces the previous owners).

    \b
    Example:
        auditgraph governance owners model:demo/churn-classifier alice@example.com ml-platform
    """
    with connect(store_url) as store:
        seq = records.set_owners(store, node_id, list(owners), default_actor(actor))
    click.echo(f"owners recorded (ledger {seq})")


@governance.command("intended-use")
@click.argument("node_id", metavar="ID")
@click.option("--use", "use", required=True, help="What the model is for.")
@click.option("--limitation", "limitations", multiple=True, help="A known limitation (repeatable).")
@store_option
@actor_option
@domain_errors
def intended_use(node_id, use, limitations, store_url, actor):
    """Record a model's intended use and limitations.

    \b
    Example:
        auditgraph governance intended-use model:demo/churn-classifier --use "rank accounts for retention calls" --limitation "not for pricing"
    """
    with connect(store_url) as store:
        seq = records.set_intended_use(store, node_id, use, list(limitations), default_actor(actor))
    click.echo(f"intended use recorded (ledger {seq})")


def _metric(ctx, param, values):
    out = {}
    for text in values:
        name, sep, value = text.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise click.BadParameter(f"{text!r}: expected NAME=NUMBER") from None
        if not sep or not name:
            raise click.BadParameter(f"{text!r}: expected NAME=NUMBER")
    return out


@governance.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--metric", "metrics", multiple=True, required=True, callback=_metric, help="NAME=VALUE (repeatable).")
@click.option("--dataset", metavar="ID", help="The dataset (version) it was measured on.")
@store_option
@actor_option
@domain_errors
def evaluate(model, metrics, dataset, store_url, actor):
    """Record an evaluation: metrics of a model version, measured on a dataset.

    \b
    Example:
        auditgraph governance evaluate model:demo/churn-classifier@3 --metric auc=0.91 --metric accuracy=0.87
    """
    with connect(store_url) as store:
        seq = records.record_evaluation(store, model, metrics, default_actor(actor), dataset)
    click.echo(f"evaluation recorded (ledger {seq})")


# --- keys and approvals -----------------------------------------------------------

@governance.command()
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role this key may sign for (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private key (created with mode 0600; never overwritten).")
@click.option("--identity", "identities", multiple=True, metavar="ACTOR",
              help="A ledger identity this person records entries as (cli:<login>, an API key's name); "
                   "separation-of-duties rules need them (repeatable).")
@store_option
@actor_option
@domain_errors
def keygen(name, roles, out, identities, store_url, actor):
    """Make an Ed25519 signing key for an approver and register its public key.

    NAME is the person: quorums count distinct names. --identity ties the
    person to the identities their other entries are recorded under, so a
    rule with separate_from_training can tell whether they trained the model.

    \b
    Example:
        auditgraph governance keygen "Priya Shah" --role privacy-officer --identity cli:priya --out ~/.auditgraph/priya.pem
    """
    with connect(store_url) as store:
        key_id = appr.generate_key(store, name, list(roles), out, operator(store, actor, "registering a signing key"),
                                   list(identities))
    click.echo(key_id)
    render.note(f"private key written to {out}; keep it to yourself")


@governance.command("keys")
@store_option
@json_option
@domain_errors
def list_keys(store_url, as_json):
    """List registered approver keys.

    \b
    Example:
        auditgraph governance keys --json
    """
    with connect(store_url) as store:
        keys = appr.registered_keys(store)
    rows = [{k: v for k, v in key.items() if k != "public_key"} for key in keys.values()]
    if as_json:
        emit_json(rows)
    else:
        render.table(None, ["key id", "name", "roles", "revoked"],
                     ((r["key_id"], r["name"], ",".join(r["roles"]), r["revoked"]) for r in rows))


@governance.command("revoke-key")
@click.argument("key_id")
@click.option("--reason", required=True)
@store_option
@actor_option
@domain_errors
def revoke_key(key_id, reason, store_url, actor):
    """Revoke an approver key; approvals it signed stop counting.

    \b
    Example:
        auditgraph governance revoke-key 3a4b... --reason "laptop stolen"
    """
    with connect(store_url) as store:
        seq = appr.revoke_key(store, key_id, reason, operator(store, actor, "revoking a signing key"))
    click.echo(f"revoked {key_id} (ledger {seq})")


@governance.command()
@click.argument("model", metavar="MODEL@VERSION")
@store_option
@json_option
@domain_errors
def evidence(model, store_url, as_json):
    """Show the evidence an approval of MODEL@VERSION signs over, and its digest.

    \b
    Example:
        auditgraph governance evidence model:demo/churn-classifier@3
    """
    with connect(store_url) as store:
        view = evidence_view(store, model)
    if as_json:
        emit_json({"digest": evidence_digest(view), "evidence": view})
        return
    click.echo(f"evidence digest {evidence_digest(view)}")
    click.echo(f"model {view['model']}; {len(view['upstream'])} upstream nodes; inputs: {', '.join(view['inputs']) or '-'}")
    gate = view["gate"]
    click.echo(f"latest gate: ledger {gate['seq']}" if gate else "latest gate: none recorded")


@governance.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--role", required=True, help="The role you approve as (your key must be registered for it).")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your private key (PEM). You are recorded as the person the key is registered to.")
@click.option("--reject", is_flag=True, help="Record a signed rejection instead.")
@click.option("--comment", default="", help="A note, signed with the approval.")
@store_option
@actor_option
@domain_errors
def approve(model, role, key_file, reject, comment, store_url, actor):
    """Sign an approval of MODEL@VERSION over the evidence you were shown.

    The approver is the person the signing key is registered to; a quorum
    counts distinct people. Signing the same statement twice records it once.

    \b
    Example:
        auditgraph governance approve model:demo/churn-classifier@3 --role privacy-officer --key ~/.auditgraph/priya.pem
    """
    signer = appr.load_signer(key_file)
    with connect(store_url) as store:
        view = evidence_view(store, model)
        ack = appr.approve(store, model, role, signer, evidence_digest(view), default_actor(actor),
                           "reject" if reject else "approve", comment)
    what = "rejection" if reject else "approval"
    click.echo(f"{what} signed over {evidence_digest(view)} (ledger {ack.seq}{', already recorded' if ack.duplicate else ''})")


@governance.command("approvals")
@click.argument("model", metavar="MODEL@VERSION")
@store_option
@json_option
@domain_errors
def list_approvals(model, store_url, as_json):
    """List approvals of a model version and whether each counts (and why not).

    \b
    Example:
        auditgraph governance approvals model:demo/churn-classifier@3
    """
    with connect(store_url) as store:
        found = appr.approvals_of(store, Graph(store).resolve(model).id)
    if as_json:
        emit_json([a.as_dict() for a in found])
    else:
        render.table(None, ["ledger", "role", "decision", "approver", "valid", "why not"],
                     ((a.seq, a.role, a.decision, a.approver, a.valid, a.problem) for a in found))


@governance.command("revoke-approval")
@click.argument("seq", type=int)
@click.option("--reason", required=True)
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The approval's own signing key: its signer revokes it (signed). Without it, an administrator "
                   "does (an admin API key once the store has one).")
@store_option
@actor_option
@domain_errors
def revoke_approval(seq, reason, key_file, store_url, actor):
    """Revoke an approval (by its ledger sequence number); it stops counting.

    The revocation names the signed statement, so submitting the same
    approval again does not bring it back; the approver must sign anew. Only
    the approval's signer (--key) or an administrator may revoke it.

    \b
    Example:
        auditgraph governance revoke-approval 42 --reason "signed the wrong version" --key ~/.auditgraph/priya.pem
    """
    signer = appr.load_signer(key_file) if key_file else None
    with connect(store_url) as store:
        who = default_actor(actor) if signer else operator(store, actor, "revoking someone's approval")
        new = appr.revoke_approval(store, seq, reason, who, signer)
    click.echo(f"approval {seq} revoked (ledger {new})")


# --- the gate ----------------------------------------------------------------------

@governance.command()
@click.argument("models", metavar="MODELS")
@click.option("--policy", "policy_names", multiple=True, required=True,
              help="A rule file or built-in pack every release must pass (repeatable).")
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


@governance.command()
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
        render.table(None, ["policy", "rules digest", "glob", "ledger"], ((b.name, b.digest, b.glob, b.seq) for b in bound))


def _print_gate(result: gates.GateResult) -> None:
    verdict = "PASSED" if result.outcome == "pass" else "BLOCKED"
    blocking = result.blocking
    if blocking:
        click.echo(f"{verdict}: {len(blocking)} blocking rule(s) for {result.model}")
        for r in blocking:
            click.echo(f"  {r.rule}: {r.reason}")
    else:
        click.echo(f"{verdict}: {result.model}")
    render.table(None, ["status", "severity", "rule", "observed", "threshold", "reason", "evidence"], (
        (STATUS_STYLE[r.status], r.severity, r.rule, _short(r.observed), _short(r.threshold), r.reason,
         ", ".join(r.evidence[:6]) + (" ..." if len(r.evidence) > 6 else "")) for r in result.results))
    if result.seq:
        click.echo(f"recorded as ledger entry {result.seq}")


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release: bool) -> None:
    if release:
        _decide(lambda store, policy: gates.release(store, model, policy, default_actor(actor)), policy_names,
                store_url, as_json, junit_file, "release", "released {model} (ledger {seq})",
                "not released: the gate blocked it")
    else:
        _decide(lambda store, policy: (gates.record(store, gates.evaluate(store, model, policy), default_actor(actor)),
                                       None), policy_names, store_url, as_json, junit_file, "release", None, None)


def _decide(action, policy_names, store_url, as_json, junit_file, key: str, done: str | None,
            refused: str | None) -> None:
    """Run a gate decision (gate, release, rollback) and report it: exit 0 passed, 1 blocked.

    An error that stops it (a bad rule file, an unknown model, an unreachable store) is raised to
    ``domain_errors``, which exits with that error's own code.
    """
    policy = load_policy(list(policy_names))
    with connect(store_url) as store:
        result, seq = action(store, policy)
    if junit_file:
        Path(junit_file).write_text(gates.junit(result))
    if as_json:
        emit_json({**result.model_dump(), key: seq})
    else:
        _print_gate(result)
        if done:
            click.echo(done.format(model=result.model, seq=seq) if seq else refused)
    sys.exit(0 if result.outcome == "pass" else 1)


@governance.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--policy", "policy_names", multiple=True, required=True, metavar="FILE|PACK",
              help="A rule file or built-in pack (repeatable).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@store_option
@actor_option
@json_option
@domain_errors
def gate(model, policy_names, junit_file, store_url, actor, as_json):
    """Evaluate every applicable rule; exit 0 if it passes, 1 if blocked, else the error's code (2 bad input).

    Passed and failed rules are all printed with observed value, threshold and
    evidence, and the whole result is recorded in the ledger.

    \b
    Example:
        auditgraph governance gate model:demo/churn-classifier@3 --policy baseline --policy rules/privacy.yaml --junit gate.xml
    """
    _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release=False)


@governance.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--policy", "policy_names", multiple=True, required=True, metavar="FILE|PACK")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@store_option
@actor_option
@json_option
@domain_errors
def release(model, policy_names, junit_file, store_url, actor, as_json):
    """Run the gate and record a release only if it passes (exit codes as for gate).

    \b
    Example:
        auditgraph governance release model:demo/churn-classifier@3 --policy baseline
    """
    _run_gate(model, policy_names, store_url, actor, as_json, junit_file, release=True)


@governance.command()
@click.argument("model", metavar="MODEL")
@click.option("--to", "to_version", required=True, metavar="MODEL@VERSION", help="An earlier released version.")
@click.option("--reason", required=True)
@click.option("--policy", "policy_names", multiple=True, required=True,
              help="Rule file or built-in pack the version must pass again (repeatable; must include bound policies).")
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
    else the error's code (as for gate).

    \b
    Example:
        auditgraph governance rollback model:demo/churn-classifier --to model:demo/churn-classifier@2 --reason "drift in v3" --policy baseline
    """
    _decide(lambda store, policy: gates.rollback(store, model, to_version, reason, policy, default_actor(actor)),
            policy_names, store_url, as_json, junit_file, "rollback", "rolled back to {model} (ledger {seq})",
            "not rolled back: the gate blocked it")


@governance.command()
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
        render.table(f"releases of {entity}", ["ledger", "decision", "version", "previous", "at"],
                     ((h["seq"], h["decision"], h["model"], h.get("previous"), h["at"]) for h in history))


@governance.command()
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


@governance.command()
def packs():
    """List the built-in rule packs (usable as --policy NAME).

    \b
    Example:
        auditgraph governance packs
    """
    for name, path in sorted(builtin_packs().items()):
        policy = load_policy([name])
        click.echo(f"{name}: {len(policy.rules)} rule(s)  {path}")


from governance import cli_responsible  # noqa: E402,F401  adds explain and fairness to the group
