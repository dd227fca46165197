"""Approvals anchored: the ledger head an approval signs must be an entry of this ledger at or before it.

An approver signs the head of the ledger they looked at. An approval that claims a head this ledger
never had (made up, or taken from another ledger), or one that exists only after the approval
(someone with write access to the database put the approval before what it claims to have seen),
does not count, is refused when submitted, and ``audit verify`` names it. Each test runs on every
backend (the ``store`` fixture), with real Ed25519 keys.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT

from governance import approvals as appr
from governance import gate as gates
from governance import kinds, readmodels, records
from governance.errors import SignatureError
from governance.rules import load_policy
from lineage.cli import cli
from lineage.ingest import ingest, read_documents
from lineage.ledger import Head, seal, verify_chain
from lineage.plugins import entry_checks
from lineage.projection import Facts
from lineage.store.batch import Batch

MODEL = "model:demo/churn-classifier@3"
CRM = "dataset:postgres://crm-db:5432/crm.public.customers"
EVIDENCE = "sha256:" + "0" * 64
MADE_UP = "ab" * 32
ONE_RISK_OFFICER = """\
rules:
  - id: risk-officer
    title: A model-risk officer approves
    rationale: Someone answers for it.
    severity: block
    check: approvals
    params: {role: model-risk, quorum: 1}
"""


@pytest.fixture
def gov(store, tmp_path):
    with open(ROOT / "lineage/samples/demo-training-pipeline.jsonl", "rb") as f:
        assert ingest(store, read_documents(f, "demo"), "trainer").accepted > 0
    appr.generate_key(store, "Rita Risk", ["model-risk"], tmp_path / "rita.pem", "admin")
    return store


@pytest.fixture
def rita(gov, tmp_path):
    return appr.load_signer(tmp_path / "rita.pem")


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "risk.yaml"
    path.write_text(ONE_RISK_OFFICER)
    return load_policy([str(path)])


def signed(store, signer, head: Head | str) -> dict:
    return appr.signed_payload(MODEL, readmodels.artifact_digest(store, MODEL), "model-risk", signer, EVIDENCE, head)


def appended(store, payload: dict) -> int:
    """Recorded past ``record_signed``'s checks, as anyone who can write the store through the package can."""
    return store.append(kinds.APPROVAL.pending(payload, "mallory")).seq


def audit_verify(store):
    return CliRunner().invoke(cli, ["audit", "verify", "--store", store.url])


def claims(store, seq: int) -> dict:
    entry = next(store.entries(after_seq=seq - 1, limit=1))
    return appr.envelope_payload(kinds.APPROVAL.read(entry).value.model_dump())["predicate"]


def test_an_approval_signs_the_head_and_its_sequence_number_counts_and_verifies(gov, rita, policy):
    head = gov.head()
    seq = appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:rita").seq
    assert (claims(gov, seq)["ledgerHead"], claims(gov, seq)["ledgerSeq"]) == (head.hash, head.seq)
    [approval] = readmodels.approvals(gov, MODEL)
    assert (approval.valid, approval.problem) == (True, "")
    assert gates.evaluate(gov, MODEL, policy).outcome == "pass"
    result = gov.verify()
    assert result.ok and result.signatures_checked == 1
    assert audit_verify(gov).exit_code == 0


def test_an_approval_signed_before_the_sequence_number_was_signed_still_counts_when_its_head_is_far_back(
    gov, rita, policy
):
    """The old statement form (a bare hash) is looked up by hash, scanning back from the approval."""
    payload = signed(gov, rita, gov.head().hash)
    for i in range(40):  # the ledger moves on between signing and recording
        records.tag(gov, CRM, [f"t{i}"], "test")
    seq = appr.record_signed(gov, payload, "cli:rita").seq
    assert "ledgerSeq" not in claims(gov, seq)
    assert [a.valid for a in readmodels.approvals(gov, MODEL)] == [True]
    assert gates.evaluate(gov, MODEL, policy).outcome == "pass"
    assert gov.verify().ok and gov.verify().signatures_checked == 1


def made_up(store) -> dict[str, Head | str]:
    head = store.head()
    one_back = next(store.entries(after_seq=head.seq - 2, limit=1))
    return {
        "a hash this ledger never had": Head(head.seq, MADE_UP),
        "the same, in the old form": MADE_UP,
        "a real hash under another sequence number": Head(head.seq, one_back.hash),
        "the empty ledger's head": "0" * 64,
    }


