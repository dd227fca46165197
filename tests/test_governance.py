"""Governance on real recorded models: rules, approvals, the gate and releases."""

from __future__ import annotations

import base64
import json
import sqlite3
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from governance import approvals as appr
from governance import gate as gates
from governance import readmodels, records
from governance.errors import AuthorityError, RuleFileError, SignatureError
from governance.evidence import evidence_digest, evidence_view
from governance.rules import load_policy
from lineage.cli import cli
from lineage.clock import utc_text

MODEL = "model:demo/churn-classifier@3"
CRM = "dataset:postgres://crm-db:5432/crm.public.customers"
PRIVACY_RULES = """\
rules:
  - id: pii-needs-privacy-approval
    title: PII upstream needs the privacy officer
    rationale: Personal data may only train a model a privacy officer approved.
    severity: block
    check: data_tags
    params: {tags: [pii], approval_role: privacy-officer}
    evidences: {nist-ai-rmf: [MEASURE 2.10]}
  - id: auc-floor
    title: AUC at least 0.8
    rationale: Below 0.8 the retention team does better by hand.
    severity: block
    check: metric_threshold
    params: {metric: auc, min: 0.8}
  - id: documented
    title: Owners recorded
    rationale: Someone answers for it.
    severity: warn
    check: documentation
    params: {require: [owners]}
"""


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path}/gov.db"
    assert CliRunner().invoke(cli, ["demo", "--store", url]).exit_code == 0
    return url


@pytest.fixture
def store(url):
    from lineage.store import open_store

    with open_store(url) as s:
        yield s


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "privacy.yaml"
    path.write_text(PRIVACY_RULES)
    return path


@pytest.fixture
def privacy_key(store, tmp_path):
    path = tmp_path / "priya.pem"
    appr.generate_key(store, "Priya Shah", ["privacy-officer"], path, "test")
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def sign(store, key_path, role="privacy-officer", decision="approve"):
    signer = appr.load_signer(key_path)
    return appr.approve(store, MODEL, role, signer, evidence_digest(evidence_view(store, MODEL)), "test", decision).seq


def test_a_model_trained_on_pii_without_the_privacy_approval_is_blocked_naming_dataset_and_rule(
    url, store, policy_file
):
    records.tag(store, CRM, ["pii"], "test")
    records.record_evaluation(store, MODEL, {"auc": 0.91}, "test")
    result = run("governance", "gate", MODEL, "--policy", policy_file, "--store", url)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        f"BLOCKED: 1 blocking rule(s) for {MODEL}",
        f"  pii-needs-privacy-approval: {CRM}@unversioned tagged pii: needs an approval by the privacy-officer role",
    ]


def test_a_valid_approval_unblocks_it(url, store, policy_file, privacy_key):
    records.tag(store, CRM, ["pii"], "test")
    records.record_evaluation(store, MODEL, {"auc": 0.91}, "test")
    sign(store, privacy_key)
    result = run("governance", "gate", MODEL, "--policy", policy_file, "--store", url, "--json")
    assert result.exit_code == 0
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "pass"
    statuses = {r["rule"]: r["status"] for r in outcome["results"]}
    assert statuses == {"pii-needs-privacy-approval": "pass", "auc-floor": "pass", "documented": "warn"}


def test_a_rejection_by_the_role_blocks_even_with_an_approval(store, policy_file, privacy_key, tmp_path):
    records.tag(store, CRM, ["pii"], "test")
    records.record_evaluation(store, MODEL, {"auc": 0.91}, "test")
    sign(store, privacy_key)
    other = tmp_path / "second.pem"
    appr.generate_key(store, "Second Officer", ["privacy-officer"], other, "test")
    appr.approve(store, MODEL, "privacy-officer", appr.load_signer(other), "sha256:" + "0" * 64, "test", "reject")
    assert gates.evaluate(store, MODEL, load_policy([str(policy_file)])).outcome == "blocked"


def test_an_approval_signed_by_an_unregistered_key_is_refused(store, privacy_key):
    from securesystemslib.signer import CryptoSigner

    stranger = CryptoSigner.generate_ed25519()
    with pytest.raises(SignatureError, match="is not registered"):
        appr.approve(store, MODEL, "privacy-officer", stranger, "sha256:" + "0" * 64, "test")


