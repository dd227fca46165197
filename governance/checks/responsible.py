"""Fairness and explainability checks, over the evidence recorded by ``governance explain``
and ``governance fairness``."""

from __future__ import annotations

from pydantic import Field

from governance.checks import Check, Decision, Params, Status
from governance.findings import Evidence, Grouping, explanations, fairness, grouping, latest_explanation
from governance.subject import Subject
from lineage.extras import require
from lineage.ids import parse_id


def _no_explanation(subject: Subject, found: Evidence) -> Decision:
    return Decision(
        status="not_evaluated",
        reason=f"no explanation computed on the recorded artifact of {subject.id}" + found.note(),
        evidence=[f"ledger:{seq}" for seq, _ in found.ignored],
    )


class FairnessParams(Params):
    protected: list[str] | None = Field(
        default=None, min_length=1, description=("one grouping: the intersection of these protected columns")
    )
    groupings: list[list[str]] | None = Field(
        default=None,
        min_length=1,
        description=("several groupings, each evaluated (for example [[sex], [race], [sex, race]])"),
    )
    dataset: str | None = Field(default=None, description="only assessments on this dataset (id, or id@version)")

    def wanted(self) -> list[Grouping]:
        named = self.groupings or ([self.protected] if self.protected else [])
        return list(dict.fromkeys(grouping(g) for g in named))


def _assessments(subject: Subject, params: FairnessParams) -> tuple[dict[tuple, tuple[int, dict]], Decision | None]:
    """Every counting assessment of every (dataset, grouping) the rule must look at.

    Only assessments computed on the recorded artifact count. Every record is judged, on every
    dataset (or only the one the rule names) and every grouping the rule names (every grouping
    recorded, if it names none): a later record, on other data, other columns or other rows of the
    same data, never hides a failing one.
    A grouping the rule names but nobody assessed makes the rule not evaluated.
    """
    found = fairness(subject.store, subject.id, params.dataset)
    wanted = params.wanted() or sorted({g for _, g in found.latest})
    on = f" on {params.dataset}" if params.dataset else ""
    if not wanted:
        return {}, Decision(
            status="not_evaluated",
            reason=f"no fairness assessment{on} computed on the recorded artifact of {subject.id}" + found.note(),
            evidence=[f"ledger:{seq}" for seq, _ in found.ignored],
        )
    covered = {g for _, g in found.latest}
    missing = [g for g in wanted if g not in covered]
    if missing:
        listing = "; ".join(" x ".join(g) for g in missing)
        return {}, Decision(
            status="not_evaluated",
            threshold={"groupings": [list(g) for g in wanted]},
            reason=f"no fairness assessment{on} over {listing} computed on the recorded artifact "
            f"of {subject.id}" + found.note(),
            evidence=[f"ledger:{seq}" for seq, _ in found.latest.values()],
        )
    return {(key, seq): (seq, p) for key, seq, p in found.records() if key[1] in wanted}, None


def _judge(subject: Subject, params: FairnessParams, metric: str, passes, describe) -> Decision:
    assessments, missing = _assessments(subject, params)
    if missing:
        return missing
    observed, failing, reasons = {}, [], []
    repeated = {k for (k, _) in assessments if sum(1 for (k2, _) in assessments if k2 == k) > 1}
    for ((dataset, g), _), (seq, a) in assessments.items():
        m = a["metrics"][metric]
        ok = m["value"] is not None and passes(m["value"])
        label = (
            " x ".join(g)
            + (f" on {dataset}" if dataset else "")
            + (f" (ledger:{seq})" if (dataset, g) in repeated else "")
        )
        observed[label] = {"value": m["value"], "ci": m["ci"], "ledger": seq}
        reasons.append(describe(m["value"], label, ok))
        if not ok:
            failing.append(label)
    return Decision(
        status="fail" if failing else "pass",
        observed=observed,
        reason="; ".join(reasons),
        evidence=[f"ledger:{seq}" for seq, _ in assessments.values()],
    )


class FourFifthsParams(FairnessParams):
    threshold: float = Field(default=0.8, gt=0, le=1)


class OddsParams(FairnessParams):
    max_difference: float = Field(default=0.1, ge=0, le=1)


class FourFifths(Check[FourFifthsParams]):
    """Demographic parity ratio (lowest selection rate / highest) at or above the threshold, in every grouping
    and on every dataset assessed (only assessments computed on the recorded artifact count)."""

    name = "four_fifths"
    Params = FourFifthsParams

    def evaluate(self, subject: Subject, params: FourFifthsParams) -> Decision:
        decision = _judge(
            subject,
            params,
            "demographic_parity_ratio",
            lambda v: v >= params.threshold,
            lambda v, g, ok: f"demographic parity ratio {v} over {g} {'>=' if ok else '<'} {params.threshold}",
        )
        return decision.model_copy(
            update={
                "threshold": {
                    "min_ratio": params.threshold,
                    "groupings": [list(g) for g in params.wanted()] or "all recorded",
                }
            }
        )


