"""The built-in checks over the store."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from governance import readmodels, records
from governance.checks import Check, Decision, Params, Status
from governance.findings import on_dataset
from governance.subject import Subject
from lineage.projection import UNVERSIONED


class LineageComplete(Check[Params]):
    """Every input of the training run is known and versioned, nothing upstream is of unknown version, and the
    model version has one artifact (a later event that records another digest for it fails this check)."""

    name = "lineage_complete"

    def evaluate(self, subject: Subject, params: Params) -> Decision:
        if not subject.training_runs:
            return Decision(
                status="fail",
                observed="no training run recorded",
                threshold="a recorded training run",
                reason=f"nothing in the ledger says which run wrote {subject.id}",
            )
        unknown = [d for d in subject.upstream_datasets if d.endswith(f"@{UNVERSIONED}")]  # raises if truncated
        observed = {
            "training_runs": len(subject.training_runs),
            "inputs": len(subject.inputs),
            "upstream_datasets": len(subject.upstream_datasets),
            "unversioned": unknown,
        }
        recorded = readmodels.artifact(subject.store, subject.id)
        if recorded.foreign_note:  # reported, never adopted, and no verdict: any producer could send one
            observed["foreign_artifacts"] = recorded.foreign_note
        if recorded.problem:
            return Decision(
                status="fail",
                observed={
                    **observed,
                    "artifact": recorded.digest,
                    "conflicts": [f"ledger:{s}" for s, _ in recorded.conflicts],
                },
                threshold="one artifact per model version",
                reason=recorded.problem,
                evidence=[f"ledger:{recorded.seq}"] + [f"ledger:{s}" for s, _ in recorded.conflicts],
            )
        if not subject.inputs:
            return Decision(
                status="fail",
                observed=observed,
                threshold="at least one recorded input",
                reason="the training run recorded no input data",
                evidence=subject.training_runs,
            )
        status: Status = "fail" if unknown else "pass"
        reason = (
            f"{len(unknown)} upstream dataset(s) of unknown version: {', '.join(unknown)}"
            if unknown
            else "every upstream dataset version is known"
        )
        return Decision(
            status=status,
            observed=observed,
            threshold="0 unversioned",
            reason=reason,
            evidence=subject.training_runs + unknown,
        )


class CodeParams(Params):
    require_tag: bool = False
    require_clean: bool = False


class CodeProvenance(Check[CodeParams]):
    """The training code is at a recorded commit (optionally tagged, optionally from a clean tree)."""

    name = "code_provenance"
    Params = CodeParams

    def evaluate(self, subject: Subject, params: CodeParams) -> Decision:
        builds = subject.store.edges(subject.training_runs, "upstream", ["BUILT"])
        if not builds:
            return Decision(
                status="fail",
                observed="no code version",
                threshold="a recorded commit",
                reason="the training run has no recorded source code version",
                evidence=subject.training_runs,
            )
        problems = []
        for run in subject.training_runs:
            training = subject.facets(run).get("auditgraph_training") or {}
            if params.require_clean and training.get("codeDirty") is not False:
                problems.append(f"{run} ran from a tree that was dirty or not known to be clean")
        if params.require_tag:
            jobs = subject.store.edges(subject.training_runs, "downstream", ["RUN_OF"])
            if not any((subject.facets(j.dst).get("sourceCodeLocation") or {}).get("tag") for j in jobs):
                problems.append("the training code's commit has no tag")
        code = sorted({e.src for e in builds})
        return Decision(
            status="fail" if problems else "pass",
            observed={"code": code},
            threshold={"tag": params.require_tag, "clean": params.require_clean},
            reason="; ".join(problems) or f"built from {', '.join(code)}",
            evidence=code,
        )


class TagParams(Params):
    tags: list[str] = Field(min_length=1)
    approval_role: str | None = None


class DataTags(Check[TagParams]):
    """Upstream data with any of these tags needs a valid approval by the named role (or fails outright)."""

    name = "data_tags"
    Params = TagParams

    def evaluate(self, subject: Subject, params: TagParams) -> Decision:
        hits, evidence = subject.tagged_upstream(params.tags)
        if not hits:
            return Decision(
                status="not_applicable",
                observed={},
                threshold=f"no upstream data tagged {', '.join(params.tags)}"
                + (f" without {params.approval_role} approval" if params.approval_role else ""),
                reason=f"no upstream dataset is tagged {', '.join(params.tags)}: nothing to check",
                evidence=subject.upstream_datasets,
            )
        approvals = subject.valid_approvals(params.approval_role) if params.approval_role else []
        approved = [a for a in approvals if a.decision == "approve"]
        rejected = [a for a in approvals if a.decision == "reject"]
        listing = "; ".join(f"{d} tagged {', '.join(t)}" for d, t in sorted(hits.items()))
        if approved and not rejected:
            return Decision(
                status="pass",
                observed=hits,
                threshold=f"approval by {params.approval_role}",
                reason=f"{listing}; approved by {approved[0].approver} ({params.approval_role})",
                evidence=evidence + [f"ledger:{a.seq}" for a in approved],
            )
        need = f"needs an approval by the {params.approval_role} role" if params.approval_role else "is not allowed"
        return Decision(
            status="fail",
            observed=hits,
            threshold=f"approval by {params.approval_role}" if params.approval_role else "none",
            reason=f"{listing}: {need}",
            evidence=evidence + list(hits) + [f"ledger:{a.seq}" for a in rejected],
        )


class LicenceParams(Params):
    allowed: list[str] = Field(min_length=1)
    require_known: bool = True


class DataLicence(Check[LicenceParams]):
    """Every upstream dataset's licence (tag ``licence:<id>``) is on the allow-list."""

    name = "data_licence"
    Params = LicenceParams

    def evaluate(self, subject: Subject, params: LicenceParams) -> Decision:
        bad, unknown, evidence = {}, [], []
        for dataset in subject.upstream_datasets:
            licences = {t.split(":", 1)[1]: c for t, c in subject.tags(dataset).items() if t.startswith("licence:")}
            evidence += [e for c in licences.values() for e in c.evidence]
            if not licences:
                unknown.append(dataset)
            elif not set(licences) <= set(params.allowed):
                bad[dataset] = sorted(set(licences) - set(params.allowed))
        if not evidence and not params.require_known:
            return Decision(
                status="not_applicable",
                observed={"unknown": unknown},
                threshold={"allowed": params.allowed},
                reason="no upstream dataset has a licence tag: nothing to check",
            )
        failed = bad or (unknown and params.require_known)
        reason = "; ".join(
            [f"{d}: {', '.join(v)} not allowed" for d, v in bad.items()]
            + ([f"no licence recorded for {', '.join(unknown)}"] if unknown and params.require_known else [])
        )
        return Decision(
            status="fail" if failed else "pass",
            observed={"not_allowed": bad, "unknown": unknown},
            threshold={"allowed": params.allowed},
            reason=reason or "every licence is allowed",
            evidence=evidence + list(bad) + (unknown if params.require_known else []),
        )


