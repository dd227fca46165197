"""Anchored reports: a release report that verifies on a machine without the store.

A report is issued through the real CLI on a real store (SQLite file, Neo4j server) holding the
demo pipeline, an evaluation, owners and intended use, a policy binding, a signed approval and a
gate run; the bundle carries a checkpoint signed with a log key and an inclusion proof for every
entry it cites. It is copied elsewhere and verified with the store deleted and no store named;
every forgery an issuer or a courier could make in the bundle (re-sealed and re-rendered, as they
would) is caught, and so is a ledger rewritten and re-hashed after issuance, by the consistency
proof from the report's checkpoint to the store's tree.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from governance import approvals as appr
from governance import binding, records
from governance.evidence import evidence_digest, evidence_view
from governance.rules import load_policy
from lineage.canonical import digest
from lineage.checkpoint import LogKey, sign_note, split_note
from lineage.cli import cli
from lineage.ingest import ingest, read_documents
from lineage.ledger import GENESIS, entry_header
from lineage.store import open_store
from reports.bundle import seal
from reports.formats import RenderContext, formats

MODEL = "model:demo/churn-classifier@3"
POLICY = """\
rules:
  - id: accurate
    title: Accuracy on held-out data at least 0.8
    rationale: Below that the model is not useful.
    severity: block
    check: metric_threshold
    params: {metric: accuracy, min: 0.8}
  - id: approved
    title: A model-risk reviewer approved it
    rationale: A release is a decision a named person signs for.
    severity: block
    check: approvals
    params: {role: model-risk}