class EqualizedOdds(Check[OddsParams]):
    """Equalized odds difference (the larger of the TPR and FPR gaps) at or below the threshold, in every grouping
    and on every dataset assessed (only assessments computed on the recorded artifact count)."""

    name = "equalized_odds"
    Params = OddsParams

    def evaluate(self, subject: Subject, params: OddsParams) -> Decision:
        decision = _judge(
            subject,
            params,
            "equalized_odds_difference",
            lambda v: v <= params.max_difference,
            lambda v, g, ok: f"equalized odds difference {v} over {g} {'<=' if ok else '>'} {params.max_difference}",
        )
        return decision.model_copy(
            update={
                "threshold": {
                    "max_difference": params.max_difference,
                    "groupings": [list(g) for g in params.wanted()] or "all recorded",
                }
            }
        )


def _each_explanation(subject: Subject, judge, keep=lambda e: True) -> Decision:
    """Judge every counting explanation that ``keep``s; all must pass (a later one never replaces a failing one)."""
    found = explanations(subject.store, subject.id)
    if not found.latest:
        return _no_explanation(subject, found)
    decisions = [(seq, judge(seq, e)) for _, seq, e in found.records() if keep(e)]  # every record, not the latest
    failing = [d for _, d in decisions if d.status != "pass"]
    chosen = failing or [d for _, d in decisions]
    status: Status = "fail" if any(d.status == "fail" for d in failing) else failing[0].status if failing else "pass"
    observed = chosen[0].observed if len(decisions) == 1 else {f"ledger:{seq}": d.observed for seq, d in decisions}
    return Decision(
        status=status,
        observed=observed,
        threshold=chosen[0].threshold,
        reason="; ".join(d.reason for d in chosen),
        evidence=[f"ledger:{seq}" for seq, _ in decisions],
    )


class RelianceParams(Params):
    protected_features: list[str] = Field(min_length=1)
    max_share: float = Field(default=0.05, ge=0, le=1)
    top_k: int = Field(default=3, ge=1)


class ProtectedReliance(Check[RelianceParams]):
    """Protected features carry less than ``max_share`` of |SHAP|, and none is in the top k."""

    name = "protected_reliance"
    Params = RelianceParams

    def evaluate(self, subject: Subject, params: RelianceParams) -> Decision:
        return _each_explanation(subject, lambda seq, e: self._judge(seq, e, params))

    @staticmethod
    def _judge(seq: int, e: dict, params: RelianceParams) -> Decision:
        share = {i["feature"]: i["share"] for i in e["importance"]}
        used = [f for f in params.protected_features if f in share]
        total = round(sum(share[f] for f in used), 6)
        top = [i["feature"] for i in e["importance"][: params.top_k]]
        in_top = [f for f in used if f in top]
        ok = total < params.max_share and not in_top
        reason = f"protected features {', '.join(used) or '(none in the model)'} carry {total:.1%} of |SHAP|" + (
            f"; in the top {params.top_k}: {', '.join(in_top)}" if in_top else ""
        )
        return Decision(
            status="pass" if ok else "fail",
            observed={"share": total, "in_top_k": in_top, "top_k": top},
            threshold={"max_share": params.max_share, "top_k": params.top_k},
            reason=reason,
            evidence=[f"ledger:{seq}"],
        )


class ProxyParams(Params):
    auc_threshold: float = Field(default=0.8, gt=0.5, le=1)
    min_share: float = Field(default=0.1, ge=0, le=1)


class ProxyFeatures(Check[ProxyParams]):
    """No feature both predicts a protected attribute (AUC >= threshold) and carries a large |SHAP| share.

    Dropping the protected column is not enough when another feature stands in for it.
    """

    name = "proxy_features"
    Params = ProxyParams

    def evaluate(self, subject: Subject, params: ProxyParams) -> Decision:
        found = explanations(subject.store, subject.id)
        if found.latest and not any(e.get("proxies") for _, e in found.latest.values()):
            seq = max(s for s, _ in found.latest.values())
            return Decision(
                status="not_evaluated",
                reason="the explanation was made without protected columns (governance explain --protected ...)",
                evidence=[f"ledger:{seq}"],
            )
        return _each_explanation(subject, lambda seq, e: self._judge(seq, e, params), keep=lambda e: e.get("proxies"))

    @staticmethod
    def _judge(seq: int, e: dict, params: ProxyParams) -> Decision:
        if not e.get("proxies"):
            return Decision(
                status="not_evaluated",
                reason="the explanation was made without protected columns (governance explain --protected ...)",
                evidence=[f"ledger:{seq}"],
            )
        share = {i["feature"]: i["share"] for i in e["importance"]}
        proxies = [
            {"feature": f, "protected": p, "auc": auc, "share": share.get(f, 0.0)}
            for p, scores in e["proxies"].items()
            for f, auc in scores.items()
            if auc >= params.auc_threshold and share.get(f, 0.0) >= params.min_share
        ]
        proxies.sort(key=lambda x: (-x["share"], x["feature"]))
        reason = (
            "; ".join(
                f"{x['feature']} stands in for {x['protected']} (AUC {x['auc']:.2f}, {x['share']:.0%} of |SHAP|)"
                for x in proxies
            )
            or "no proxy for a protected attribute"
        )
        return Decision(
            status="fail" if proxies else "pass",
            observed=proxies,
            threshold={"auc": params.auc_threshold, "share": params.min_share},
            reason=reason,
            evidence=[f"ledger:{seq}"],
        )