def test_a_forged_approval_in_the_ledger_does_not_count_and_fails_verify(url, store, policy_file, privacy_key):
    """An approval whose envelope was signed by another key, appended as if genuine."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    from lineage.ledger import Pending

    records.tag(store, CRM, ["pii"], "test")
    genuine_key = appr.registered_keys(store)
    key_id = next(iter(genuine_key))
    forger = CryptoSigner.generate_ed25519()
    statement = appr.statement(
        MODEL,
        readmodels.artifact_digest(store, MODEL),
        {
            "keyId": key_id,
            "role": "privacy-officer",
            "decision": "approve",
            "time": utc_text(),
            "evidenceDigest": "sha256:" + "0" * 64,
            "ledgerHead": store.head().hash,
        },
    )
    envelope = Envelope(json.dumps(statement).encode(), appr.PAYLOAD_TYPE, {})
    envelope.sign(forger)
    forged = envelope.to_dict()
    forged["signatures"][0]["keyid"] = key_id  # claims to be Priya's key
    store.append(Pending(appr.APPROVAL, {"model": MODEL, "envelope": forged}, "mallory", subject=MODEL))
    [approval] = appr.approvals_of(store, MODEL)
    assert not approval.valid and "signature does not verify" in approval.problem
    result = store.verify()
    assert not result.ok and result.first_break.reason.startswith("approval signature does not verify")
    assert run("audit", "verify", "--store", url).exit_code == 1


def test_an_altered_approval_is_caught(url, store, policy_file, privacy_key, tmp_path):
    seq = sign(store, privacy_key)
    assert store.verify().ok and store.verify().signatures_checked == 1
    with sqlite3.connect(tmp_path / "gov.db") as db:
        payload = json.loads(db.execute("SELECT payload FROM ledger WHERE seq = ?", (seq,)).fetchone()[0])
        statement = appr.envelope_payload(payload)
        statement["predicate"]["role"] = "model-risk"
        payload["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        db.execute(
            "UPDATE ledger SET payload = ? WHERE seq = ?",
            (json.dumps(payload, sort_keys=True, separators=(",", ":")), seq),
        )
    assert not store.verify().ok
    [approval] = appr.approvals_of(store, MODEL)
    assert not approval.valid and approval.problem == "signature does not verify (VerificationError)"


def test_a_revoked_approval_and_a_revoked_key_stop_counting(store, policy_file, privacy_key):
    records.tag(store, CRM, ["pii"], "test")
    records.record_evaluation(store, MODEL, {"auc": 0.91}, "test")
    policy = load_policy([str(policy_file)])
    seq = sign(store, privacy_key)
    assert gates.evaluate(store, MODEL, policy).outcome == "pass"
    appr.revoke_approval(store, seq, "wrong version", "test")
    assert gates.evaluate(store, MODEL, policy).outcome == "blocked"
    sign(store, privacy_key)
    assert gates.evaluate(store, MODEL, policy).outcome == "pass"
    appr.revoke_key(store, appr.load_signer(privacy_key).public_key.keyid, "laptop stolen", "test")
    result = gates.evaluate(store, MODEL, policy)
    assert result.outcome == "blocked"
    assert all(not a.valid for a in appr.approvals_of(store, MODEL))


def test_a_key_cannot_sign_for_a_role_it_was_not_registered_for(store, privacy_key):
    with pytest.raises(AuthorityError, match="may sign for privacy-officer, not 'model-risk'"):
        sign(store, privacy_key, role="model-risk")


def test_a_metric_below_its_threshold_blocks(store, policy_file):
    records.record_evaluation(store, MODEL, {"auc": 0.74}, "test")
    result = gates.evaluate(store, MODEL, load_policy([str(policy_file)]))
    auc = next(r for r in result.results if r.rule == "auc-floor")
    assert (result.outcome, auc.status, auc.observed, auc.reason) == ("blocked", "fail", 0.74, "auc = 0.74 < 0.8")


def test_a_missing_evaluation_blocks_as_not_evaluated(store, policy_file):
    result = gates.evaluate(store, MODEL, load_policy([str(policy_file)]))
    auc = next(r for r in result.results if r.rule == "auc-floor")
    assert (auc.status, auc.blocking) == ("not_evaluated", True)


def test_a_rule_file_with_a_typo_gets_a_line_numbered_error_and_evaluates_nothing(url, store, tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text(
        PRIVACY_RULES.replace("check: metric_threshold", "check: metric_treshold").replace(
            "severity: warn", "severtiy: warn"
        )
    )
    head = store.head()
    result = run("governance", "gate", MODEL, "--policy", bad, "--store", url)
    assert result.exit_code == 2
    assert f"{bad}:15: rules[2].severity: Field required" in result.stderr
    assert f"{bad}:18: rules[2].severtiy: Extra inputs are not permitted" in result.stderr
    assert store.head() == head


def test_an_unknown_check_is_named_with_a_suggestion(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text(PRIVACY_RULES.replace("check: metric_threshold", "check: metric_treshold"))
    with pytest.raises(
        RuleFileError,
        match=rf"{bad}:13: rules\[1\].check: no check named 'metric_treshold' \(did you mean 'metric_threshold'\?\)",
    ):
        load_policy([str(bad)])


@pytest.mark.parametrize(
    "change, message",
    [
        (("min: 0.8", "min: high"), ":14: rules[1].params.min: Input should be a valid number"),
        (
            ("severity: block\n    check: data_tags", "severity: fatal\n    check: data_tags"),
            ":5: rules[0].severity: Input should be 'block' or 'warn'",
        ),
        (
            ("[MEASURE 2.10]", "[MEASURE 2.100]"),
            ":8: rules[0].evidences: nist-ai-rmf has no item 'MEASURE 2.100' (did you mean 'MEASURE 2.10'?)",
        ),
        (("tags: [pii]", "tags: []"), ":7: rules[0].params.tags: List should have at least 1 item"),
        (
            ("rules:\n", "rules:\n  - !!python/object/apply:os.system ['echo pwned']\n"),
            ":2: not valid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
        ),
    ],
)
def test_bad_rule_files_say_file_line_and_field(tmp_path, change, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PRIVACY_RULES.replace(*change))
    with pytest.raises(RuleFileError) as e:
        load_policy([str(bad)])
    assert f"{bad}{message}" in str(e.value)


def test_duplicate_rule_ids_across_files_are_an_error(policy_file):
    with pytest.raises(RuleFileError, match="rule id 'pii-needs-privacy-approval' is already defined"):
        load_policy([str(policy_file), str(policy_file)])


def test_a_policy_that_applies_to_nothing_is_a_configuration_error(url, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(
        PRIVACY_RULES.replace(
            "    severity: block\n    check: data_tags",
            "    severity: block\n    applies_to: {models: ['model:other/*']}\n    check: data_tags",
        )
        .replace("  - id: auc-floor", "  - id: auc-floor\n    applies_to: {models: ['model:other/*']}")
        .replace("  - id: documented", "  - id: documented\n    applies_to: {models: ['model:other/*']}")
    )
    result = run("governance", "gate", MODEL, "--policy", other, "--store", url)
    assert result.exit_code == 2 and "a gate with nothing to check does not pass" in result.stderr


def test_every_built_in_pack_loads_and_evidences_known_items():
    for pack in ("baseline", "nist-ai-rmf", "eu-ai-act-annex-iv", "iso-42001"):
        policy = load_policy([pack])
        assert policy.rules and all(r.evidences for r in policy.rules)


def test_the_gate_writes_junit_with_a_failure_per_blocking_rule(url, store, policy_file, tmp_path):
    records.record_evaluation(store, MODEL, {"auc": 0.5}, "test")
    report = tmp_path / "gate.xml"
    assert run("governance", "gate", MODEL, "--policy", policy_file, "--junit", report, "--store", url).exit_code == 1
    suite = ET.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "2")
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["auc-floor"]
    skipped = {
        c.get("name"): c.find("skipped").get("message").split(":")[0]
        for c in suite.iter("testcase")
        if c.find("skipped") is not None
    }
    assert skipped == {"pii-needs-privacy-approval": "not applicable", "documented": "warning"}


def test_every_gate_run_is_a_ledger_entry_with_passed_rules_too(url, store, policy_file):
    records.record_evaluation(store, MODEL, {"auc": 0.95}, "test")
    run("governance", "gate", MODEL, "--policy", policy_file, "--store", url)
    [entry] = list(store.entries(kind=gates.GATE))
    recorded = json.loads(entry.payload)
    assert {r["rule"]: r["status"] for r in recorded["results"]} == {
        "pii-needs-privacy-approval": "not_applicable",
        "auc-floor": "pass",
        "documented": "warn",
    }  # no pii upstream
    assert entry.subject == MODEL


def test_a_release_is_recorded_only_when_the_gate_passes_and_rollback_is_reversible(url, store, policy_file, tmp_path):
    records.record_evaluation(store, MODEL, {"auc": 0.5}, "test")
    blocked = run("governance", "release", MODEL, "--policy", policy_file, "--store", url)
    assert blocked.exit_code == 1 and "not released: the gate blocked it" in blocked.stdout
    assert gates.current_release(store, "model:demo/churn-classifier") is None
    records.record_evaluation(store, MODEL, {"auc": 0.9}, "test")
    assert run("governance", "release", MODEL, "--policy", policy_file, "--store", url).exit_code == 0
    assert gates.current_release(store, "model:demo/churn-classifier") == MODEL
    # a second version, released, then rolled back to the first, then forward again
    _ingest_version(url, "4")
    v4 = "model:demo/churn-classifier@4"
    records.record_evaluation(store, v4, {"auc": 0.92}, "test")
    assert run("governance", "release", v4, "--policy", policy_file, "--store", url).exit_code == 0
    back = ["governance", "rollback", "model:demo/churn-classifier", "--policy", policy_file, "--store", url]
    rolled = run(*back, "--to", MODEL, "--reason", "drift")
    assert rolled.exit_code == 0, rolled.output
    assert gates.current_release(store, "model:demo/churn-classifier") == MODEL
    assert run(*back, "--to", v4, "--reason", "fixed").exit_code == 0
    history = [(h["decision"], h["model"]) for h in gates.release_history(store, "model:demo/churn-classifier")]
    assert history == [("release", MODEL), ("release", v4), ("rollback", MODEL), ("rollback", v4)]
    never = run(*back, "--to", "model:demo/churn-classifier@9", "--reason", "x")
    assert never.exit_code == 4  # no such version
    # a rollback is a release: a version that no longer passes (a worse number recorded since) stays out
    records.record_evaluation(store, MODEL, {"auc": 0.5}, "test")
    refused = run(*back, "--to", MODEL, "--reason", "again")
    assert refused.exit_code == 1 and "not rolled back: the gate blocked it" in refused.stdout
    assert gates.current_release(store, "model:demo/churn-classifier") == v4


def _ingest_version(url: str, version: str) -> None:
    from importlib.resources import files

    lines = (files("lineage") / "samples" / "demo-training-pipeline.jsonl").read_text().splitlines()
    train = json.loads(lines[6])
    train["run"]["runId"] = "0c7e5a52-3c2e-4e0a-9a51-2f9f4b1a0099"
    train["eventTime"] = "2026-11-09T06:41:12Z"
    train["outputs"][0]["facets"]["version"]["datasetVersion"] = version
    result = CliRunner().invoke(cli, ["ingest", "-", "--store", url], input=json.dumps(train))
    assert result.exit_code == 0, result.output


def test_tags_owners_and_intended_use_are_ledger_entries(url, store):
    assert run("governance", "tag", CRM, "pii", "restricted", "--store", url).exit_code == 0
    assert set(records.tags_of(store, CRM + "@unversioned")) == {"pii", "restricted"}
    run("governance", "tag", CRM, "restricted", "--remove", "--store", url)
    assert set(records.tags_of(store, CRM)) == {"pii"}
    run("governance", "owners", "model:demo/churn-classifier", "alice@example.com", "--store", url)
    run(
        "governance",
        "intended-use",
        "model:demo/churn-classifier",
        "--use",
        "retention calls",
        "--limitation",
        "not pricing",
        "--store",
        url,
    )
    assert records.owners_of(store, MODEL).value == ["alice@example.com"]
    assert records.intended_use_of(store, MODEL).value["limitations"] == ["not pricing"]
    kinds = [e.kind for e in store.entries(after_seq=8)]
    assert kinds == [
        "governance.tag",
        "governance.tag",
        "governance.tag",
        "governance.owners",
        "governance.intended_use",
    ]


def test_bad_metadata_input_is_refused(url):
    assert run("governance", "evaluate", MODEL, "--metric", "auc", "--store", url).exit_code == 2
    assert (
        run("governance", "evaluate", "model:demo/churn-classifier", "--metric", "auc=1", "--store", url).exit_code == 2
    )
    assert run("governance", "tag", CRM, "has space", "--store", url).exit_code == 2


def test_approve_from_the_cli_signs_over_the_evidence_digest(url, store, tmp_path):
    key = tmp_path / "risk.pem"
    assert run("governance", "keygen", "Rita Risk", "--role", "model-risk", "--out", key, "--store", url).exit_code == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    digest = json.loads(run("governance", "evidence", MODEL, "--json", "--store", url).stdout)["digest"]
    result = run("governance", "approve", MODEL, "--role", "model-risk", "--key", key, "--store", url)
    assert result.exit_code == 0 and f"approval signed over {digest}" in result.stdout
    [approval] = appr.approvals_of(store, MODEL)
    assert (approval.valid, approval.approver, approval.evidence_digest) == (True, "Rita Risk", digest)
    assert "auditgraph.approval" not in store.facets(MODEL)  # "approved" is computed, never projected
    assert run("governance", "keygen", "again", "--role", "x", "--out", key, "--store", url).exit_code == 5
