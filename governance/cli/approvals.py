"""``auditgraph governance`` commands for approver keys, evidence and signed approvals."""

from __future__ import annotations

from pathlib import Path

import click

from governance import approvals as appr
from governance.evidence import evidence_digest, evidence_view
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


@click.command()
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role this key may sign for (repeatable).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (created with mode 0600; never overwritten).",
)
@click.option(
    "--identity",
    "identities",
    multiple=True,
    metavar="ACTOR",
    help="A ledger identity this person records entries as (cli:<login>, an API key's name); "
    "separation-of-duties rules need them (repeatable).",
)
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
        key_id = appr.generate_key(
            store, name, list(roles), out, operator(store, actor, "registering a signing key"), list(identities)
        )
    click.echo(key_id)
    render.note(f"private key written to {out}; keep it to yourself")


@click.command("keys")
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
        render.table(
            None,
            ["key id", "name", "roles", "revoked"],
            ((r["key_id"], r["name"], ",".join(r["roles"]), r["revoked"]) for r in rows),
        )


@click.command("revoke-key")
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


@click.command()
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
    click.echo(
        f"model {view['model']}; {len(view['upstream'])} upstream nodes; inputs: {', '.join(view['inputs']) or '-'}"
    )
    gate = view["gate"]
    click.echo(f"latest gate: ledger {gate['seq']}" if gate else "latest gate: none recorded")


@click.command()
@click.argument("model", metavar="MODEL@VERSION")
@click.option("--role", required=True, help="The role you approve as (your key must be registered for it).")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your private key (PEM). You are recorded as the person the key is registered to.",
)
@click.option("--reject", is_flag=True, help="Record a signed rejection instead.")
@click.option("--comment", default="", help="A note, signed with the approval.")
@store_option
@actor_option
@domain_errors
def approve(model, role, key_file, reject, comment, store_url, actor):
    """Sign an approval of MODEL@VERSION over the evidence you were shown.

    The approver is the person the signing key is registered to; a quorum
    counts distinct people. Signing the same statement twice records it once.
    The approval also signs the ledger head you saw (hash and sequence
    number); 'audit verify' checks that it is an entry at or before the approval.

    \b
    Example:
        auditgraph governance approve model:demo/churn-classifier@3 --role privacy-officer --key ~/.auditgraph/priya.pem
    """
    signer = appr.load_signer(key_file)
    with connect(store_url) as store:
        view = evidence_view(store, model)
        ack = appr.approve(
            store,
            model,
            role,
            signer,
            evidence_digest(view),
            default_actor(actor),
            "reject" if reject else "approve",
            comment,
        )
    what = "rejection" if reject else "approval"
    click.echo(
        f"{what} signed over {evidence_digest(view)} (ledger {ack.seq}{', already recorded' if ack.duplicate else ''})"
    )


@click.command("approvals")
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
        render.table(
            None,
            ["ledger", "role", "decision", "approver", "valid", "why not"],
            ((a.seq, a.role, a.decision, a.approver, a.valid, a.problem) for a in found),
        )


@click.command("revoke-approval")
@click.argument("seq", type=int)
@click.option("--reason", required=True)
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The approval's own signing key: its signer revokes it (signed). Without it, an administrator "
    "does (an admin API key once the store has one).",
)
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


COMMANDS = (keygen, list_keys, revoke_key, evidence, approve, list_approvals, revoke_approval)