class FreshnessParams(Params):
    max_age_days: float = Field(gt=0)


class DataFreshness(Check[FreshnessParams]):
    """Data the model was trained on was at most ``max_age_days`` old when training started."""

    name = "data_freshness"
    Params = FreshnessParams

    def evaluate(self, subject: Subject, params: FreshnessParams) -> Decision:
        rows = subject.store.nodes(subject.training_runs + subject.inputs)
        seen = {node: row.first_seen for node, row in rows.items() if row.first_seen is not None}
        starts = [seen[r] for r in subject.training_runs if r in seen]
        if not starts or not subject.inputs:
            return Decision(status="not_evaluated", reason="no training run or inputs to date")
        start = _time(min(starts))
        ages = {
            d: (start - _time(seen[d])).total_seconds() / 86400
            for d in subject.inputs
            if d in seen and not d.endswith(f"@{UNVERSIONED}")
        }
        if not ages:
            return Decision(status="not_evaluated", reason="no input has a known version date")
        stale = {d: round(a, 2) for d, a in ages.items() if a > params.max_age_days}
        oldest = max(ages.values())
        return Decision(
            status="fail" if stale else "pass",
            observed={"oldest_days": round(oldest, 2), "stale": stale},
            threshold={"max_age_days": params.max_age_days},
            reason=f"{len(stale)} input(s) older than {params.max_age_days} days"
            if stale
            else f"oldest input {oldest:.1f} days old",
            evidence=list(stale) or list(ages),
        )


class DocParams(Params):
    require: list[str] = Field(default_factory=lambda: ["owners", "intended_use", "limitations"])


class Documentation(Check[DocParams]):
    """Owners, intended use and limitations of the model are recorded."""

    name = "documentation"
    Params = DocParams

    def evaluate(self, subject: Subject, params: DocParams) -> Decision:
        owners = records.owners_of(subject.store, subject.id)
        use = records.intended_use_of(subject.store, subject.id)
        have = {
            "owners": bool(owners),
            "intended_use": bool(use),
            "limitations": bool(use and use.value.get("limitations")),
        }
        missing = [k for k in params.require if not have.get(k)]
        evidence = (owners.evidence if owners else []) + (use.evidence if use else [])
        return Decision(
            status="fail" if missing else "pass",
            observed=have,
            threshold={"required": params.require},
            reason=f"not recorded: {', '.join(missing)}" if missing else "owners and intended use recorded",
            evidence=evidence,
        )


