"""The plugin manager: built-ins and ``auditgraph.plugins`` entry points, through one set of hooks.

``lineage.hookspecs`` declares the hooks. ``registry()`` calls them once and
keeps what they return, checked for clashes, in a ``Registry``; everything that
used to keep a list of its own (projectors, entry kinds, entry checks, webhook
sources, watchers, governance checks, report formats) reads it from there.

Invariants:

* Built-ins are registered before any entry point and through the same hooks.
* A plugin whose entry point fails to import is logged and left out: it must not
  take auditgraph down. A plugin that loads but clashes with another (the same
  entry kind declared differently, the same check or format name) is an error
  naming both, raised when the registry is built: nothing runs half-registered.
* ``register_plugin`` (embedding, tests) drops the cached registry, so the next
  reader sees the plugin.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import pluggy

from lineage import hookspecs
from lineage.errors import LineageError

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "auditgraph.plugins"
BUILTINS = ("lineage.builtins",)

_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_entry_points_loaded = False
_registry: Registry | None = None


class PluginError(LineageError):
    """Two plugins declare the same name, or a plugin returned something that is not what its hook asks for."""


@dataclass(frozen=True)
class Registry:
    """What every registered plugin adds, by name."""

    kinds: dict[str, Any] = field(default_factory=dict)  # name -> lineage.kinds.EntryKind
    projectors: dict[str, Callable[..., Any]] = field(default_factory=dict)
    entry_checks: list[Callable[[], Any]] = field(default_factory=list)
    sources: dict[str, Callable[..., Any]] = field(default_factory=dict)
    watchers: list[Callable[..., Any]] = field(default_factory=list)
    checks: dict[str, type] = field(default_factory=dict)  # governance check name -> class
    report_formats: dict[str, Any] = field(default_factory=dict)  # name -> reports.formats.ReportFormat


def manager(*, entry_points_too: bool = True) -> pluggy.PluginManager:
    """The process's plugin manager, with the built-ins (and, by default, the entry points) registered."""
    global _manager, _entry_points_loaded
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            for name in BUILTINS:
                pm.register(import_module(name), name=name)
            _manager = pm
        if entry_points_too and not _entry_points_loaded:
            _entry_points_loaded = True
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if _manager.has_plugin(ep.name):
                    continue
                try:
                    _manager.register(ep.load(), name=ep.name)
                except Exception as e:  # a broken plugin must not take auditgraph down
                    log.warning("could not load plugin %r (%s): %s", ep.name, ep.value, e)
        return _manager


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object or module by hand (embedding, tests); the registry is rebuilt on next use."""
    global _registry
    with _lock:
        pm = manager()
        if not pm.is_registered(plugin):
            pm.register(plugin, name=name)
        _registry = None


def unregister_plugin(plugin: object) -> None:
    global _registry
    with _lock:
        if manager().is_registered(plugin):
            manager().unregister(plugin)
        _registry = None


def registry() -> Registry:
    """Everything the plugins add, built once per set of plugins."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _build(manager())
        return _registry


def entry_checks(store: Any = None) -> list[Any]:
    """Fresh per-entry checks for one ``audit verify`` run; with ``store``, each check that has a
    ``prepare(store)`` method is prepared against it first (``hookspecs.register_entry_checks``)."""
    checks = [factory() for factory in registry().entry_checks]
    for check in checks if store is not None else ():
        prepare = getattr(check, "prepare", None)
        if prepare is not None:
            prepare(store)
    return checks


def _build(pm: pluggy.PluginManager) -> Registry:
    reg = Registry()
    owner: dict[tuple[str, str], str] = {}

    def claim(what: str, name: str, plugin: str, table: dict, value: Any, same: bool = False) -> None:
        if name in table and not (same and table[name] == value):
            raise PluginError(f"{what} {name!r} is declared by both {owner[(what, name)]} and {plugin}")
        table[name] = value
        owner.setdefault((what, name), plugin)

    for plugin, kinds in _results(pm, "register_entry_kinds"):
        for kind in kinds:
            claim("entry kind", kind.name, plugin, reg.kinds, kind, same=True)
            if kind.projector is not None:
                claim("projector of", kind.name, plugin, reg.projectors, _typed_projector(kind))
            if kind.events is not None:
                claim("event source of", kind.name, plugin, reg.sources, kind.events)
            if kind.verifier is not None:
                reg.entry_checks.append(kind.verifier)
    for plugin, projectors in _results(pm, "register_projectors"):
        for name, fn in dict(projectors).items():
            claim("projector of", name, plugin, reg.projectors, fn)
    for plugin, sources in _results(pm, "register_event_sources"):
        for name, fn in dict(sources).items():
            claim("event source of", name, plugin, reg.sources, fn)
    for _, factories in _results(pm, "register_entry_checks"):
        reg.entry_checks.extend(factories)
    for _, watchers in _results(pm, "register_watchers"):
        reg.watchers.extend(watchers)
    for plugin, checks in _results(pm, "register_checks"):
        for check in checks:
            claim("check", check.name, plugin, reg.checks, check, same=True)
    for plugin, formats in _results(pm, "register_report_formats"):
        for fmt in formats:
            claim("report format", fmt.name, plugin, reg.report_formats, fmt, same=True)
    return reg


def _results(pm: pluggy.PluginManager, hook: str) -> Iterable[tuple[str, Any]]:
    """(plugin name, what it returned) for each plugin implementing ``hook``, built-ins first."""
    for impl in getattr(pm.hook, hook).get_hookimpls():  # in registration order (a call would go last first)
        result = impl.function()
        if result is not None:
            yield pm.get_name(impl.plugin) or repr(impl.plugin), result


def _typed_projector(kind: Any) -> Callable[..., Any]:
    def project(payload: dict, ctx: Any, hint: Any = None) -> Any:
        return kind.projector(kind.validate(payload), ctx)

    return project
