"""A governance check: the model was trained from at most ``max`` upstream dataset versions."""

from __future__ import annotations

from pydantic import BaseModel

from governance.checks import Check, Decision, Params
from lineage.hookspecs import hookimpl


class MaxParams(Params):
    max: int


class MaxUpstreamDatasets(Check):
    name = "max_upstream_datasets"
    Params = MaxParams

    def evaluate(self, subject, params: BaseModel) -> Decision:
        upstream = subject.upstream_datasets  # raises IncompleteError on a truncated walk: not evaluated
        status = "pass" if len(upstream) <= params.max else "fail"
        return Decision(
            status=status,
            observed=len(upstream),
            threshold=params.max,
            reason=f"{len(upstream)} upstream dataset version(s)",
            evidence=upstream,
        )


@hookimpl
def register_checks():
    return [MaxUpstreamDatasets]
