"""``auditgraph governance`` commands that record what the checks read: tags, owners, intended use, evaluations."""

from __future__ import annotations

import click

from governance import records
from lineage.cli.options import actor_option, connect, default_actor, domain_errors, store_option


@click.command()
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


@click.command()
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


@click.command("intended-use")
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


@click.command()
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


COMMANDS = (tag, owners, intended_use, evaluate)