MADE_UP_CLAIMS = [
    "a hash this ledger never had",
    "the same, in the old form",
    "a real hash under another sequence number",
    "the empty ledger's head",
]


@pytest.mark.parametrize("claim", MADE_UP_CLAIMS)
def test_an_approval_over_a_made_up_ledger_head_is_refused_does_not_count_and_audit_verify_names_it(
    gov, rita, policy, claim
):
    head = made_up(gov)[claim]
    payload = signed(gov, rita, head)
    with pytest.raises(SignatureError, match="which is not an entry at or before it"):
        appr.record_signed(gov, payload, "cli:rita")
    seq = appended(gov, payload)
    [approval] = readmodels.approvals(gov, MODEL)
    signed_hash, at = (head.hash, f" (entry {head.seq})") if isinstance(head, Head) else (head, "")
    reason = f"approval signs ledger head {signed_hash}{at}, which is not an entry at or before it"
    assert (approval.valid, approval.problem) == (False, reason)
    assert gates.evaluate(gov, MODEL, policy).outcome == "blocked"
    result = gov.verify()
    assert (result.ok, result.first_break.seq, result.first_break.reason) == (False, seq, reason)
    cli_result = audit_verify(gov)
    assert cli_result.exit_code == 1
    assert cli_result.stderr.splitlines()[0] == f"BROKEN at entry {seq}: {reason}"


@pytest.mark.parametrize("form", ["with its sequence number", "in the old form"])
def test_an_approval_placed_before_the_head_it_claims_does_not_count_and_audit_verify_names_it(gov, rita, policy, form):
    """Written into the database directly: the approval (entry N+1, well chained) signs the hash of entry
    N+2, a head that exists only after it. The chain breaks at N+2 too; the approval is named first."""
    head = gov.head()
    tag = {"node": CRM, "tag": "pii", "action": "add", "at": "2024-05-01T10:00:00Z"}
    later = _sealed(kinds.TAG.pending(tag, "mallory"), Head(head.seq + 1, "f" * 64))
    claim = Head(later.seq, later.hash) if form == "with its sequence number" else later.hash
    approval = _sealed(kinds.APPROVAL.pending(signed(gov, rita, claim), "mallory"), head)
    _write_raw(gov, [approval, later])
    assert gov.head() == Head(later.seq, later.hash)
    [found] = readmodels.approvals(gov, MODEL)
    at = f" (entry {later.seq})" if form == "with its sequence number" else ""
    reason = f"approval signs ledger head {later.hash}{at}, which is not an entry at or before it"
    assert (found.seq, found.valid, found.problem) == (approval.seq, False, reason)
    assert gates.evaluate(gov, MODEL, policy).outcome == "blocked"
    result = gov.verify()
    assert (result.first_break.seq, result.first_break.reason) == (approval.seq, reason)
    assert audit_verify(gov).stderr.splitlines()[0] == f"BROKEN at entry {approval.seq}: {reason}"


def test_audit_verify_remembers_only_the_heads_approvals_claim(gov, rita):
    for i in range(30):
        records.tag(gov, CRM, [f"t{i}"], "test")
    appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:rita")
    checks = entry_checks(gov)
    [check] = [c for c in checks if isinstance(c, appr.ApprovalSignatures)]
    assert check.claimed == {claims(gov, gov.head().seq)["ledgerHead"]}
    assert verify_chain(gov.entries(limit=None), checks).ok
    assert list(check.seen) == list(check.claimed)  # of ~70 entries, one hash kept


def test_an_approval_recorded_after_audit_verify_collected_the_claims_is_still_checked(gov, rita):
    checks = entry_checks(gov)  # prepared: no approval recorded yet
    appr.approve(gov, MODEL, "model-risk", rita, EVIDENCE, "cli:rita")
    assert verify_chain(gov.entries(limit=None), checks).signatures_checked == 1
    checks = entry_checks(gov)
    appended(gov, signed(gov, rita, Head(gov.head().seq, MADE_UP)))
    result = verify_chain(gov.entries(limit=None), checks)
    assert result.first_break.seq == gov.head().seq and MADE_UP in result.first_break.reason


def _sealed(pending, head: Head):
    """The entry ``pending`` would be on top of ``head``, sealed as the write path seals it."""
    return seal(pending, *pending.canonical(), head)


def _write_raw(store, entries) -> None:
    """Insert entries as they are, without the write path's chain rules: a direct edit of the database."""
    with store.begin_write() as tx:
        batch = Batch(tx)
        for entry in entries:
            batch.add(entry, Facts())
        tx.write(batch)