class MetricParams(Params):
    metric: str
    min: float | None = None
    max: float | None = None
    dataset: str | None = None


class MetricThreshold(Check[MetricParams]):
    """The latest evaluation of a metric on the named dataset (on every dataset, if none is named) is within [min, max].

    ``dataset`` is matched exactly: an id@version names that version, an id any of its versions.
    A better number recorded on other data never stands in for it.
    """

    name = "metric_threshold"
    Params = MetricParams

    def evaluate(self, subject: Subject, params: MetricParams) -> Decision:
        threshold = {
            k: v for k, v in (("min", params.min), ("max", params.max), ("dataset", params.dataset)) if v is not None
        }
        latest: dict[str | None, tuple[int, dict]] = {}
        for seq, p in records.evaluations_of(subject.store, subject.id):
            if params.metric in p["metrics"] and on_dataset(p["dataset"], params.dataset):
                latest[params.dataset or p["dataset"]] = (seq, p)
        if not latest:
            on = f" on {params.dataset}" if params.dataset else ""
            return Decision(
                status="not_evaluated",
                threshold=threshold,
                reason=f"no evaluation of {params.metric!r}{on} recorded for {subject.id}",
            )
        observed, reasons, failed, evidence = {}, [], False, []
        for seq, p in latest.values():
            value = p["metrics"][params.metric]
            low = params.min is not None and value < params.min
            high = params.max is not None and value > params.max
            failed = failed or low or high
            observed[p["dataset"] or "(no dataset)"] = value
            reasons.append(
                f"{params.metric} = {value}"
                + (f" < {params.min}" if low else f" > {params.max}" if high else " within bounds")
                + (f" on {p['dataset']}" if p["dataset"] else "")
            )
            evidence += [f"ledger:{seq}"] + ([p["dataset"]] if p["dataset"] else [])
        if len(observed) == 1:
            observed = next(iter(observed.values()))
        return Decision(
            status="fail" if failed else "pass",
            observed=observed,
            threshold=threshold,
            reason="; ".join(reasons),
            evidence=evidence,
        )


class ApprovalParams(Params):
    role: str
    quorum: int = Field(default=1, ge=1)
    separate_from_training: bool = Field(
        default=False,
        description=(
            "separation of duties: an approval counts only if its signer's key names the identities the person "
            "records as (keygen --identity) and none of them recorded the training run"
        ),
    )


class ApprovalsRequired(Check[ApprovalParams]):
    """At least ``quorum`` distinct people with ``role`` approved, by valid signature, and none rejected.

    People are counted by the registered keys' names, so one key signing twice,
    or one person's two keys, count once.
    """

    name = "approvals"
    Params = ApprovalParams

    def evaluate(self, subject: Subject, params: ApprovalParams) -> Decision:
        valid = subject.valid_approvals(params.role)
        notes = [
            f"ledger:{a.seq} does not count: {a.problem}"
            for a in subject.approvals
            if a.role == params.role and not a.valid
        ]
        rejections = [a for a in valid if a.decision == "reject"]  # a valid veto blocks, whoever signed it
        if params.separate_from_training:
            valid, excluded = _separated(subject, [a for a in valid if a.decision == "approve"])
            notes += excluded
        approvers = [a.approver for a in readmodels.counted(valid, params.role)]
        evidence = [f"ledger:{a.seq}" for a in subject.approvals if a.role == params.role]
        threshold = {"role": params.role, "quorum": params.quorum, "distinct": "people"}
        if rejections:
            return Decision(
                status="fail",
                observed={"approvers": approvers, "rejected_by": [a.approver for a in rejections]},
                threshold=threshold,
                reason=f"rejected by {', '.join(a.approver for a in rejections)}",
                evidence=evidence,
            )
        ok = len(approvers) >= params.quorum
        reason = f"{len(approvers)} of {params.quorum} required {params.role} approval(s) by distinct people" + (
            f"; {'; '.join(notes)}" if notes else ""
        )
        return Decision(
            status="pass" if ok else "fail",
            observed={"approvers": approvers},
            threshold=threshold,
            reason=reason,
            evidence=evidence,
        )


