"""Checks are code, registered by name; rules (data) name them.

A check is a small class with a ``Params`` model (validated when the rule file
is loaded) and one method, ``evaluate(subject, params) -> Decision``; declaring
it a ``Check[ItsParams]`` lets the type checker hold the two together. Checks are
registered through the plugin hook ``register_checks`` (``lineage.hookspecs``):
the built-in ones by ``governance.plugin``, third parties' by their own plugin
module under the entry point group ``auditgraph.plugins``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from governance.kinds import RuleStatus
from governance.subject import Subject

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


ParamsT = TypeVar("ParamsT", bound=BaseModel)


class Check(ABC, Generic[ParamsT]):
    """A check whose rules' parameters validate as ``Params``, the model ``evaluate`` receives.

    A check without parameters is a ``Check[Params]`` and keeps the default; one with parameters is a
    ``Check[MyParams]`` that sets ``Params = MyParams``.
    """

    name: ClassVar[str]
    # Not a ClassVar: a ClassVar cannot name the type variable, and the type variable is what ties the model a
    # rule's parameters validate as to the argument of ``evaluate``. The checker cannot give a generic attribute
    # a default of one concrete type; the default is right for Check[Params], the checks that keep it.
    Params: type[ParamsT] = Params  # type: ignore[assignment]

    @abstractmethod
    def evaluate(self, subject: Subject, params: ParamsT) -> Decision: ...


def registry() -> dict[str, type[Check[Any]]]:
    """Every check a plugin registers (``register_checks``), by name: governance's own and third parties'."""
    from lineage.plugins import registry as plugin_registry

    return plugin_registry().checks