class AdditivityParams(Params):
    max_residual: float = Field(default=1e-6, gt=0)


class Additivity(Check[AdditivityParams]):
    """SHAP values add up to the explained output: the largest residual is below the threshold."""

    name = "additivity"
    Params = AdditivityParams

    def evaluate(self, subject: Subject, params: AdditivityParams) -> Decision:
        return _each_explanation(subject, lambda seq, e: self._judge(seq, e, params))

    @staticmethod
    def _judge(seq: int, e: dict, params: AdditivityParams) -> Decision:
        if not e.get("additivity"):
            return Decision(status="not_evaluated", reason=f"ledger:{seq} records no additivity residual")
        residual = e["additivity"]["max"]
        ok = residual <= params.max_residual
        return Decision(
            status="pass" if ok else "fail",
            observed=e["additivity"],
            threshold={"max_residual": params.max_residual},
            reason=f"largest additivity residual {residual:.3g} ({e['explainer']} explainer)",
            evidence=[f"ledger:{seq}"],
        )


class StabilityParams(Params):
    min_rank_correlation: float = Field(default=0.8, ge=-1, le=1)
    top_k: int = Field(default=5, ge=1)
    min_top_k_overlap: float = Field(default=0.6, ge=0, le=1)


class ExplanationStability(Check[StabilityParams]):
    """Feature importance agrees with the version released most recently before (by ledger order)."""

    name = "explanation_stability"
    Params = StabilityParams

    def evaluate(self, subject: Subject, params: StabilityParams) -> Decision:
        found = latest_explanation(subject.store, subject.id)
        if not found:
            return _no_explanation(subject, explanations(subject.store, subject.id))
        seq, e = found
        previous = _previous_released(subject)
        before = latest_explanation(subject.store, previous) if previous else None
        if not previous or not before:
            return Decision(
                status="not_evaluated",
                reason="no earlier released version with an explanation computed on its recorded artifact",
                evidence=[f"ledger:{seq}"],
            )
        pseq, p = before
        now_rank = [i["feature"] for i in e["importance"]]
        old_rank = [i["feature"] for i in p["importance"]]
        require("explain", "scipy")  # the gate reports MissingExtra as not evaluated
        from scipy.stats import spearmanr

        common = [f for f in now_rank if f in old_rank]
        rho = (
            float(spearmanr([now_rank.index(f) for f in common], [old_rank.index(f) for f in common]).statistic)
            if len(common) > 2
            else 1.0
        )
        overlap = len(set(now_rank[: params.top_k]) & set(old_rank[: params.top_k])) / params.top_k
        ok = rho >= params.min_rank_correlation and overlap >= params.min_top_k_overlap
        return Decision(
            status="pass" if ok else "fail",
            observed={"rank_correlation": round(rho, 4), "top_k_overlap": overlap, "compared_with": previous},
            threshold={
                "min_rank_correlation": params.min_rank_correlation,
                "min_top_k_overlap": params.min_top_k_overlap,
                "top_k": params.top_k,
            },
            reason=f"rank correlation {rho:.2f} and top-{params.top_k} overlap {overlap:.0%} with {previous}",
            evidence=[f"ledger:{seq}", f"ledger:{pseq}", previous],
        )


def _previous_released(subject: Subject) -> str | None:
    """The other version of this model released most recently (ledger order, which no client sets)."""
    from governance.gate import release_history  # the gate imports the checks

    for release in reversed(release_history(subject.store, str(parse_id(subject.id).entity()))):
        if release["decision"] == "release" and release["model"] != subject.id:
            return release["model"]
    return None


# Registered through governance.plugin's register_checks hook.
CHECKS = (
    FourFifths,
    EqualizedOdds,
    ProtectedReliance,
    ProxyFeatures,
    Additivity,
    ExplanationStability,
)