"""
NO_STORE = {"AUDITGRAPH_STORE": None, "AUDITGRAPH_LOG_KEY": None, "AUDITGRAPH_LOG_KEY_FILE": None}


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env={**NO_STORE, **(env or {})})


def evidence(store, base: Path) -> None:
    """The demo pipeline and the governance records a report states facts from."""
    with open(ROOT / "lineage/samples/demo-training-pipeline.jsonl", "rb") as f:
        assert ingest(store, read_documents(f, "demo"), "trainer").accepted > 0
    records.record_evaluation(store, MODEL, {"accuracy": 0.91, "auc": 0.88}, "cli:eve")
    records.set_owners(store, "model:demo/churn-classifier", ["ml-platform@example.com"], "cli:eve")
    records.set_intended_use(store, MODEL, "churn outreach", ["not for pricing"], "cli:eve")
    (base / "policy.yaml").write_text(POLICY)
    binding.bind(store, "model:demo/*", load_policy([str(base / "policy.yaml")]), "cli:admin")
    appr.generate_key(store, "Rita Risk", ["model-risk"], base / "rita.pem", "cli:admin")
    signer = appr.load_signer(base / "rita.pem")
    appr.approve(store, MODEL, "model-risk", signer, evidence_digest(evidence_view(store, MODEL)), "cli:rita")


def log_key(base: Path, name: str = "auditgraph.test/log") -> dict[str, Path]:
    made = run("audit", "keygen", name, "--out", base / f"{name.replace('/', '_')}.key")
    assert made.exit_code == 0, made.output
    (base / f"{name.replace('/', '_')}.pub").write_text(made.stdout)
    return {"key": base / f"{name.replace('/', '_')}.key", "pub": base / f"{name.replace('/', '_')}.pub"}


def issue(url: str, base: Path, *extra) -> Path:
    gate = run("governance", "gate", MODEL, "--policy", base / "policy.yaml", "--store", url)
    assert gate.exit_code == 0, gate.output
    result = run("reports", "release", MODEL, "--out", base / "report", "--store", url, *extra)
    assert result.exit_code == 0, result.output
    return base / "report"


def moved(report: Path, tmp_path: Path) -> Path:
    """The report as an auditor receives it: a copy in a fresh folder on another machine."""
    target = tmp_path / "received" / "report"
    shutil.copytree(report, target)
    return target


def delete_sqlite(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def bundle_of(folder: Path) -> dict:
    return json.loads((folder / "bundle.json").read_text())


def anchored_entry(bundle: dict, kind: str) -> dict:
    return next(e for e in bundle["anchor"]["entries"] if e["header"]["kind"] == kind)


# --- on every backend ---------------------------------------------------------------------------


def test_a_report_verifies_offline_with_the_store_gone(store, tmp_path, monkeypatch):
    evidence(store, tmp_path)
    keys = log_key(tmp_path)
    report = issue(store.url, tmp_path, "--log-key-file", keys["key"])
    received = moved(report, tmp_path)
    if store.scheme == "sqlite":
        store.close()
        delete_sqlite(store.url)
    else:
        store.drop_everything(confirm=True)
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))  # the default store, were it opened, would appear here
    monkeypatch.setenv("HOME", str(home))
    result = run("reports", "verify", received, "--log-key", keys["pub"])
    assert result.exit_code == 0, result.output
    b = bundle_of(received)
    cited = len(b["cited"])
    assert cited >= 6  # evaluation, owners, intended use, binding, approval and its key, gate run
    assert f"ok: {cited} cited entries and the ledger head: each hash recomputed from its header" in result.stdout
    assert f"is signed by log key {keys['pub'].read_text().strip()}" in result.stdout
    assert "statements match the payloads of the entries they cite" in result.stdout
    assert "ok: report.html re-renders byte for byte" in result.stdout and result.stderr == ""
    assert not home.exists()


def test_with_the_store_a_report_is_consistent_with_its_tree_and_passes(store, tmp_path):
    evidence(store, tmp_path)
    keys = log_key(tmp_path)
    report = issue(store.url, tmp_path, "--log-key-file", keys["key"])
    size = bundle_of(report)["anchor"]["size"]
    result = run("reports", "verify", report, "--log-key", keys["pub"], "--store", store.url)
    assert result.exit_code == 0, result.output
    assert (
        f"ok: the store's tree of {store.tree_size()} entries extends the report's checkpoint ({size} entries"
        in result.stdout
    )
    assert "(consistency proof verified)" in result.stdout
    assert "ok: the report's checkpoint: the ledger's first" in result.stdout


def rewrite_and_rehash(store, seq: int) -> None:
    """What someone with the database can do: change entry ``seq``, re-hash every later entry so the chain
    holds, and rebuild the Merkle tree from the rewritten ledger."""
    entries = list(store.entries(limit=None))
    prev = entries[seq - 2].hash if seq > 1 else GENESIS
    rows = []
    for e in entries[seq - 1 :]:
        actor = "mallory" if e.seq == seq else e.actor
        h = digest(entry_header(e.seq, e.recorded_at, e.kind, actor, e.subject, e.event_time, e.payload_digest, prev))
        rows.append({"seq": e.seq, "actor": actor, "prev": prev, "hash": h})
        prev = h
    if store.scheme == "sqlite":
        with sqlite3.connect(store.url.removeprefix("sqlite:///")) as db:
            db.executemany("UPDATE ledger SET actor = :actor, prev_hash = :prev, hash = :hash WHERE seq = :seq", rows)
            db.execute("DELETE FROM tiles")
            db.execute("DELETE FROM meta WHERE key = 'tree_size'")
    else:
        store._read(
            "UNWIND $rows AS r MATCH (e:LedgerEntry {seq: r.seq}) SET e.actor = r.actor, e.prev_hash = r.prev, "
            "e.hash = r.hash",
            rows=rows,
        )
        store._read("MATCH (t:MerkleTile) DELETE t")
        store._read("MATCH (h:LedgerHead {id: 'head'}) SET h.hash = $hash, h.tree_size = 0", hash=prev)
    store.sync_tree()
    checked = store.verify()
    assert checked.ok, checked.first_break  # the chain alone no longer shows anything


def test_a_ledger_rewritten_and_rehashed_after_issuance_is_caught_by_the_consistency_proof(store, tmp_path):
    evidence(store, tmp_path)
    keys = log_key(tmp_path)
    report = issue(store.url, tmp_path, "--log-key-file", keys["key"])
    rewrite_and_rehash(store, bundle_of(report)["gate"]["seq"])  # after the approval, whose signed head holds
    result = run("reports", "verify", report, "--log-key", keys["pub"], "--store", store.url)
    assert result.exit_code == 1
    size = bundle_of(report)["anchor"]["size"]
    assert (
        f"FAILED: the store's ledger no longer begins with what the report's checkpoint ({size} entries, root "
        in result.stderr
    )
    assert "it was rewritten after the report was issued" in result.stderr
    offline = run("reports", "verify", report, "--log-key", keys["pub"])
    assert offline.exit_code == 0, offline.output  # the report itself is intact: it is the store that changed


# --- forgeries in the bundle, caught without the store -------------------------------------------


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    base = tmp_path_factory.mktemp("anchored")
    url = f"sqlite:///{base}/store.db"
    with open_store(url) as store:
        evidence(store, base)
    keys = log_key(base)
    report = issue(url, base, "--log-key-file", keys["key"])
    return {"url": url, "base": base, "report": report, **keys}


def forge(folder: Path, change) -> None:
    """Change the bundle, re-seal it and re-render every rendering, as a forger would."""
    bundle = bundle_of(folder)
    change(bundle)
    bundle = seal(bundle)
    ctx = RenderContext()
    for fmt in formats().values():
        if fmt.reproducible and (folder / fmt.filename).exists():
            (folder / fmt.filename).write_bytes(fmt.render_bytes(bundle, ctx))


def gate_entry(b: dict) -> dict:
    return anchored_entry(b, "governance.gate")


def set_header(field, value):
    return lambda b: gate_entry(b)["header"].__setitem__(field, value)


def rehashed_header(b: dict) -> None:
    entry = gate_entry(b)
    entry["header"]["actor"] = "cli:mallory"
    entry["hash"] = digest(entry_header(**entry["header"]))
    for c in b["cited"]:
        if c["seq"] == entry["header"]["seq"]:
            c["hash"] = entry["hash"]


def flip_proof(b: dict) -> None:
    proof = gate_entry(b)["proof"]
    proof[0] = ("0" if proof[0][0] != "0" else "1") + proof[0][1:]


def altered_note(b: dict) -> None:
    text, _, signatures = b["anchor"]["checkpoint"].partition("\n\n")
    origin, size, root = text.split("\n")
    b["anchor"]["checkpoint"] = f"{origin}\n{int(size) + 1}\n{root}\n\n{signatures}"
    b["anchor"]["size"] += 1


def altered_signature(b: dict) -> None:
    note = b["anchor"]["checkpoint"]
    head, _, line = note.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(line))
    raw[-1] ^= 1
    b["anchor"]["checkpoint"] = f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


def other_root(b: dict) -> None:
    b["anchor"]["root"] = "00" * 32


def resigned_elsewhere(b: dict) -> None:
    """The checkpoint re-signed, with the same name, by a key that is not the log's."""
    text, _ = split_note(b["anchor"]["checkpoint"])
    b["anchor"]["checkpoint"] = sign_note(text, LogKey.generate(b["anchor"]["origin"]))


