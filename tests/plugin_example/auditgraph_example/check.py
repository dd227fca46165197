"""A governance check: the model was trained from at most ``max`` upstream dataset versions."""

from __future__ import annotations

from governance.checks import Check, Decision, Params
from governance.subject import Subject
from lineage.hookspecs import hookimpl


class MaxParams(Params):
    max: int


class MaxUpstreamDatasets(Check[MaxParams]):
    name = "max_upstream_datasets"
    Params = MaxParams

    def evaluate(self, subject: Subject, params: MaxParams) -> Decision:
        upstream = subject.upstream_datasets  # raises IncompleteError on a truncated walk: not evaluated
        return Decision(
            status="pass" if len(upstream) <= params.max else "fail",
            observed=len(upstream),
            threshold=params.max,
            reason=f"{len(upstream)} upstream dataset version(s)",
            evidence=upstream,
        )


@hookimpl
def register_checks():
    return [MaxUpstreamDatasets]
