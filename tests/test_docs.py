"""Every command has help text with an example, and is named in the README."""

from __future__ import annotations

import click
import pytest
from conftest import ROOT

from lineage.cli import _load_plugins, cli


def commands(group: click.Group, prefix: str = ""):
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path + " ")


_load_plugins()
ALL = list(commands(cli))


@pytest.mark.parametrize("path, command", ALL, ids=[p for p, _ in ALL])
def test_every_command_has_help_ending_with_an_example(path, command):
    assert command.help, f"{path} has no help"
    assert "Example:" in command.help, f"{path}: help has no example"
    assert "auditgraph " in command.help.rstrip().splitlines()[-1], f"{path}: help does not end with an example"


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_every_command_appears_in_the_readme(path):
    assert f"auditgraph {path}" in (ROOT / "README.md").read_text(), f"README does not mention 'auditgraph {path}'"
