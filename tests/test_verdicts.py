"""Verdicts that hold: approvals that mean one person once, and policies a release cannot shop around.

Each test is an attack a hostile insider could make with the documented CLI and
API; each runs on every backend (the ``store`` fixture).
"""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from conftest import ROOT

from governance import approvals as appr
from governance import binding, kinds, readmodels, records
from governance import gate as gates
from governance.errors import AuthorityError, GovernanceError, RevokedError, SignatureError
from governance.rules import load_policy
from lineage.cli import cli
from lineage.errors import EntryError
from lineage.ingest import ingest, read_documents
from lineage.ledger import Pending

MODEL = "model:demo/churn-classifier@3"
EVIDENCE = "sha256:" + "0" * 64
QUORUM_TWO = """\
rules:
  - id: two-risk-officers
    title: Two model-risk officers approve
    rationale: Four eyes.
    severity: block
    check: approvals
    params: {role: model-risk, quorum: 2}
"""


@pytest.fixture
def gov(store):
    with open(ROOT / "lineage/samples/demo-training-pipeline.jsonl", "rb") as f:
        assert ingest(store, read_documents(f, "demo"), "trainer").accepted > 0
    return store


def key(store, tmp_path, name, roles=("model-risk",), file=None):
    path = tmp_path / (file or f"{name.split()[0].lower()}.pem")
    appr.generate_key(store, name, list(roles), path, "admin")
    return appr.load_signer(path)


def signed(store, signer, role="model-risk", decision="approve", model=MODEL):
    return appr.signed_payload(
        model, readmodels.artifact_digest(store, model), role, signer, EVIDENCE, store.head().hash, decision
    )


def quorum_policy(tmp_path):
    path = tmp_path / "quorum.yaml"
    path.write_text(QUORUM_TWO)
    return load_policy([str(path)])


# --- approvals mean one person, once --------------------------------------------------


def test_one_key_signing_twice_does_not_meet_a_quorum_of_two(gov, tmp_path):
    rita = key(gov, tmp_path, "Rita Risk")
    first = appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:rita")
    second = appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:someone-else")
    assert not first.duplicate and not second.duplicate  # two statements (different times), both valid...
    result = gates.evaluate(gov, MODEL, quorum_policy(tmp_path))
    [rule] = result.results
    assert (result.outcome, rule.observed) == ("blocked", {"approvers": ["Rita Risk"]})  # ...counted once
    assert rule.reason.startswith("1 of 2 required model-risk approval(s) by distinct people")


def test_two_keys_registered_to_one_person_count_once_and_two_people_meet_the_quorum(gov, tmp_path):
    a = key(gov, tmp_path, "Rita Risk", file="a.pem")
    b = key(gov, tmp_path, "rita  RISK", file="b.pem")  # same person, another key, other spelling
    appr.approve(gov, MODEL, "model-risk", a, EVIDENCE, "t")
    appr.approve(gov, MODEL, "model-risk", b, EVIDENCE, "t")
    assert gates.evaluate(gov, MODEL, quorum_policy(tmp_path)).outcome == "blocked"
    appr.approve(gov, MODEL, "model-risk", key(gov, tmp_path, "Omar Officer"), EVIDENCE, "t")
    result = gates.evaluate(gov, MODEL, quorum_policy(tmp_path))
    assert (result.outcome, result.results[0].observed["approvers"]) == ("pass", ["Rita Risk", "Omar Officer"])


def test_the_approver_is_the_keys_registered_person_and_the_cli_takes_no_free_text_name(gov, tmp_path):
    rita = key(gov, tmp_path, "Rita Risk")
    appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:mallory")
    [a] = readmodels.approvals(gov, MODEL)
    assert (a.approver, a.recorded_by, a.valid) == ("Rita Risk", "cli:mallory", True)
    result = CliRunner().invoke(
        cli,
        [
            "governance",
            "approve",
            MODEL,
            "--role",
            "model-risk",
            "--key",
            str(tmp_path / "rita.pem"),
            "--approver",
            "Someone Else",
        ],
    )
    assert result.exit_code == 2 and "No such option '--approver'" in result.output


def test_the_same_statement_submitted_again_is_a_duplicate(gov, tmp_path):
    payload = signed(gov, key(gov, tmp_path, "Rita Risk"))
    first = appr.record_signed(gov, payload, "api:one")
    again = appr.record_signed(gov, copy.deepcopy(payload), "api:two")
    assert (again.seq, again.duplicate) == (first.seq, True)
    assert len(readmodels.approvals(gov, MODEL)) == 1


def test_a_revoked_approval_cannot_be_brought_back_by_altering_what_the_signature_does_not_cover(gov, tmp_path):
    payload = signed(gov, key(gov, tmp_path, "Rita Risk"))
    seq = appr.record_signed(gov, payload, "api").seq
    appr.revoke_approval(gov, seq, "signed the wrong version", "api")
    with pytest.raises(RevokedError, match="was revoked"):
        appr.record_signed(gov, payload, "api")
    for altered in (
        {**payload, "approver": "Someone Else"},
        {**payload, "envelope": {**payload["envelope"], "extra": "x"}},
        {**payload, "envelope": {**payload["envelope"], "signatures": payload["envelope"]["signatures"] * 2}},
    ):
        head = gov.head()
        with pytest.raises(EntryError):
            appr.record_signed(gov, altered, "api")
        assert gov.head() == head
    assert [a.valid for a in readmodels.approvals(gov, MODEL)] == [False]
    assert not readmodels.is_approved(gov, MODEL)


