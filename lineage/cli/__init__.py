"""The ``auditgraph`` command line.

The root group holds the daily verbs (``ingest``, ``demo``) and one group per
package (``lineage``, ``audit``, ``store``). Every command comes through the
plugin hook ``register_commands`` (``lineage.hookspecs``): lineage's own from
``lineage.builtins`` at once, governance's, reports' and third parties' from their
``auditgraph.plugins`` entry points the first time a command is not found among
those (so the built-in commands do not pay for importing the plugins).
"""

from __future__ import annotations

import logging

import click

from lineage import plugins
from lineage.errors import EXIT_CODES


class PluginGroup(click.Group):
    """The root group: asks the entry-point plugins for their commands the first time it needs them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands:  # built-in commands do not pay for importing the plugins (~0.2 s)
            _load_plugins()
        return super().get_command(ctx, name)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is not None and name in self.commands and self.commands[name] is not cmd:
            raise click.ClickException(f"two plugins add a command named {name!r}; uninstall one of them")
        super().add_command(cmd, name)


@click.group(
    cls=PluginGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: "
    + ", ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items())
    + " (README: Exit codes).",
)
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


plugins.manager(entry_points_too=False).hook.register_commands(cli=cli)  # the built-ins
_builtins = [plugin for _, plugin in plugins.manager(entry_points_too=False).list_name_plugin()]
_plugins_loaded = False


def _load_plugins() -> None:
    """Add the commands of every plugin registered after the built-ins (entry points, then by hand)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    plugins.manager().subset_hook_caller("register_commands", remove_plugins=_builtins)(cli=cli)


def main() -> None:
    cli(prog_name="auditgraph")
