"""Plug points other packages (and third parties) register into, without lineage importing them.

A package lists a module under the entry point group ``auditgraph.plugins``;
``load_plugins`` imports each once, and importing registers:

* projectors for its ledger entry kinds (``lineage.projection.projector``);
* per-entry ledger checks run by ``audit verify`` (``register_entry_check``),
  such as signature verification;
* webhook event sources (``lineage.hooks.register_source``).

Commands and HTTP routes have their own groups (``auditgraph.commands``,
``auditgraph.routes``).
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from typing import Callable

from lineage.ledger import EntryCheck

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded = False
_ENTRY_CHECKS: list[Callable[[], EntryCheck]] = []


def load_plugins() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for ep in entry_points(group="auditgraph.plugins"):
            try:
                ep.load()
            except Exception as e:  # a broken plugin must not take auditgraph down
                log.warning("could not load plugin %r (%s): %s", ep.name, ep.value, e)


def register_entry_check(factory: Callable[[], EntryCheck]) -> None:
    """Register a factory of per-entry checks; ``audit verify`` makes a fresh one per run."""
    _ENTRY_CHECKS.append(factory)


def entry_checks() -> list[EntryCheck]:
    load_plugins()
    return [factory() for factory in _ENTRY_CHECKS]
