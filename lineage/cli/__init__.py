"""The ``auditgraph`` command line.

The root group holds the daily verbs (``ingest``, ``demo``) and one group per
package (``lineage``, ``audit``, ``store``). Other packages, and third-party
plugins, add commands through the entry point group ``auditgraph.commands``:
each entry point names a click command or group, added under its own name.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import click

from lineage.cli.audit import audit
from lineage.cli.ingest import demo, ingest
from lineage.cli.lineage import lineage
from lineage.cli.serve import hooks, keys, serve
from lineage.cli.store import store
from lineage.errors import EXIT_CODES

log = logging.getLogger(__name__)


class PluginGroup(click.Group):
    """The root group: adds the ``auditgraph.commands`` entry points the first time it is asked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands:  # built-in commands do not pay for importing the plugins (~0.2 s)
            _load_plugins()
        return super().get_command(ctx, name)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
                    + " (README: Exit codes).")
@click.version_option(package_name="auditgraph")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """auditgraph: lineage and governance for machine learning.

    Records OpenLineage events in a hash-chained ledger, projects them into a
    lineage graph, and answers where a model came from and what a dataset feeds.

    \b
    Example:
        auditgraph demo
        auditgraph lineage upstream model:demo/churn-classifier
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for command in (ingest, demo, serve, lineage, audit, store, keys, hooks):
    cli.add_command(command)


_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="auditgraph.commands"):
        if ep.name in cli.commands:
            continue
        try:
            cli.add_command(ep.load(), ep.name)
        except Exception as e:  # a broken plugin must not take the whole CLI down
            log.warning("could not load command %r from %s: %s", ep.name, ep.value, e)


def main() -> None:
    cli(prog_name="auditgraph")