def _separated(subject: Subject, approvals: list) -> tuple[list, list[str]]:
    """Approvals whose signer is known not to have recorded the training run, and why the others do not count.

    The signer is the registered person (the key), whoever submitted the approval: an approval counts
    only if the key names the ledger identities its person records as, and none of them (nor any other
    key of the same person) recorded an event of the training runs. Unknown identities fail closed, on
    both sides: a training run recorded under an identity no registered person names (a shared ingest
    key) leaves no approval counting.
    """
    keys = readmodels.keys(subject.store)
    people: dict[str, list] = {}
    for key in keys.values():
        people.setdefault(key.person, []).append(key)
    trainers = subject.training_actors
    unknown = sorted(t for t in trainers if not any(k.acts_as(t) for k in keys.values()))
    if unknown:  # a shared ingest key or an unregistered name recorded the training: who trained is unknown
        return [], [
            f"ledger:{a.seq} does not count: the training run was recorded by {', '.join(unknown)}, which no "
            "registered person's identities name, so independence cannot be shown"
            for a in approvals
        ]
    kept, notes = [], []
    for a in approvals:
        signer = keys.get(a.key_id)
        same_person = people.get(signer.person, [signer]) if signer else []
        identities = [i for k in same_person for i in k.identities]
        if not identities:
            notes.append(
                f"ledger:{a.seq} does not count: {a.approver}'s key names no identity "
                "(governance keygen --identity) to check separation of duties against"
            )
        elif any(k.acts_as(t) for k in same_person for t in trainers):
            notes.append(f"ledger:{a.seq} does not count: {a.approver} also recorded the training run")
        else:
            kept.append(a)
    return kept, notes


class DeprecatedParams(Params):
    tags: list[str] = Field(default_factory=lambda: ["deprecated", "revoked"])


class NothingUpstreamDeprecated(Check[DeprecatedParams]):
    """No upstream dataset is tagged deprecated or revoked."""

    name = "upstream_not_deprecated"
    Params = DeprecatedParams

    def evaluate(self, subject: Subject, params: DeprecatedParams) -> Decision:
        hits, cited = subject.tagged_upstream(params.tags)
        evidence = list(hits) + cited
        if not hits and not _tagged_anything(subject):
            return Decision(
                status="not_applicable",
                observed={},
                threshold={"none tagged": params.tags},
                reason="no upstream dataset carries any tag, so none is known to be current: nothing to check",
            )
        return Decision(
            status="fail" if hits else "pass",
            observed=hits,
            threshold={"none tagged": params.tags},
            reason="; ".join(f"{d} is {', '.join(t)}" for d, t in hits.items()) or "nothing upstream deprecated",
            evidence=evidence,
        )


def _tagged_anything(subject: Subject) -> bool:
    """Whether anyone has tagged any upstream dataset: without that, "nothing deprecated" says nothing."""
    return any(subject.tags(d) for d in subject.upstream_datasets)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class EvaluatedParams(Params):
    metrics: list[str] = Field(default_factory=list)
    held_out: bool = True


class EvaluationRecorded(Check[EvaluatedParams]):
    """The model version has recorded evaluations (of the named metrics), on data it was not trained on."""

    name = "evaluation_recorded"
    Params = EvaluatedParams

    def evaluate(self, subject: Subject, params: EvaluatedParams) -> Decision:
        found = records.evaluations_of(subject.store, subject.id)
        if params.held_out:
            trained_on = {d.split("@")[0] for d in subject.inputs}
            found = [(s, p) for s, p in found if p["dataset"] and p["dataset"].split("@")[0] not in trained_on]
        measured = sorted({m for _, p in found for m in p["metrics"]})
        missing = (
            [m for m in params.metrics if m not in measured] if params.metrics else ([] if found else ["any metric"])
        )
        where = "on held-out data " if params.held_out else ""
        return Decision(
            status="fail" if missing else "pass",
            observed={"metrics": measured, "evaluations": len(found)},
            threshold={"metrics": params.metrics or "any", "held_out": params.held_out},
            reason=f"no evaluation {where}of {', '.join(missing)}"
            if missing
            else f"{len(found)} evaluation(s) {where}recorded: {', '.join(measured)}",
            evidence=[f"ledger:{s}" for s, _ in found],
        )


# Registered through governance.plugin's register_checks hook.
CHECKS = (
    LineageComplete,
    CodeProvenance,
    DataTags,
    DataLicence,
    DataFreshness,
    Documentation,
    MetricThreshold,
    ApprovalsRequired,
    NothingUpstreamDeprecated,
    EvaluationRecorded,
)
