"""The one plugin surface: built-ins register through the same hooks as a plugin, and clashes are refused.

tests/test_plugin_example.py installs a third-party plugin through entry points; these tests register
plugin objects by hand (``lineage.plugins.register_plugin``) to show what the registry does with them.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from governance.checks import Check, Decision
from governance.checks import registry as checks
from lineage.errors import EntryError
from lineage.hookspecs import hookimpl
from lineage.kinds import EntryKind, Payload, check, declared
from lineage.ledger import Pending
from lineage.plugins import PluginError, manager, register_plugin, registry, unregister_plugin


class Tagged(Check):
    name = "example_always_passes"

    def evaluate(self, subject, params: BaseModel) -> Decision:
        return Decision(status="pass", reason="always")


class NotePayload(Payload):
    text: str


class Plugin:
    def __init__(self, *, checks=(), kinds=()):
        self._checks, self._kinds = list(checks), list(kinds)

    @hookimpl
    def register_checks(self):
        return self._checks

    @hookimpl
    def register_entry_kinds(self):
        return self._kinds


@pytest.fixture
def plugged():
    added = []

    def add(plugin, name):
        register_plugin(plugin, name)
        added.append(plugin)
        return plugin

    yield add
    for plugin in added:
        unregister_plugin(plugin)
    registry()  # rebuilt without them: later tests see only the installed plugins


def test_the_built_in_parts_come_through_the_hooks():
    names = {name for name, _ in manager().list_name_plugin()}
    assert {"lineage.builtins", "governance", "reports"} <= names
    reg = registry()
    assert {"openlineage.event"} <= set(reg.projectors)
    assert {"auth.key.created", "hook.subscribed", "governance.gate", "governance.approval", "reports.issued"} <= set(
        reg.kinds
    )
    assert list(reg.report_formats) == ["json", "html", "md", "junit", "card", "pdf"]
    assert {"lineage_complete", "approvals", "four_fifths"} <= set(reg.checks)
    assert reg.entry_checks and reg.watchers and "governance.gate" in reg.sources


def test_a_plugins_check_is_available_to_rules_and_gone_when_it_is(plugged):
    assert Tagged.name not in checks()
    plugged(Plugin(checks=[Tagged]), "tagged")
    assert checks()[Tagged.name] is Tagged
    unregister_plugin(manager().get_plugin("tagged"))
    assert Tagged.name not in checks()


def test_two_plugins_with_one_check_name_are_refused_naming_both(plugged):
    class Other(Tagged):
        pass

    plugged(Plugin(checks=[Tagged]), "first-plugin")
    plugged(Plugin(checks=[Other]), "second-plugin")
    with pytest.raises(
        PluginError, match="check 'example_always_passes' is declared by both first-plugin and second-plugin"
    ):
        registry()


def test_a_plugin_cannot_redeclare_an_entry_kind_of_ours(plugged):
    plugged(Plugin(kinds=[EntryKind("governance.gate", NotePayload, "govern")]), "impostor")
    with pytest.raises(PluginError, match="entry kind 'governance.gate' is declared by both governance and impostor"):
        registry()


def test_a_plugins_entry_kind_is_validated_on_every_write(plugged):
    note = EntryKind("example.note", NotePayload, "govern", lambda p: "note:x")
    plugged(Plugin(kinds=[note]), "notes")
    assert declared()["example.note"] is note
    with pytest.raises(EntryError, match="example.note: text"):
        check(Pending("example.note", {"text": 3}, "t"))