def altered_payload(b: dict) -> None:
    entry = gate_entry(b)
    entry["payload"] = entry["payload"].replace('"outcome":"pass"', '"outcome":"blocked"')


def altered_statement(b: dict) -> None:
    b["evaluations"][0]["metrics"]["accuracy"] = 0.99


def altered_approver(b: dict) -> None:
    b["approvals"][0]["approver"] = "Someone Senior"


def more_approvals(b: dict) -> None:
    b["model"]["valid_approvals"] += 1


def better_coverage(b: dict) -> None:
    b["frameworks"][0]["items"][0]["state"] = "evidenced"
    b["frameworks"][0]["items"][0]["rules"] = [{"rule": "accurate", "status": "pass"}]


def dropped_payload(b: dict) -> None:
    del gate_entry(b)["payload"]


def another_model(b: dict) -> None:
    b["model"]["id"] = "model:demo/churn-classifier@4"


def dropped_entry(b: dict) -> None:
    b["anchor"]["entries"].remove(gate_entry(b))


FORGERIES = {
    "a cited header field": (set_header("actor", "cli:mallory"), "its header hashes to "),
    "a header field, re-hashed": (rehashed_header, "its inclusion proof does not lead to the checkpoint's root"),
    "a proof hash": (flip_proof, "its inclusion proof does not lead to the checkpoint's root"),
    "the checkpoint text": (altered_note, "does not verify: the note was altered"),
    "the checkpoint signature": (altered_signature, "does not verify: the note was altered"),
    "the root": (other_root, "the anchor's origin, size or root differ from the checkpoint it carries"),
    "a checkpoint signed by another key": (resigned_elsewhere, "the note is not signed by log key"),
    "a cited payload": (altered_payload, "its payload does not match the payload digest in its header"),
    "a statement": (altered_statement, "evaluations (ledger entry "),
    "an approver's name": (altered_approver, "approvals (ledger entry "),
    "the identity's approval count": (more_approvals, "the model's approval counts and signers are not the ones"),
    "the framework coverage": (better_coverage, "the framework coverage is not the one the gate's rules give"),
    "a stated entry's payload left out": (dropped_payload, "its payload is not in the bundle, so it cannot be checked"),
    "the model the report is about": (another_model, f"which is about {MODEL}, not model:demo/churn-classifier@4"),
    "a cited entry's proof left out": (dropped_entry, "cited by the report, is not proven in the checkpoint's tree"),
}