def _resign(store, signer, statement: dict) -> dict:
    """An envelope over an arbitrary statement, properly signed by ``signer``."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(json.dumps(statement, sort_keys=True).encode(), appr.PAYLOAD_TYPE, {})
    envelope.sign(signer)
    return {"model": MODEL, "envelope": envelope.to_dict()}


@pytest.mark.parametrize(
    "field, value",
    [
        ("_type", "https://in-toto.io/Statement/v0.1"),
        ("predicateType", "https://slsa.dev/provenance/v1"),
        ("predicate.decision", "maybe"),
        ("predicate.role", ["model-risk"]),
    ],
)
def test_a_signed_statement_of_the_wrong_type_or_shape_is_refused(gov, tmp_path, field, value):
    rita = key(gov, tmp_path, "Rita Risk")
    statement = appr.envelope_payload(signed(gov, rita))
    if "." in field:
        outer, inner = field.split(".")
        statement[outer][inner] = value
    else:
        statement[field] = value
    head = gov.head()
    with pytest.raises(SignatureError, match="not an auditgraph approval"):
        appr.record_signed(gov, _resign(gov, rita, statement), "api")
    assert gov.head() == head


def test_a_wrong_dsse_payload_type_is_refused(gov, tmp_path):
    payload = signed(gov, key(gov, tmp_path, "Rita Risk"))
    payload["envelope"]["payloadType"] = "application/json"
    with pytest.raises(EntryError, match="payloadType"):
        appr.record_signed(gov, payload, "api")


@pytest.mark.parametrize(
    "body",
    [
        {"model": [MODEL], "envelope": {}},
        {"model": MODEL, "envelope": "x"},
        {"model": MODEL, "envelope": {"payload": 1, "payloadType": appr.PAYLOAD_TYPE, "signatures": []}},
        {
            "model": MODEL,
            "envelope": {
                "payload": "e30=",
                "payloadType": appr.PAYLOAD_TYPE,
                "signatures": [{"keyid": {"a": 1}, "sig": "AA=="}],
            },
        },
    ],
)
def test_a_malformed_approval_never_reaches_the_store_and_later_gates_still_run(gov, tmp_path, body):
    head = gov.head()
    with pytest.raises(EntryError):
        appr.record_signed(gov, body, "api")
    with pytest.raises(EntryError):  # not even by appending it directly
        gov.append(Pending("governance.approval", body, "api", subject=MODEL))
    assert gov.head() == head
    assert gates.evaluate(gov, MODEL, quorum_policy(tmp_path)).outcome == "blocked"


def _trained(digest: str, time: str, run: str = "8d3a3f2e-0000-4000-8000-000000000001") -> dict:
    from conftest import run_event

    facet = {
        "_producer": "https://example.com/sdk",
        "_schemaURL": "https://example.com/model.json",
        "version": "1",
        "artifactDigest": digest,
        "framework": "sklearn",
    }
    return run_event(
        "train",
        run,
        time=time,
        namespace="ml",
        outputs=[{"namespace": "ml", "name": "scorer", "facets": {"auditgraph_model": facet}}],
    )


def test_an_approval_whose_artifact_changed_since_signing_stops_counting(store, tmp_path):
    from conftest import ingest_events

    model = "model:ml/scorer@1"
    assert ingest_events(store, [_trained("sha256:" + "a" * 64, "2024-05-01T10:00:00Z")]).accepted == 1
    appr.approve(store, model, "model-risk", key(store, tmp_path, "Rita Risk"), EVIDENCE, "t")
    assert readmodels.is_approved(store, model)
    assert ingest_events(store, [_trained("sha256:" + "b" * 64, "2024-05-01T11:00:00Z")]).accepted == 1
    [a] = readmodels.approvals(store, model)
    assert not a.valid and a.problem.startswith(
        "the artifact recorded for this version changed: ledger:1 "
        f"recorded sha256:{'a' * 64}, ledger:4 sha256:{'b' * 64}"
    ), a.problem
    assert not readmodels.is_approved(store, model)
    assert readmodels.artifact_digest(store, model) == "a" * 64  # fixed by the first record
    path = tmp_path / "integrity.yaml"
    path.write_text(RULE.format(id="integrity", severity="block", check="lineage_complete", params="{}"))
    [r] = gates.evaluate(store, model, load_policy([str(path)])).results
    assert r.status == "fail" and "artifact recorded for this version changed" in r.reason


def test_a_model_whose_only_approval_is_a_rejection_is_not_approved(gov, tmp_path):
    appr.approve(gov, MODEL, "model-risk", key(gov, tmp_path, "Rita Risk"), EVIDENCE, "t", decision="reject")
    [a] = readmodels.approvals(gov, MODEL)
    assert (a.valid, a.decision) == (True, "reject")
    assert not readmodels.is_approved(gov, MODEL)
    assert "auditgraph.approval" not in gov.facets(MODEL)


def test_separation_of_duties_refuses_the_signer_who_recorded_the_training_run_whoever_submits(gov, tmp_path):
    path = tmp_path / "sod.yaml"
    path.write_text(QUORUM_TWO.replace("quorum: 2", "quorum: 1, separate_from_training: true"))
    policy = load_policy([str(path)])
    mallory = tmp_path / "mallory.pem"
    appr.generate_key(gov, "Mallory Insider", ["model-risk"], mallory, "admin", identities=["trainer"])  # she trained
    for submitted_by in ("trainer", "cli:someone-else", "apikey:0123456789abcdef:approver"):
        appr.approve(gov, MODEL, "model-risk", appr.load_signer(mallory), EVIDENCE, submitted_by)
        result = gates.evaluate(gov, MODEL, policy)
        assert (
            result.outcome == "blocked" and "Mallory Insider also recorded the training run" in result.results[0].reason
        )
    appr.approve(gov, MODEL, "model-risk", key(gov, tmp_path, "Rita Risk"), EVIDENCE, "t")  # no identity registered
    result = gates.evaluate(gov, MODEL, policy)
    assert result.outcome == "blocked" and "names no identity" in result.results[0].reason  # unknown: fails closed
    omar = tmp_path / "omar.pem"
    appr.generate_key(gov, "Omar Officer", ["model-risk"], omar, "admin", identities=["cli:omar"])
    appr.approve(gov, MODEL, "model-risk", appr.load_signer(omar), EVIDENCE, "t")
    assert gates.evaluate(gov, MODEL, policy).outcome == "pass"


# --- policy binding ----------------------------------------------------------------------


def _approve_quorum(gov, tmp_path):
    for name in ("Rita Risk", "Omar Officer"):
        appr.approve(gov, MODEL, "model-risk", key(gov, tmp_path, name), EVIDENCE, "t")


def test_a_model_bound_to_policies_cannot_be_released_under_a_weaker_one(gov, tmp_path):
    _approve_quorum(gov, tmp_path)
    strict = quorum_policy(tmp_path)
    binding.bind(gov, "model:demo/*", strict, "admin", "MRM-1")
    weak = tmp_path / "weak.yaml"
    weak.write_text(QUORUM_TWO.replace("quorum: 2", "quorum: 1").replace("two-risk-officers", "one-officer"))
    head = gov.head()
    with pytest.raises(GovernanceError, match="must be released under its bound policies; missing: .*quorum.yaml"):
        gates.release(gov, MODEL, load_policy([str(weak)]), "shopper")
    assert gov.head() == head  # nothing evaluated, nothing recorded
    result, seq = gates.release(gov, MODEL, load_policy([str(weak), str(tmp_path / "quorum.yaml")]), "releaser")
    assert result.outcome == "pass" and seq is not None  # the bound policy plus another: stricter, allowed
    [release] = gates.release_history(gov, "model:demo/churn-classifier")
    assert release["bound_by"] and release["policy"] == result.policy


def test_a_rule_file_edited_after_binding_must_be_bound_again(gov, tmp_path):
    _approve_quorum(gov, tmp_path)
    binding.bind(gov, MODEL, quorum_policy(tmp_path), "admin")
    (tmp_path / "quorum.yaml").write_text(QUORUM_TWO.replace("quorum: 2", "quorum: 1"))
    with pytest.raises(GovernanceError, match="its rules changed since"):
        gates.release(gov, MODEL, load_policy([str(tmp_path / "quorum.yaml")]), "releaser")


def test_the_latest_binding_of_a_glob_holds_and_every_matching_glob_applies(gov, tmp_path):
    binding.bind(gov, "model:demo/*", load_policy(["baseline"]), "admin")
    binding.bind(gov, "model:demo/*", load_policy(["nist-ai-rmf"]), "admin", replace=True)
    binding.bind(gov, MODEL, quorum_policy(tmp_path), "admin")
    binding.bind(gov, "model:other/*", load_policy(["iso-42001"]), "admin")
    names = sorted(b.name for b in binding.required(gov, MODEL))
    assert names == sorted(["pack:nist-ai-rmf", str(tmp_path / "quorum.yaml")])


def test_require_and_required_from_the_cli(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    run = CliRunner().invoke
    assert run(cli, ["demo", "--store", url]).exit_code == 0
    result = run(cli, ["governance", "require", "model:demo/*", "--policy", "baseline", "--store", url])
    assert result.exit_code == 0 and result.output.startswith("releases of model:demo/* must pass pack:baseline")
    shown = json.loads(run(cli, ["governance", "required", MODEL, "--json", "--store", url]).output)
    assert [(b["name"], b["glob"]) for b in shown] == [("pack:baseline", "model:demo/*")]
    refused = run(cli, ["governance", "release", MODEL, "--policy", "nist-ai-rmf", "--store", url])
    assert refused.exit_code == 5 and "missing: pack:baseline" in refused.output
    bad = run(cli, ["governance", "require", "demo/*", "--policy", "baseline", "--store", url])
    assert bad.exit_code == 2 and "models must name model ids" in bad.output


# --- gate semantics that fail closed -------------------------------------------------------

RULE = """\
rules:
  - id: {id}
    title: {id}
    rationale: test
    severity: {severity}
    check: {check}
    params: {params}
