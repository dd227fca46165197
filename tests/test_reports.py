"""Release reports: a full report on a real Adult model, read in a real browser, and verified."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import IN_CI, ROOT

from governance import approvals as appr
from governance import records
from governance.evidence import evidence_digest, evidence_view
from lineage.cli import cli
from lineage.store import open_store
from reports.bundle import bundle_digest
from reports.pdf import find_chromium

pytestmark = (
    pytest.mark.slow
)  # every test reads a report built from the Adult model with real SHAP and fairness evidence

MODEL = "model:ml/income@1"
ARTIFACTS = ROOT / "test-artifacts"
POLICY = """\
rules:
  - id: four-fifths-sex
    title: Selection rates by sex within four fifths
    rationale: The four-fifths rule of US employment practice.
    severity: block
    check: four_fifths
    params: {threshold: 0.8, protected: [sex]}
    evidences: {nist-ai-rmf: [MEASURE 2.11], eu-ai-act-annex-iv: ["3"]}
  - id: no-proxy
    title: No stand-in for a protected attribute drives the model
    rationale: Dropping the protected column is not enough.
    severity: block
    check: proxy_features
    evidences: {nist-ai-rmf: [MEASURE 2.11]}
  - id: additive
    title: SHAP values add up
    rationale: An explanation that does not add up explains something else.
    severity: block
    check: additivity
    evidences: {nist-ai-rmf: [MEASURE 2.9]}
  - id: accurate
    title: Accuracy on held-out data at least 0.8
    rationale: Below that the model is not useful.
    severity: block
    check: metric_threshold
    params: {metric: accuracy, min: 0.8}
    evidences: {eu-ai-act-annex-iv: ["2(g)"], iso-42001: [A.6.2.4]}
  - id: approved
    title: A model-risk reviewer approved it
    rationale: A release is a decision a named person signs for.
    severity: block
    check: approvals
    params: {role: model-risk}
    evidences: {nist-ai-rmf: [MANAGE 1.1]}
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def reported(adult, tmp_path_factory):
    """The Adult model with real SHAP and fairness evidence, an evaluation, an approval, a gate run and a report."""
    base = tmp_path_factory.mktemp("report")
    shutil.copy(adult["base"] / "adult.db", base / "store.db")
    url = f"sqlite:///{base}/store.db"
    common = ["--model-file", adult["model_file"], "--data", adult["csv"], "--target", "income", "--store", url]
    assert (
        run(
            "governance", "explain", MODEL, "--protected", "sex", "--protected", "race", "--max-rows", "300", *common
        ).exit_code
        == 0
    )
    assert (
        run(
            "governance", "fairness", MODEL, "--positive", ">50K", "--protected", "sex", "--bootstrap", "50", *common
        ).exit_code
        == 0
    )
    with open_store(url) as store:
        records.record_evaluation(store, MODEL, {"accuracy": 0.86, "auc": 0.91}, "test")
        records.set_owners(store, "model:ml/income", ["ml-platform@example.com"], "test")
        records.set_intended_use(
            store, "model:ml/income", "research on income prediction", ["not for credit decisions"], "test"
        )
        appr.generate_key(store, "Rita Risk", ["model-risk"], base / "rita.pem", "test")
        appr.approve(
            store,
            MODEL,
            "model-risk",
            appr.load_signer(base / "rita.pem"),
            evidence_digest(evidence_view(store, MODEL)),
            "test",
        )
    (base / "policy.yaml").write_text(POLICY)
    assert run("governance", "gate", MODEL, "--policy", base / "policy.yaml", "--store", url).exit_code == 1
    made = run("audit", "keygen", "auditgraph.test/adult", "--out", base / "log.key")
    (base / "log.pub").write_text(made.stdout)
    formats = [x for f in ("html", "md", "json", "junit", "card") for x in ("--format", f)]
    result = run(
        "reports",
        "release",
        MODEL,
        "--out",
        base / "report",
        *formats,
        "--log-key-file",
        base / "log.key",
        "--store",
        url,
    )
    assert result.exit_code == 0, result.output
    return {"url": url, "dir": base / "report", "base": base, "pub": base / "log.pub"}


def bundle(reported) -> dict:
    return json.loads((reported["dir"] / "bundle.json").read_text())


