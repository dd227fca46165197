"""The command line: exit codes and exact output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import CORPUS, scenario_files

from lineage.cli import cli


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/cli.db"


def run(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
    return result


def test_ingest_prints_counts_and_exits_zero(url):
    files = scenario_files("airflow")
    result = run("ingest", *files, "--store", url)
    assert result.exit_code == 0
    assert result.stdout == "accepted 32, duplicate 0, rejected 0\n"
    again = run("ingest", *files, "--store", url)
    assert again.stdout == "accepted 0, duplicate 32, rejected 0\n"


def test_ingest_names_each_rejection_with_file_and_line_and_exits_one(url):
    bad = CORPUS / "invalid/OpenLineage/proxy/fluentd/events/event_no_run_id.json"
    result = run("ingest", bad, "--store", url)
    assert result.exit_code == 1
    assert result.stdout == "accepted 0, duplicate 0, rejected 1\n"
    assert f"rejected: {bad}:1: run.runId is missing" in result.stderr


def test_ingest_reads_json_lines_from_stdin_and_reports_json(url):
    events = [json.loads(p.read_text()) for p in scenario_files("CLL")]
    stdin = "\n".join(json.dumps(e) for e in events) + "\nnot json\n"
    result = run("ingest", "-", "--store", url, "--json", input=stdin)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["accepted"], report["rejected"]) == (9, 1)
    assert report["rejections"][0]["where"] == "<stdin>:10"


def test_ingest_of_a_missing_file_is_a_rejection_not_a_crash(url, tmp_path):
    result = run("ingest", tmp_path / "nope.json", "--store", url)
    assert result.exit_code == 1
    assert "cannot read: No such file or directory" in result.stderr


def test_a_store_url_with_an_unknown_scheme_lists_the_valid_ones(tmp_path):
    result = run("store", "stats", "--store", "mysql://x")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: unknown store URL 'mysql://x'; expected one of: bolt://..., bolt+s://..., "
        "bolt+ssc://..., neo4j://..., neo4j+s://..., neo4j+ssc://..., sqlite://...\n"
    )


def test_demo_shows_the_models_upstream_and_is_idempotent(url):
    first = run("demo", "--store", url)
    assert first.exit_code == 0
    assert "sample: accepted 8, duplicate 0, rejected 0" in first.stdout
    assert "dataset:postgres://crm-db:5432/crm.public.customers@unversioned" in first.stdout
    assert "code:https://github.com/example/churn-model@4f2c9e1a7b3d5f60812c4e9a0b1d2c3e4f5a6b7c" in first.stdout
    assert "sample: accepted 0, duplicate 8, rejected 0" in run("demo", "--store", url).stdout


def test_upstream_json_is_the_traversal(url):
    run("demo", "--store", url)
    result = run("lineage", "upstream", "model:demo/churn-classifier", "--kind", "dataset", "--json", "--store", url)
    walk = json.loads(result.stdout)
    assert {n["id"].split("@")[0] for n in walk["nodes"]} == {
        "dataset:s3://demo-lake/features/churn.parquet",
        "dataset:s3://demo-lake/raw/customers.csv",
        "dataset:s3://demo-lake/raw/usage_events.parquet",
        "dataset:postgres://crm-db:5432/crm.public.customers",
    }
    assert walk["truncated"] is False


def test_downstream_as_dot_is_a_digraph(url):
    run("demo", "--store", url)
    out = run(
        "lineage", "downstream", "dataset:s3://demo-lake/raw/customers.csv", "--format", "dot", "--store", url
    ).stdout
    assert out.startswith("digraph lineage {\n  rankdir=LR;")
    assert '-> "model:demo/churn-classifier@3" [label="WROTE"];' in out


def test_mermaid_output_labels_every_node(url):
    run("demo", "--store", url)
    out = run(
        "lineage", "upstream", "model:demo/churn-classifier@3", "--depth", "1", "--format", "mermaid", "--store", url
    ).stdout
    assert out.splitlines()[0] == "flowchart LR"
    assert '["model:demo/churn-classifier@3"]' in out and "-->|WROTE|" in out


def test_impact_table_lists_what_breaks(url):
    run("demo", "--store", url)
    out = run("lineage", "impact", "dataset:s3://demo-lake/raw/customers.csv", "--json", "--store", url).stdout
    assert json.loads(out)["levels"][-1]["models"] == ["model:demo/churn-classifier"]


def test_columns_takes_dataset_colon_field(url):
    run("demo", "--store", url)
    out = run(
        "lineage", "columns", "dataset:s3://demo-lake/features/churn.parquet:monthly_minutes", "--json", "--store", url
    ).stdout
    hops = json.loads(out)["edges"]
    assert {(h["src_field"], h["dst_field"]) for h in hops} == {
        ("minutes", "monthly_minutes"),
        ("customer_id", "monthly_minutes"),
    }


def test_an_unknown_id_exits_four_with_a_one_line_reason(url):
    run("demo", "--store", url)
    result = run("lineage", "show", "dataset:nowhere/nothing", "--store", url)
    assert result.exit_code == 4
    assert result.stderr == "Error: no node 'dataset:nowhere/nothing' in the store (try 'auditgraph lineage search')\n"


def test_misuse_exits_two(url):
    assert run("lineage", "upstream", "--store", url).exit_code == 2
    assert run("lineage", "upstream", "x", "--as-of", "noon", "--store", url).exit_code == 2


def test_path_without_a_connection_exits_one(url):
    run("demo", "--store", url)
    result = run("lineage", "path", "model:demo/churn-classifier", "job:demo/churn_pipeline", "--store", url)
    assert result.exit_code == 1 and "no data-flow path" in result.stderr


def test_audit_verify_passes_then_names_the_tampered_entry(url, tmp_path):
    run("demo", "--store", url)
    ok = run("audit", "verify", "--store", url)
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: 8 entries, head ")
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE ledger SET kind = 'forged' WHERE seq = 5")
    broken = run("audit", "verify", "--store", url)
    assert broken.exit_code == 1
    assert broken.stderr.startswith("BROKEN at entry 5: entry hash does not match its contents (expected ")


def test_audit_verify_expect_head_catches_a_cut_ledger(url, tmp_path):
    run("demo", "--store", url)
    head = json.loads(run("audit", "verify", "--json", "--store", url).stdout)["head"]
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("DELETE FROM ledger WHERE seq = 8")
    cut = run("audit", "verify", "--store", url)  # the stored Merkle tree still holds entry 8
    assert cut.exit_code == 1 and "the stored Merkle tree holds 8 entries, the ledger 7" in cut.stderr
    with sqlite3.connect(tmp_path / "cli.db") as db:  # an insider who cuts the tree too: the kept head catches it
        db.execute("DELETE FROM tiles")
        db.execute("DELETE FROM meta WHERE key = 'tree_size'")
    assert run("audit", "verify", "--store", url).exit_code == 0
    result = run("audit", "verify", "--expect-head", head, "--store", url)
    assert result.exit_code == 1 and f"expected {head}" in result.stderr


def test_audit_log_filters_by_subject(url):
    run("demo", "--store", url)
    out = run(
        "audit", "log", "--subject", "run:0c7e5a52-3c2e-4e0a-9a51-2f9f4b1a0004", "--json", "--payload", "--store", url
    ).stdout
    entries = json.loads(out)
    assert [e["seq"] for e in entries] == [6, 7]
    assert [e["payload"]["eventType"] for e in entries] == ["START", "COMPLETE"]


def test_store_rebuild_and_stats(url):
    run("demo", "--store", url)
    before = json.loads(run("store", "stats", "--json", "--store", url).stdout)
    assert run("store", "rebuild", "--store", url).stdout.startswith("replayed 8 entries; head ")
    after = json.loads(run("store", "stats", "--json", "--store", url).stdout)
    assert (
        before["nodes"]
        == after["nodes"]
        == {"CodeVersion": 1, "Dataset": 4, "DatasetVersion": 4, "Job": 4, "Model": 1, "ModelVersion": 1, "Run": 4}
    )


def test_the_store_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_STORE", f"sqlite:///{tmp_path}/env.db")
    assert run("demo").exit_code == 0
    assert (tmp_path / "env.db").exists()


@pytest.mark.slow
def test_the_installed_console_script_runs_the_demo(tmp_path):
    env = {"AUDITGRAPH_STORE": f"sqlite:///{tmp_path}/script.db", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "lineage", "demo"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "ledger head: entry 8, " in proc.stdout


def test_keys_create_list_and_revoke(url):
    created = json.loads(
        run("keys", "create", "ci", "--scope", "ingest", "--scope", "read", "--json", "--store", url).stdout
    )
    assert created["token"].startswith(f"agk_{created['key_id']}_") and created["scopes"] == ["ingest", "read"]
    listed = json.loads(run("keys", "list", "--json", "--store", url).stdout)
    assert [(k["key_id"], k["revoked"]) for k in listed] == [(created["key_id"], False)]
    assert created["token"] not in run("keys", "list", "--store", url).stdout
    assert run("keys", "revoke", created["key_id"], "--store", url).stdout == f"revoked {created['key_id']}\n"
    assert json.loads(run("keys", "list", "--json", "--store", url).stdout)[0]["revoked"] is True
    unknown = run("keys", "revoke", "0000000000000000", "--store", url)
    assert (unknown.exit_code, unknown.stderr) == (4, "Error: no API key '0000000000000000'\n")
    assert run("keys", "create", "x", "--scope", "root", "--store", url).exit_code == 2


def test_hooks_add_list_and_remove(url, monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_SECRET_KEY", "k")
    added = run("hooks", "add", "https://ci.example.com/retrain", "--event", "lineage.upstream_version", "--store", url)
    hook_id, secret = added.stdout.split()
    assert len(secret) == 64
    assert json.loads(run("hooks", "list", "--json", "--store", url).stdout)[0]["hook_id"] == hook_id
    assert run("hooks", "remove", hook_id, "--store", url).stdout == f"removed {hook_id}\n"
    assert json.loads(run("hooks", "list", "--json", "--store", url).stdout) == []
    assert json.loads(run("hooks", "deliveries", "--json", "--store", url).stdout) == []
