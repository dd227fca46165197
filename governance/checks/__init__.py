"""Checks are code, registered by name; rules (data) name them.

A check is a small class with a ``Params`` model (validated when the rule file
is loaded) and one method, ``evaluate(subject, params) -> Decision``. Checks are
registered through the plugin hook ``register_checks`` (``lineage.hookspecs``):
the built-in ones by ``governance.plugin``, third parties' by their own plugin
module under the entry point group ``auditgraph.plugins``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from governance.kinds import RuleStatus

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
    def evaluate(self, subject: Subject, params: BaseModel) -> Decision: ...  # noqa: F821


def registry() -> dict[str, type[Check]]:
    """Every check a plugin registers (``register_checks``), by name: governance's own and third parties'."""
    from lineage.plugins import registry as plugin_registry

    return plugin_registry().checks
