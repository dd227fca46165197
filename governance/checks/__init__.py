"""Checks are code, registered by name; rules (data) name them.

A check is a small class with a ``Params`` model (validated when the rule file
is loaded) and one method, ``evaluate(subject, params) -> Decision``. Built-in
checks register themselves here; third parties add theirs under the entry
point group ``auditgraph.checks`` (each entry point names a Check class).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from governance.kinds import RuleStatus

log = logging.getLogger(__name__)

Status = RuleStatus
"""``not_evaluated``: the check could not look at everything it must (missing evidence, a truncated
walk); a block rule that is not evaluated blocks. ``not_applicable``: there was nothing for the rule
to judge (no data carries the tags it is about); it never blocks and never counts as evidence."""


class Decision(BaseModel):
    """What a check found. ``evidence`` cites ledger entries (``ledger:<seq>``) and node ids."""

    model_config = ConfigDict(frozen=True)

    status: Status
    observed: Any = None
    threshold: Any = None
    reason: str = ""
    evidence: list[str] = []


class Params(BaseModel):
    """Base of every check's parameters: unknown keys in a rule file are errors."""

    model_config = ConfigDict(extra="forbid")


class Check(ABC):
    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = Params

    @abstractmethod
    def evaluate(self, subject: "Subject", params: BaseModel) -> Decision: ...  # noqa: F821


_REGISTRY: dict[str, type[Check]] = {}
_loaded = False


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: make a check available to rule files under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Check]]:
    global _loaded
    if not _loaded:
        _loaded = True
        from governance.checks import builtin, responsible  # noqa: F401  registers the built-in checks

        for ep in entry_points(group="auditgraph.checks"):
            try:
                register(ep.load())
            except Exception as e:
                log.warning("could not load check %r from %s: %s", ep.name, ep.value, e)
    return _REGISTRY