def test_the_bundle_holds_every_section_with_real_evidence(reported):
    b = bundle(reported)
    assert b["schema"] == "auditgraph.report/2" and b["digest"] == bundle_digest(b)
    seqs = b["documentation"].pop("seqs")  # the entries owners and intended use are stated from
    assert b["model"]["artifact_digest"].startswith("sha256:") and b["model"]["framework"] == "sklearn"
    assert b["documentation"] == {
        "owners": ["ml-platform@example.com"],
        "intended_use": "research on income prediction",
        "limitations": ["not for credit decisions"],
    }
    assert b["lineage"]["training_runs"][0]["job"] == "job:ml/train_income"
    assert b["lineage"]["inputs"][0]["id"].startswith("dataset:file//")
    assert b["explanation"]["explainer"] == "tree" and b["explanation"]["importance"][0]["feature"] == "relationship"
    assert b["explanation"]["additivity"]["max"] < 1e-9
    [sex] = b["fairness"]
    assert sex["protected"] == ["sex"] and sex["metrics"]["demographic_parity_ratio"]["ci"] is not None
    assert {r["rule"]: r["status"] for r in b["gate"]["rules"]} == {
        "four-fifths-sex": "fail",
        "no-proxy": "fail",
        "additive": "pass",
        "accurate": "pass",
        "approved": "pass",
    }
    assert [(a["approver"], a["signature"]) for a in b["approvals"]] == [("Rita Risk", "valid")]
    assert b["not_evaluated"] == []
    nist = next(f for f in b["frameworks"] if f["framework"] == "nist-ai-rmf")
    states = {i["item"]: i["state"] for i in nist["items"]}
    assert (states["MEASURE 2.11"], states["MEASURE 2.9"], states["GOVERN 1.1"]) == (
        "evidenced, failing",
        "evidenced",
        "not evidenced",
    )
    with open_store(reported["url"]) as store:
        assert store.head().seq > b["ledger_head"]["seq"]  # the issuance came after the bundle was drawn
        kinds = {e.seq: e.kind for e in store.entries(limit=None)}
    assert (kinds[seqs["owners"]], kinds[seqs["intended_use"]]) == ("governance.owners", "governance.intended_use")


def test_a_blocked_models_report_leads_with_the_failing_rules(reported):
    html = (reported["dir"] / "report.html").read_text()
    decision = html.index('<section id="decision">')
    identity = html.index('<section id="identity">')
    head = html[decision:identity]
    assert "BLOCKED by 2 rule(s)" in head
    assert "Selection rates by sex within four fifths" in head and "relationship stands in for sex" in head
    md = (reported["dir"] / "report.md").read_text()
    assert md.index("**BLOCKED** by 2 rule(s)") < md.index("## Identity")


def test_the_report_prints_its_digest_and_ledger_head(reported):
    b = bundle(reported)
    for name in ("report.html", "report.md", "model_card.md"):
        assert b["digest"] in (reported["dir"] / name).read_text()
    assert b["ledger_head"]["hash"] in (reported["dir"] / "report.html").read_text()