def test_the_untouched_report_verifies_offline(anchored, tmp_path):
    result = run("reports", "verify", moved(anchored["report"], tmp_path), "--log-key", anchored["pub"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("what", sorted(FORGERIES))
def test_a_forged_anchor_or_statement_is_caught_offline(anchored, tmp_path, what):
    change, message = FORGERIES[what]
    folder = moved(anchored["report"], tmp_path)
    forge(folder, change)
    result = run("reports", "verify", folder, "--log-key", anchored["pub"])
    assert result.exit_code == 1, result.output
    assert message in result.stderr, result.stderr
    assert "ok: report.html re-renders byte for byte" in result.stdout  # the forger re-rendered: not what caught it


def test_a_statement_check_names_the_field_and_both_values(anchored, tmp_path):
    folder = moved(anchored["report"], tmp_path)
    forge(folder, altered_statement)
    seq = bundle_of(folder)["evaluations"][0]["seq"]
    result = run("reports", "verify", folder, "--log-key", anchored["pub"])
    assert (
        f'FAILED: evaluations (ledger entry {seq}) states metrics = {{"accuracy":0.99,"auc":0.88}}; '
        'the entry it cites records {"accuracy":0.91,"auc":0.88}\n'
    ) in result.stderr


def test_a_key_other_than_the_log_key_is_refused(anchored, tmp_path):
    other = log_key(tmp_path, "auditgraph.test/log")  # same name, another key
    result = run("reports", "verify", anchored["report"], "--log-key", other["pub"])
    assert result.exit_code == 1
    assert "FAILED: the report's checkpoint: the note is not signed by log key auditgraph.test/log+" in result.stderr


def test_without_the_log_key_the_anchor_is_not_trusted_and_verification_fails(anchored):
    result = run("reports", "verify", anchored["report"])
    assert result.exit_code == 1
    assert result.stderr == (
        "FAILED: the report's anchor is not checked: without the log's public key (--log-key, or "
        "$AUDITGRAPH_LOG_KEY) its checkpoint cannot be trusted\n"
    )


def test_skipping_the_anchor_needs_a_store(anchored):
    result = run("reports", "verify", anchored["report"], "--no-anchor")
    assert result.exit_code == 2
    assert "--no-anchor needs --store" in result.stderr


def test_the_anchor_carries_headers_proofs_and_the_payloads_the_report_states(anchored):
    b = bundle_of(anchored["report"])
    anchor = b["anchor"]
    assert anchor["source"].startswith("taken at issuance, recorded as ledger entry ")
    assert anchor["size"] >= b["ledger_head"]["seq"]
    by_seq = {e["header"]["seq"]: e for e in anchor["entries"]}
    assert set(by_seq) == {c["seq"] for c in b["cited"]} | {b["ledger_head"]["seq"]}
    gate = by_seq[b["gate"]["seq"]]
    assert set(gate["header"]) == {
        "seq",
        "recorded_at",
        "kind",
        "actor",
        "subject",
        "event_time",
        "payload_digest",
        "prev_hash",
    }
    assert json.loads(gate["payload"])["outcome"] == b["gate"]["outcome"] == "pass"
    assert "payload" not in by_seq[b["ledger_head"]["seq"]] or b["ledger_head"]["seq"] in {c["seq"] for c in b["cited"]}
    key = by_seq[b["approvals"][0]["key_seq"]]
    assert key["header"]["kind"] == "governance.key" and json.loads(key["payload"])["name"] == "Rita Risk"


def test_the_renderings_state_the_anchor(anchored):
    a = bundle_of(anchored["report"])["anchor"]
    html = (anchored["report"] / "report.html").read_text()
    md = (anchored["report"] / "report.md").read_text()
    assert (
        f'Anchored by checkpoint <span class="mono">{a["origin"]}</span> of {a["size"]} ledger entries, '
        f'root <span class="digest">{a["root"]}</span>'
    ) in html
    assert f"Anchored by checkpoint `{a['origin']}` of {a['size']} ledger entries, root `{a['root']}`" in md


# --- without a fresh checkpoint ---------------------------------------------------------------------


def test_without_a_log_key_the_newest_recorded_checkpoint_anchors_the_report(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with open_store(url) as store:
        evidence(store, tmp_path)
    keys = log_key(tmp_path)
    gate = run("governance", "gate", MODEL, "--policy", tmp_path / "policy.yaml", "--store", url)
    assert gate.exit_code == 0
    taken = run("audit", "checkpoint", "--log-key-file", keys["key"], "--json", "--store", url)
    recorded = json.loads(taken.stdout)
    result = run("reports", "release", MODEL, "--out", tmp_path / "report", "--store", url)
    assert result.exit_code == 0, result.output
    anchor = bundle_of(tmp_path / "report")["anchor"]
    assert (anchor["size"], anchor["source"]) == (recorded["size"], f"recorded as ledger entry {recorded['seq']}")
    delete_sqlite(url)
    verified = run("reports", "verify", tmp_path / "report", "--log-key", keys["pub"])
    assert verified.exit_code == 0, verified.output
    assert (
        f"note: the ledger head the report was drawn from (entry {recorded['seq']}) is after the checkpoint "
        f"({recorded['size']} entries): it is not proven offline; every cited entry is"
    ) in verified.stdout


def test_a_report_without_any_checkpoint_says_it_is_not_anchored_and_fails_offline(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with open_store(url) as store:
        evidence(store, tmp_path)
    keys = log_key(tmp_path)
    report = issue(url, tmp_path)
    why = "no checkpoint is recorded, and no log key was given to take one (--log-key-file)"
    assert bundle_of(report)["anchor"] == {"checkpoint": None, "why": why}
    assert f"**Not anchored**: {why}. It verifies only against the store." in (report / "report.md").read_text()
    offline = run("reports", "verify", report, "--log-key", keys["pub"])
    assert offline.exit_code == 1
    assert f"FAILED: the report is not anchored: {why}\n" in offline.stderr
    with_store = run("reports", "verify", report, "--no-anchor", "--store", url)
    assert with_store.exit_code == 0, with_store.output
    assert "note: --no-anchor: the checkpoint, the inclusion proofs and the statements" in with_store.stdout


def test_a_checkpoint_that_does_not_cover_a_cited_entry_does_not_anchor(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    keys = log_key(tmp_path)
    with open_store(url) as store:
        evidence(store, tmp_path)
    taken = json.loads(run("audit", "checkpoint", "--log-key-file", keys["key"], "--json", "--store", url).stdout)
    report = issue(url, tmp_path)  # the gate run is recorded after the checkpoint
    why = bundle_of(report)["anchor"]["why"]
    assert why.startswith(
        f"the newest recorded checkpoint (ledger entry {taken['seq']}) covers {taken['size']} entries and the "
        "report cites entry "
    )