"""


def rule(tmp_path, check, params, severity="block", id="r"):
    path = tmp_path / f"{id}.yaml"
    path.write_text(RULE.format(id=id, severity=severity, check=check, params=params))
    return load_policy([str(path)])


def test_a_truncated_upstream_walk_is_not_evaluated_and_blocks_instead_of_hiding_tagged_data(
    gov, tmp_path, monkeypatch
):
    from conftest import ingest_events, run_event

    from governance import subject as subject_module

    records.tag(gov, "dataset:postgres://crm-db:5432/crm.public.customers", ["pii"], "t")
    runs = [e for e in gov.edges([MODEL], "upstream", ["WROTE"])]
    padding = [("pad", f"input-{i}") for i in range(30)]
    [training] = [e.src.removeprefix("run:") for e in runs]
    assert (
        ingest_events(
            gov,
            [run_event("train_churn_model", training, namespace="demo", inputs=padding, time="2030-01-01T00:00:00Z")],
        ).accepted
        == 1
    )
    monkeypatch.setattr(subject_module, "MAX_UPSTREAM", 20)  # the cap a padded run pushes past
    for check, params in (
        ("data_tags", "{tags: [pii]}"),
        ("upstream_not_deprecated", "{}"),
        ("data_licence", "{allowed: [cc-by-4.0]}"),
        ("lineage_complete", "{}"),
    ):
        result = gates.evaluate(gov, MODEL, rule(tmp_path, check, params))
        [r] = result.results
        assert (r.status, r.blocking, result.outcome) == ("not_evaluated", True, "blocked"), check
        assert "upstream walk" in r.reason and "stopped early" in r.reason
    monkeypatch.setattr(subject_module, "MAX_UPSTREAM", 100_000)
    [r] = gates.evaluate(gov, MODEL, rule(tmp_path, "data_tags", "{tags: [pii]}")).results
    assert r.status == "fail" and "crm.public.customers" in r.reason


def test_a_rule_with_nothing_to_check_is_not_applicable_and_never_evidence(gov, tmp_path):
    for check, params in (
        ("data_tags", "{tags: [pii]}"),
        ("upstream_not_deprecated", "{}"),
        ("data_licence", "{allowed: [mit], require_known: false}"),
    ):
        result = gates.evaluate(gov, MODEL, rule(tmp_path, check, params))
        [r] = result.results
        assert (r.status, r.blocking, result.outcome) == ("not_applicable", False, "pass"), check
        assert "nothing to check" in r.reason
    records.tag(gov, "dataset:s3://demo-lake/raw/usage_events.parquet", ["gold"], "t")
    [r] = gates.evaluate(gov, MODEL, rule(tmp_path, "upstream_not_deprecated", "{}")).results
    assert r.status == "pass"  # something upstream was looked at and vouched for


SCORER, SCORER_DIGEST = "model:ml/scorer@1", "sha256:" + "a" * 64


def _assessment(protected, ratio, odds):
    groups = [
        {"group": "a", "n": 500, "too_small": False, "selection_rate": 0.5},
        {"group": "b", "n": 500, "too_small": False, "selection_rate": 0.5 * ratio},
    ]
    metrics = {name: {"value": 0.0, "ci": None} for name in kinds.DISPARITY_NAMES}
    metrics["demographic_parity_ratio"] = {"value": ratio, "ci": None}
    metrics["equalized_odds_difference"] = {"value": odds, "ci": None}
    return {
        "protected": protected,
        "rows": 1000,
        "min_group_size": 30,
        "excluded_groups": [],
        "groups": groups,
        "metrics": metrics,
    }


@pytest.fixture
def scored(gov):
    """The demo store plus a model version whose artifact digest is recorded (evidence can be bound to it)."""
    from conftest import ingest_events

    assert ingest_events(gov, [_trained(SCORER_DIGEST, "2024-05-01T10:00:00Z")]).accepted == 1
    return gov


def fair(store, protected, ratio, odds, dataset=None, model_digest=SCORER_DIGEST, recorded=True):
    from governance.findings import record_fairness

    return record_fairness(
        store,
        SCORER,
        _assessment(protected, ratio, odds),
        "t",
        dataset=dataset,
        model_digest=model_digest,
        artifact_recorded=recorded,
    )


def test_a_narrower_later_fairness_record_never_hides_a_failing_one(scored, tmp_path):
    first = fair(scored, ["sex", "race"], 0.5, 0.3)  # intersectional: fails
    fair(scored, ["sex"], 0.95, 0.02)  # narrower, later: passes
    for check in ("four_fifths", "equalized_odds"):
        [r] = gates.evaluate(scored, SCORER, rule(tmp_path, check, "{}")).results
        assert r.status == "fail" and "race x sex" in r.reason, (check, r.reason)
        [r] = gates.evaluate(scored, SCORER, rule(tmp_path, check, "{groupings: [[sex], [race]]}")).results
        assert r.status == "not_evaluated" and "over race computed on the recorded artifact" in r.reason
        [r] = gates.evaluate(scored, SCORER, rule(tmp_path, check, "{protected: [race, sex]}")).results
        assert r.status == "fail"
    last = fair(scored, ["race", "sex"], 0.9, 0.05)  # the same grouping on the same data, "re-assessed" better
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", "{}")).results
    assert r.status == "fail" and sorted(r.observed)[:2] == [
        f"race x sex (ledger:{first})",
        f"race x sex (ledger:{last})",
    ]


def test_a_later_record_on_the_same_data_label_with_other_rows_never_replaces_a_failing_one(scored, tmp_path):
    """Attack pass 2, N1: re-running fairness under the same --dataset with cherry-picked rows."""
    holdout = "dataset:s3://demo-lake/raw/customers.csv"
    fair(scored, ["sex"], 0.2, 0.4, dataset=holdout)
    fair(scored, ["sex"], 1.0, 0.0, dataset=holdout)
    for params in ("{}", f"{{dataset: '{holdout}'}}"):
        [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", params)).results
        assert r.status == "fail" and "0.2 over sex" in r.reason


def test_a_fairness_record_on_other_data_never_hides_a_failing_one(scored, tmp_path):
    features, cherry = "dataset:s3://demo-lake/features/churn.parquet", "dataset:s3://demo-lake/raw/customers.csv"
    fair(scored, ["sex"], 0.5, 0.3, dataset=features)
    fair(scored, ["sex"], 0.99, 0.0, dataset=cherry)  # later, other data, better
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", "{}")).results
    assert r.status == "fail" and f"sex on {features} <" in r.reason  # every dataset assessed is judged
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", f"{{dataset: '{features}'}}")).results
    assert r.status == "fail"
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", f"{{dataset: '{cherry}'}}")).results
    assert r.status == "pass"  # the rule named that data itself


def test_fairness_evidence_about_another_file_or_no_model_does_not_count(scored, tmp_path):
    fair(scored, ["sex"], 0.5, 0.3)
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", "{}")).results
    assert r.status == "fail"
    fair(scored, ["sex"], 1.0, 0.0, model_digest="sha256:" + "f" * 64, recorded=False)  # --allow-unrecorded-artifact
    fair(scored, ["sex"], 1.0, 0.0, model_digest=None, recorded=None)  # --predictions: no model at all
    [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "four_fifths", "{}")).results
    assert r.status == "fail" and "2 record(s) set aside" not in r.reason  # the failing bound one still decides
    empty = rule(tmp_path, "four_fifths", "{}", id="fresh")
    from conftest import ingest_events

    ingest_events(
        scored,
        [
            _trained("sha256:" + "c" * 64, "2024-05-01T10:00:00Z", run="8d3a3f2e-0000-4000-8000-000000000002")
            | {
                "outputs": [
                    {
                        "namespace": "ml",
                        "name": "other",
                        "facets": {
                            "auditgraph_model": {
                                "_producer": "x",
                                "_schemaURL": "y",
                                "version": "1",
                                "artifactDigest": "sha256:" + "c" * 64,
                            }
                        },
                    }
                ]
            }
        ],
    )
    from governance.findings import record_fairness

    record_fairness(
        scored,
        "model:ml/other@1",
        _assessment(["sex"], 1.0, 0.0),
        "t",
        model_digest=SCORER_DIGEST,
        artifact_recorded=False,
    )
    [r] = gates.evaluate(scored, "model:ml/other@1", empty).results
    assert (
        r.status == "not_evaluated"
        and "1 record(s) set aside" in r.reason
        and "not on the recorded artifact" in r.reason
    )


def test_a_malformed_fairness_or_explanation_record_is_refused_and_a_broken_check_never_crashes_the_gate(
    scored, tmp_path
):
    from governance.findings import record_explanation, record_fairness

    head = scored.head()
    bad = _assessment(["sex"], 0.5, 0.3)
    bad["metrics"]["demographic_parity_ratio"]["value"] = "high"
    with pytest.raises(EntryError, match="demographic_parity_ratio"):
        record_fairness(scored, SCORER, bad, "t", model_digest=SCORER_DIGEST, artifact_recorded=True)
    with pytest.raises(EntryError):
        record_explanation(
            scored,
            SCORER,
            {"explainer": "tree", "features": ["a"], "importance": [{"feature": "a"}], "additivity": "ok"},
            "t",
            model_digest=SCORER_DIGEST,
            artifact_recorded=True,
        )
    assert scored.head() == head
    from governance.checks import Check
    from lineage.hookspecs import hookimpl
    from lineage.plugins import register_plugin, unregister_plugin

    class Broken(Check):
        name = "broken_for_test"

        def evaluate(self, subject, params):
            return 1 >= "x"  # a bug in a check

    class Plugin:
        @hookimpl
        def register_checks(self):
            return [Broken]

    plugin = Plugin()
    register_plugin(plugin, "broken-check-for-test")
    try:
        [r] = gates.evaluate(scored, SCORER, rule(tmp_path, "broken_for_test", "{}")).results
    finally:
        unregister_plugin(plugin)
    assert (r.status, r.blocking) == ("not_evaluated", True) and "TypeError" in r.reason


def test_metric_threshold_names_its_dataset_exactly_and_a_cherry_picked_number_does_not_count(gov, tmp_path):
    from conftest import ingest_events, run_event

    ingest_events(
        gov, [run_event("split", outputs=[("s3://demo-lake", "holdout"), ("s3://demo-lake", "holdout-cherry-picked")])]
    )
    official, cherry = "dataset:s3://demo-lake/holdout", "dataset:s3://demo-lake/holdout-cherry-picked"
    records.record_evaluation(gov, MODEL, {"auc": 0.70}, "t", dataset=official)
    records.record_evaluation(gov, MODEL, {"auc": 0.97}, "t", dataset=cherry)  # later and better, other data
    [r] = gates.evaluate(
        gov, MODEL, rule(tmp_path, "metric_threshold", f"{{metric: auc, min: 0.8, dataset: '{official}'}}")
    ).results
    assert (r.status, r.observed) == ("fail", 0.70)  # prefix matching took the cherry-picked 0.97
    [r] = gates.evaluate(gov, MODEL, rule(tmp_path, "metric_threshold", "{metric: auc, min: 0.8}")).results
    assert r.status == "fail" and r.observed == {official: 0.70, cherry: 0.97}  # with no dataset named, every one
    prefix = official.removesuffix("out")
    [r] = gates.evaluate(
        gov, MODEL, rule(tmp_path, "metric_threshold", f"{{metric: auc, min: 0.8, dataset: '{prefix}'}}")
    ).results
    assert r.status == "not_evaluated"  # a prefix names nothing


# --- identity ------------------------------------------------------------------------------


def test_cli_entries_name_the_operator_from_actor_or_the_environment(tmp_path, monkeypatch):
    import getpass

    url = f"sqlite:///{tmp_path}/who.db"
    run = CliRunner().invoke
    assert run(cli, ["demo", "--store", url]).exit_code == 0
    crm = "dataset:postgres://crm-db:5432/crm.public.customers"
    monkeypatch.delenv("AUDITGRAPH_ACTOR", raising=False)
    assert run(cli, ["governance", "tag", crm, "pii", "--store", url]).exit_code == 0
    monkeypatch.setenv("AUDITGRAPH_ACTOR", "priya@example.com")
    assert run(cli, ["governance", "tag", crm, "gold", "--store", url]).exit_code == 0
    assert run(cli, ["governance", "tag", crm, "silver", "--store", url, "--actor", "omar@example.com"]).exit_code == 0
    from lineage.store import open_store

    with open_store(url) as store:
        actors = [e.actor for e in store.entries(kind="governance.tag")]
    assert actors == [f"cli:{getpass.getuser()}", "priya@example.com", "omar@example.com"]


def test_the_report_names_the_decisive_policy_and_every_gate_run_on_the_version(gov, tmp_path):
    from reports.bundle import collect
    from reports.render import render

    strict = quorum_policy(tmp_path)
    weak = rule(tmp_path, "documentation", "{require: [owners]}", severity="warn", id="weak")
    assert gates.record(gov, gates.evaluate(gov, MODEL, strict), "cli:alice").outcome == "blocked"
    result, seq = gates.release(gov, MODEL, weak, "cli:bob")  # nothing bound: allowed, but not hidden
    assert result.outcome == "pass" and seq
    bundle = collect(gov, MODEL)
    assert [(g["policy"], g["outcome"], g["actor"], g["release"]) for g in bundle["gate_history"]] == [
        ([str(tmp_path / "quorum.yaml")], "blocked", "cli:alice", False),
        ([str(tmp_path / "weak.yaml")], "pass", "cli:bob", True),
    ]
    assert bundle["gate"]["decisive"] == "the gate run its release cites" and bundle["bound_policies"] == []
    md = render(bundle, "md")
    assert "Decided under policy" in md and "weak.yaml" in md and "quorum.yaml" in md and "No policy is bound" in md
    card = render(bundle, "card")
    assert "2 gate run(s) on this version, 1 blocked" in card and "weak.yaml" in card


# --- evidence bound to the artifact ----------------------------------------------------------


@pytest.mark.slow
def test_explain_and_fairness_record_the_model_files_digest_and_refuse_a_file_lineage_does_not_record(adult, tmp_path):
    import shutil
    import zipfile

    from skops.io import dump

    from governance import kinds
    from lineage.sdk import file_digest
    from lineage.store import open_store

    shutil.copy(adult["url"].removeprefix("sqlite:///"), tmp_path / "copy.db")
    url = f"sqlite:///{tmp_path}/copy.db"
    swapped = tmp_path / "swapped.skops"
    dump(adult["model"], swapped, compression=zipfile.ZIP_DEFLATED)  # the same model, other bytes
    model = "model:ml/income@1"
    common = ["--data", str(adult["csv"]), "--target", "income", "--store", url]
    explain = ["governance", "explain", model, "--max-rows", "40", "--background-rows", "10", *common]
    fairness = [
        "governance",
        "fairness",
        model,
        "--positive",
        ">50K",
        "--protected",
        "sex",
        "--bootstrap",
        "0",
        *common,
    ]
    run = CliRunner().invoke
    for command in (explain, fairness):
        refused = run(cli, [*command, "--model-file", str(swapped)])
        assert refused.exit_code == 5 and "differs from the artifact recorded for model:ml/income@1" in refused.output
    with open_store(url) as store:
        head = store.head()
    assert run(cli, [*explain, "--model-file", str(adult["model_file"])]).exit_code == 0
    assert run(cli, [*fairness, "--model-file", str(swapped), "--allow-unrecorded-artifact"]).exit_code == 0
    with open_store(url) as store:
        [explanation] = [r.value for r in kinds.EXPLANATION.valid(store, model) if r.seq > head.seq]
        [assessment] = [r.value for r in kinds.FAIRNESS.valid(store, model) if r.seq > head.seq]
    assert (explanation.model_digest, explanation.artifact_recorded) == (file_digest(adult["model_file"]), True)
    assert (assessment.model_digest, assessment.artifact_recorded) == (file_digest(swapped), False)


@pytest.mark.slow
def test_a_gate_run_under_a_policy_set_the_binding_does_not_cover_decides_nothing_in_the_report(gov, tmp_path):
    from reports.bundle import collect
    from reports.render import render

    strict = quorum_policy(tmp_path)
    weak = rule(tmp_path, "documentation", "{require: [owners]}", severity="warn", id="weak")
    binding.bind(gov, "model:demo/*", strict, "admin")
    assert gates.record(gov, gates.evaluate(gov, MODEL, strict), "cli:alice").outcome == "blocked"
    assert (
        gates.record(gov, gates.evaluate(gov, MODEL, weak), "apikey:x:approver").outcome == "pass"
    )  # as POST /gate can
    bundle = collect(gov, MODEL)
    assert (bundle["gate"]["outcome"], bundle["gate"]["decisive"]) == (
        "blocked",
        "the latest gate run under every bound policy",
    )
    assert "**BLOCKED**" in render(bundle, "md") and "PASSED" not in render(bundle, "md").split("## Identity")[0]
    fresh = tmp_path / "unbound"
    fresh.mkdir()
    binding.bind(
        gov,
        "model:demo/*",
        load_policy([str(rule(fresh, "lineage_complete", "{}", id="other").sources[0])]),
        "admin",
        replace=True,
    )  # the binding changed: no run covers it yet
    assert collect(gov, MODEL)["gate"] is None


def test_a_later_run_cannot_choose_the_artifact_of_a_version_another_run_wrote(gov, tmp_path):
    from conftest import ingest_events, run_event

    from governance.findings import check_model_file

    assert readmodels.artifact(gov, MODEL).digest is None  # the demo model records no artifact
    facet = {"_producer": "x", "_schemaURL": "y", "version": "3", "artifactDigest": "sha256:" + "e" * 64}
    retag = run_event(
        "retag",
        namespace="demo",
        time="2030-01-01T00:00:00Z",
        outputs=[{"namespace": "demo", "name": "churn-classifier", "facets": {"auditgraph_model": facet}}],
    )
    assert ingest_events(gov, [retag]).accepted == 1  # any ingest key could send this
    recorded = readmodels.artifact(gov, MODEL)
    assert recorded.digest is None and "not adopted" in recorded.foreign_note  # reported, never adopted
    path = tmp_path / "m.skops"
    path.write_bytes(b"x")
    with pytest.raises(GovernanceError, match="no artifact digest is recorded"):
        check_model_file(gov, MODEL, path)  # so no evidence about any file can be bound to it
    [r] = gates.evaluate(gov, MODEL, rule(tmp_path, "lineage_complete", "{}")).results
    assert "not adopted" in r.observed["foreign_artifacts"]


def test_a_producer_re_emitting_a_model_with_its_digest_or_another_cannot_block_its_release(store, tmp_path):
    """Attack pass 2, N8: a foreign run's digest must not be a denial of service on a version's approvals."""
    from conftest import ingest_events

    model = "model:ml/scorer@1"
    assert ingest_events(store, [_trained("sha256:" + "a" * 64, "2024-05-01T10:00:00Z")]).accepted == 1
    appr.approve(store, model, "model-risk", key(store, tmp_path, "Rita Risk"), EVIDENCE, "t")
    for n, digest in enumerate(("a" * 64, "d" * 64)):  # a deploy step re-emits it; then someone sends another
        rerun = _trained("sha256:" + digest, "2024-06-01T10:00:00Z", run=f"8d3a3f2e-0000-4000-8000-00000000001{n}")
        assert ingest_events(store, [rerun]).accepted == 1
        recorded = readmodels.artifact(store, model)
        assert (recorded.digest, recorded.problem) == ("a" * 64, "")
        assert readmodels.is_approved(store, model)
    assert "sha256:" + "d" * 64 in readmodels.artifact(store, model).foreign_note


def test_revoking_a_signing_key_withdraws_its_approvals_but_not_the_vetoes_it_signed(gov, tmp_path):
    priya = key(gov, tmp_path, "Priya Shah")
    appr.approve(gov, MODEL, "model-risk", priya, EVIDENCE, "t", decision="reject")
    appr.revoke_key(gov, priya.public_key.keyid, "rotated: new laptop", "admin")
    [veto] = readmodels.approvals(gov, MODEL)
    assert veto.valid and veto.decision == "reject"
    assert gates.evaluate(gov, MODEL, quorum_policy(tmp_path)).results[0].reason == "rejected by Priya Shah"


def test_a_signed_veto_blocks_under_separation_of_duties_whoever_signed_it(gov, tmp_path):
    path = tmp_path / "sod.yaml"
    path.write_text(QUORUM_TWO.replace("quorum: 2", "quorum: 1, separate_from_training: true"))
    omar = tmp_path / "omar.pem"
    appr.generate_key(gov, "Omar Officer", ["model-risk"], omar, "admin", identities=["cli:omar"])
    appr.approve(gov, MODEL, "model-risk", appr.load_signer(omar), EVIDENCE, "t")
    appr.approve(gov, MODEL, "model-risk", key(gov, tmp_path, "Nina Noident"), EVIDENCE, "t", decision="reject")
    [r] = gates.evaluate(gov, MODEL, load_policy([str(path)])).results
    assert r.status == "fail" and r.reason == "rejected by Nina Noident"


# --- authority from the CLI ---------------------------------------------------------------


@pytest.mark.slow
def test_once_the_store_has_an_admin_key_administration_from_the_cli_needs_one_and_names_it(tmp_path, monkeypatch):
    from lineage.server import auth
    from lineage.store import open_store

    url = f"sqlite:///{tmp_path}/admin.db"
    run = CliRunner().invoke
    assert run(cli, ["demo", "--store", url]).exit_code == 0
    monkeypatch.delenv("AUDITGRAPH_API_KEY", raising=False)
    bind = ["governance", "require", "model:demo/*", "--policy", "baseline", "--store", url]
    assert run(cli, bind).exit_code == 0  # single-operator mode: no admin key yet
    made = json.loads(run(cli, ["keys", "create", "root", "--scope", "admin", "--json", "--store", url]).output)
    second = run(cli, ["keys", "create", "rita", "--scope", "approve", "--json", "--store", url])
    assert second.exit_code == 6 and "needs an admin API key" in second.output  # creating keys is administration
    weaker = ["governance", "require", "model:demo/*", "--policy", "iso-42001", "--replace", "--store", url]
    refused = run(cli, weaker)
    assert refused.exit_code == 6 and "needs an admin API key once the store has one" in refused.output
    keygen = [
        "governance",
        "keygen",
        "Mallory  lnsider",
        "--role",
        "model-risk",
        "--out",
        str(tmp_path / "m2.pem"),
        "--store",
        url,
    ]
    assert run(cli, keygen).exit_code == 6 and not (tmp_path / "m2.pem").exists()
    monkeypatch.setenv("AUDITGRAPH_API_KEY", made["token"])
    assert run(cli, [*weaker, "--actor", "cli:chief-risk-officer"]).exit_code == 7  # the key decides who it was
    assert run(cli, weaker).exit_code == 0
    with open_store(url) as store:
        [first, second] = list(store.entries(kind="governance.policy_binding"))
        assert second.actor == f"apikey:{made['key_id']}:root" and first.actor.startswith("cli:")
        assert json.loads(second.payload)["replaces"] == first.seq
        _, token = auth.create_key(store, "approver", ["approve"], "test")
    monkeypatch.setenv("AUDITGRAPH_API_KEY", token)
    lacking = run(cli, weaker)
    assert lacking.exit_code == 7 and "lacks the admin scope" in lacking.output


def test_dropping_a_bound_policy_needs_replace_and_every_binding_is_reported(gov, tmp_path):
    from reports.bundle import collect

    binding.bind(gov, "model:demo/*", load_policy(["baseline", "nist-ai-rmf"]), "cli:cro", "MRM-1")
    with pytest.raises(GovernanceError, match="would drop it. Pass --replace"):
        binding.bind(gov, "model:demo/*", load_policy(["baseline"]), "cli:mallory")
    seq = binding.bind(gov, "model:demo/*", load_policy(["baseline"]), "cli:mallory", "hotfix", replace=True)
    history = collect(gov, MODEL)["binding_history"]
    assert [(h["actor"], h["policies"], h["replaces"]) for h in history] == [
        ("cli:cro", ["pack:baseline", "pack:nist-ai-rmf"], None),
        ("cli:mallory", ["pack:baseline"], seq - 1),
    ]


def test_only_its_signer_or_an_administrator_can_revoke_an_approval(gov, tmp_path):
    rita, priya = key(gov, tmp_path, "Rita Risk"), key(gov, tmp_path, "Priya Shah")
    seq = appr.approve(gov, MODEL, "model-risk", priya, EVIDENCE, "t", decision="reject").seq
    with pytest.raises(AuthorityError, match="was not signed by key"):
        appr.revoke_approval(gov, seq, "mine now", "cli:rita", signer=rita)
    forged = appr.revoke_approval  # a signed revocation naming Priya's key but signed by Rita does not count
    statement, _ = readmodels.statement_of(gov, seq)
    signature = rita.sign(kinds.revocation_bytes(statement, MODEL)).signature
    gov.append(
        kinds.APPROVAL_REVOKED.pending(
            {
                "statement": statement,
                "model": MODEL,
                "by_key": priya.public_key.keyid,
                "signature": signature,
                "at": "2030-01-01T00:00:00Z",
            },
            "cli:rita",
        )
    )
    assert [a.valid for a in readmodels.approvals(gov, MODEL)] == [True] and forged
    appr.revoke_approval(gov, seq, "signed in error", "cli:priya", signer=priya)
    assert [a.valid for a in readmodels.approvals(gov, MODEL)] == [False]


def test_the_report_states_who_signed_in_which_role_and_leaves_the_verdict_to_the_gate(gov, tmp_path):
    from reports.bundle import collect
    from reports.render import render

    appr.approve(
        gov, MODEL, "privacy-officer", key(gov, tmp_path, "Priya Shah", roles=("privacy-officer",)), EVIDENCE, "t"
    )
    bundle = collect(gov, MODEL)
    assert "approved" not in bundle["model"]  # a boolean here disagreed with the gate's approvals rule
    assert bundle["model"]["signed_by_role"] == {"privacy-officer": {"approve": ["Priya Shah"], "reject": []}}
    assert "privacy-officer: approved by Priya Shah" in render(bundle, "md")
    assert gates.evaluate(gov, MODEL, quorum_policy(tmp_path)).outcome == "blocked"  # model-risk never signed


@pytest.mark.slow
def test_the_markdown_lists_each_binding_on_its_own_line_and_the_card_names_a_replacement(gov, tmp_path):
    from reports.bundle import collect
    from reports.render import render

    binding.bind(gov, "model:demo/*", load_policy(["baseline", "nist-ai-rmf"]), "cli:cro", "MRM-1")
    binding.bind(gov, "model:demo/*", load_policy(["baseline"]), "cli:mallory", "hotfix", replace=True)
    bundle = collect(gov, MODEL)
    lines = [line for line in render(bundle, "md").splitlines() if line.startswith("- Binding ledger")]
    assert len(lines) == 2 and "replaced ledger" in lines[1] and "hotfix" in lines[1]
    assert "A policy binding of this model was replaced" in render(bundle, "card")


def test_a_report_issued_after_the_facts_changed_says_the_verdict_no_longer_holds(gov, tmp_path):
    """Attack pass 2, N3: an approval revoked and a veto signed after the release."""
    from reports.bundle import collect
    from reports.render import render

    rita, omar = key(gov, tmp_path, "Rita Risk"), key(gov, tmp_path, "Omar Officer")
    seq = appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "t").seq
    appr.approve(gov, MODEL, "model-risk", omar, EVIDENCE, "t")
    result, released = gates.release(gov, MODEL, quorum_policy(tmp_path), "cli:releaser")
    assert result.outcome == "pass" and released
    assert collect(gov, MODEL)["gate"]["recheck"]["holds"] is True
    appr.revoke_approval(gov, seq, "signed the wrong version", "cli:rita", signer=rita)
    bundle = collect(gov, MODEL)
    assert (bundle["gate"]["outcome"], bundle["gate"]["recheck"]["holds"]) == ("blocked", False)
    md = render(bundle, "md")
    assert "**BLOCKED**" in md and "the verdict no longer holds" in md
    import xml.etree.ElementTree as ET

    assert ET.fromstring(render(bundle, "junit")).get("failures") == "1"
    assert "no longer holds" in render(bundle, "card")


@pytest.mark.slow
def test_the_sdk_computes_evidence_bound_to_the_artifact_from_the_artifact_itself(scored, tmp_path):
    """Attack pass 2, N2: artifact= used to vouch for any in-memory model or any predictions."""
    import numpy as np
    import pandas as pd
    from conftest import ingest_events
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    from governance.sdk import assess_fairness

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X.a > 0).astype(int).to_numpy()
    path = tmp_path / "real.skops"
    dump(LogisticRegression().fit(X, y), path)
    from lineage.sdk import file_digest

    real = "model:ml/real@1"
    event = _trained(file_digest(path), "2024-05-01T10:00:00Z", run="8d3a3f2e-0000-4000-8000-000000000077")
    event["outputs"][0]["name"] = "real"
    assert ingest_events(scored, [event]).accepted == 1
    sex = pd.DataFrame({"sex": ["f"] * 100 + ["m"] * 100})
    with pytest.raises(GovernanceError, match="pass the features X and y_pred=None"):
        assess_fairness(scored, real, y, np.ones(200, dtype=int), sex, artifact=path, bootstrap=0)  # made-up decisions
    seq, result = assess_fairness(scored, real, y, None, sex, artifact=path, X=X, bootstrap=0, min_group_size=10)
    [record] = [r.value for r in kinds.FAIRNESS.valid(scored, real)]
    assert record.artifact_recorded is True and record.model_digest == file_digest(path)


def test_separation_of_duties_fails_closed_when_no_registered_person_recorded_the_training(gov, tmp_path):
    """Attack pass 2, N4: training recorded through a shared ingest key hides who trained."""
    path = tmp_path / "sod.yaml"
    path.write_text(QUORUM_TWO.replace("quorum: 2", "quorum: 1, separate_from_training: true"))
    omar = tmp_path / "omar.pem"
    appr.generate_key(gov, "Omar Officer", ["model-risk"], omar, "admin", identities=["cli:omar"])
    appr.approve(gov, MODEL, "model-risk", appr.load_signer(omar), EVIDENCE, "t")
    [r] = gates.evaluate(gov, MODEL, load_policy([str(path)])).results  # "trainer" is nobody's identity
    assert r.status == "fail" and "which no registered person's identities name" in r.reason