def test_the_html_is_self_contained(reported):
    html = (reported["dir"] / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html and html.count("<svg") >= 3


def test_rendering_the_same_bundle_twice_is_byte_identical(reported, tmp_path):
    for target in ("a", "b"):
        result = run(
            "reports",
            "render",
            reported["dir"] / "bundle.json",
            "--out",
            tmp_path / target,
            "--format",
            "html",
            "--format",
            "md",
            "--format",
            "card",
            "--format",
            "junit",
        )
        assert result.exit_code == 0
    for name in ("report.html", "report.md", "model_card.md", "gate.junit.xml"):
        assert (
            (tmp_path / "a" / name).read_bytes()
            == (tmp_path / "b" / name).read_bytes()
            == (reported["dir"] / name).read_bytes()
        )


def test_verify_passes_on_an_untouched_report(reported):
    result = run("reports", "verify", reported["dir"], "--log-key", reported["pub"], "--store", reported["url"])
    assert result.exit_code == 0, result.output
    assert "ok: report.html re-renders byte for byte" in result.stdout
    assert "approval signatures" in result.stdout
    assert "(consistency proof verified)" in result.stdout


def test_the_report_verifies_offline_every_statement_against_the_payload_it_cites(reported, tmp_path, monkeypatch):
    """A copy elsewhere, no store named: the explanation, fairness, evaluation, approval and gate rows each come
    from the entry they cite, and every cited entry is in the signed tree."""
    shutil.copytree(reported["dir"], tmp_path / "copy")
    monkeypatch.delenv("AUDITGRAPH_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    result = run("reports", "verify", tmp_path / "copy", "--log-key", reported["pub"])
    assert result.exit_code == 0, result.output
    b = bundle(reported)
    rows = 4 + len(b["evaluations"]) + len(b["fairness"]) + len(b["gate_history"]) + len(b["approvals"])
    assert f"ok: {rows} statements match the payloads of the entries they cite" in result.stdout
    assert not (tmp_path / "home").exists()


def copy_report(reported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(reported["dir"], target)
    shutil.copy(reported["base"] / "store.db", tmp_path / "store.db")
    return target, f"sqlite:///{tmp_path}/store.db"


def test_an_edited_html_report_is_caught(reported, tmp_path):
    folder, url = copy_report(reported, tmp_path)
    html = folder / "report.html"
    html.write_text(html.read_text().replace("BLOCKED by 2 rule(s)", "PASSED the release gate"))
    result = run("reports", "verify", folder, "--log-key", reported["pub"], "--store", url)
    assert result.exit_code == 1
    assert "FAILED: report.html differs from a fresh rendering of the bundle" in result.stderr


def test_an_edited_bundle_is_caught(reported, tmp_path):
    folder, url = copy_report(reported, tmp_path)
    b = json.loads((folder / "bundle.json").read_text())
    b["gate"]["outcome"] = "pass"
    (folder / "bundle.json").write_text(json.dumps(b))
    result = run("reports", "verify", folder, "--log-key", reported["pub"], "--store", url)
    assert result.exit_code == 1 and "FAILED: bundle.json was altered" in result.stderr


def test_a_tampered_store_is_caught(reported, tmp_path):
    folder, url = copy_report(reported, tmp_path)
    seq = bundle(reported)["gate"]["seq"]
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("UPDATE ledger SET hash = ? WHERE seq = ?", ("0" * 64, seq))
    result = run("reports", "verify", folder, "--log-key", reported["pub"], "--store", url)
    assert result.exit_code == 1
    assert f"FAILED: ledger entry {seq} differs from the one the report cites" in result.stderr
    assert "FAILED: the store's ledger is broken" in result.stderr


def test_a_report_from_another_store_is_caught(reported, tmp_path, adult):
    other = tmp_path / "other.db"
    shutil.copy(adult["base"] / "adult.db", other)
    result = run("reports", "verify", reported["dir"], "--log-key", reported["pub"], "--store", f"sqlite:///{other}")
    assert result.exit_code == 1 and "is not in the store" in result.stderr


def test_user_templates_override_the_defaults_by_name(reported, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "model_card.md.j2").write_text("# {{ b.model.id }} card\nDigest {{ b.digest }}\n")
    result = run(
        "reports",
        "render",
        reported["dir"] / "bundle.json",
        "--out",
        tmp_path / "out",
        "--format",
        "card",
        "--templates",
        templates,
    )
    assert result.exit_code == 0
    assert (tmp_path / "out" / "model_card.md").read_text() == f"# {MODEL} card\nDigest {bundle(reported)['digest']}\n"
    (templates / "model_card.md.j2").write_text("{{ b.no_such_field }}")
    broken = CliRunner().invoke(
        cli,
        [
            "reports",
            "render",
            str(reported["dir"] / "bundle.json"),
            "--out",
            str(tmp_path / "x"),
            "--format",
            "card",
            "--templates",
            str(templates),
        ],
    )
    assert broken.exit_code != 0  # StrictUndefined: a template naming a missing field fails, not renders blank


def test_issuing_a_report_is_a_ledger_entry(reported):
    with open_store(reported["url"]) as store:
        [issued] = [json.loads(e.payload) for e in store.entries(kind="reports.issued")]
    assert issued["bundle_digest"] == bundle(reported)["digest"]
    assert set(issued["files"]) == {"bundle.json", "report.html", "report.md", "gate.junit.xml", "model_card.md"}


# --- a real browser ---------------------------------------------------------------------


def chromium_or_skip() -> str:
    path = find_chromium()
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but Chromium is missing: .ci/run must install Debian's chromium")
        pytest.skip("no Chromium: apt-get install chromium")
    return path


def test_the_html_renders_in_headless_chromium_without_errors_and_a_screenshot_is_kept(reported):
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto((reported["dir"] / "report.html").as_uri())
        assert page.title() == f"Release report: {MODEL}"
        assert page.locator("section#decision .verdict").inner_text().startswith("BLOCKED")
        assert page.locator("svg").count() >= 3
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_a_pdf_is_printed_through_chromium(reported, tmp_path):
    chromium_or_skip()
    folder, url = copy_report(reported, tmp_path)
    result = run("reports", "release", MODEL, "--out", folder, "--format", "pdf", "--store", url)
    assert result.exit_code == 0, result.output
    assert (folder / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_without_chromium_the_pdf_is_skipped_with_a_clear_message(reported, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_CHROMIUM", str(tmp_path / "no-such-browser"))
    folder, url = copy_report(reported, tmp_path)
    (folder / "report.pdf").unlink(missing_ok=True)
    result = run("reports", "release", MODEL, "--out", folder, "--format", "pdf", "--store", url)
    assert result.exit_code == 0
    assert (
        "warning: PDF needs headless Chromium, and none was found: install it (Debian: apt-get install chromium)"
        in result.stderr
    )
    assert not (folder / "report.pdf").exists() and (folder / "report.html").exists()
