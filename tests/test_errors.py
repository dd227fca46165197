"""Typed errors: an error's class says how it is answered, once (README "Exit codes").

Every error class of lineage, governance and reports is one of six kinds; the kind gives its HTTP
status and its CLI exit code. Checked here against the README's table, on a real HTTP server and
through the real command line.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sqlite3

import httpx
import pytest
from click.testing import CliRunner
from conftest import ROOT, live_server, run_event

import governance
import lineage
import reports
from lineage.cli import cli
from lineage.errors import EXIT_CODES, Conflict, Forbidden, Invalid, LineageError, NotFound, Unauthorized, Unavailable
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

KINDS = (Invalid, NotFound, Conflict, Unauthorized, Forbidden, Unavailable)
MODEL = "model:demo/churn-classifier@3"
FEATURES = "dataset:s3://demo-lake/features/churn.parquet"

# Every error class and its kind; None: no kind, answered as an internal error. A new class must be
# added here, which makes its author decide how it is answered.
TABLE = {
    "lineage.errors.LineageError": None,
    "lineage.errors.Invalid": "Invalid",
    "lineage.errors.NotFound": "NotFound",
    "lineage.errors.Conflict": "Conflict",
    "lineage.errors.Unauthorized": "Unauthorized",
    "lineage.errors.Forbidden": "Forbidden",
    "lineage.errors.Unavailable": "Unavailable",
    "lineage.errors.IdError": "Invalid",
    "lineage.errors.IdTooLongError": "Invalid",
    "lineage.errors.NotFoundError": "NotFound",
    "lineage.errors.EventError": "Invalid",
    "lineage.errors.TimeRangeError": "Invalid",
    "lineage.errors.InputError": "Invalid",
    "lineage.errors.BodyError": "Invalid",
    "lineage.errors.TooLargeError": "Invalid",
    "lineage.errors.StoreUrlError": "Invalid",
    "lineage.errors.StoreError": "Unavailable",
    "lineage.errors.LedgerError": "Conflict",
    "lineage.errors.GraphError": "Conflict",
    "lineage.checkpoint.CheckpointError": "Invalid",
    "lineage.errors.EntryError": "Invalid",
    "lineage.errors.HookTargetError": "Invalid",
    "lineage.server.auth.AuthError": "Unauthorized",
    "lineage.server.auth.ScopeError": "Forbidden",
    "lineage.extras.MissingExtra": "Unavailable",
    "lineage.plugins.PluginError": None,  # installed plugins that clash: the installation's fault, not the request's
    "governance.errors.GovernanceError": None,
    "governance.errors.RuleFileError": "Invalid",
    "governance.errors.PolicyError": "Invalid",
    "governance.errors.RecordError": "Invalid",
    "governance.errors.NodeKindError": "Invalid",
    "governance.errors.DataError": "Invalid",
    "governance.errors.ModelFileError": "Invalid",
    "governance.errors.FittedStateError": "Invalid",
    "governance.errors.SignatureError": "Invalid",
    "governance.errors.NotRecordedError": "NotFound",
    "governance.errors.MissingFileError": "NotFound",
    "governance.errors.RevokedError": "Conflict",
    "governance.errors.ReleaseError": "Conflict",
    "governance.errors.ArtifactError": "Conflict",
    "governance.errors.KeyFileError": "Conflict",
    "governance.errors.AuthorityError": "Forbidden",
    "governance.errors.IncompleteError": "Unavailable",
    "reports.errors.ReportError": None,
    "reports.errors.FormatError": "Invalid",
    "reports.errors.RenderError": "Invalid",
    "reports.errors.BundleError": "Invalid",
    "reports.errors.BundleNotFoundError": "NotFound",
    "reports.errors.ChromiumError": "Unavailable",
}
# Invalid errors that keep the status of their neighbours at the transport (README "Exit codes")
TRANSPORT = {"lineage.errors.BodyError": 400, "lineage.errors.TooLargeError": 413}
OWN_MODULES = ("lineage.errors", "lineage.server.auth", "governance.errors", "reports.errors")


def readme_table() -> dict[str, tuple[int | None, int]]:
    """The README's exit code table: {kind (or the exit code, for a row without one): (HTTP status, exit code)}."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Exit codes") :]
    section = section[: section.index("\n## ", 1)]
    rows = [
        [cell.strip(" `") for cell in line.split("|")[1:4]]
        for line in section.splitlines()
        if re.match(r"\| \d+ \|", line)
    ]
    assert rows, "the README has no exit code table"
    return {kind or code: (int(status) if status.isdigit() else None, int(code)) for code, status, kind in rows}


def error_classes() -> dict[str, type]:
    """Every subclass of LineageError defined in lineage, governance and reports, by dotted name."""
    for package in (lineage, governance, reports):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found, todo = {}, [LineageError]
    while todo:
        cls = todo.pop()
        if cls.__module__.split(".")[0] in ("lineage", "governance", "reports"):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        todo += cls.__subclasses__()
    return found


def test_every_error_class_is_one_kind_and_answers_as_the_readme_says():
    readme, classes = readme_table(), error_classes()
    assert sorted(set(classes) - set(TABLE)) == []  # every class is in the table
    assert [name for name in TABLE if name.startswith(OWN_MODULES) and name not in classes] == []
    for name, cls in classes.items():
        kinds = [k.__name__ for k in KINDS if issubclass(cls, k)]
        assert kinds == ([TABLE[name]] if TABLE[name] else []), name
        status, code = readme[TABLE[name]] if TABLE[name] else readme["70"]
        assert (cls.http_status, cls.exit_code) == (TRANSPORT.get(name, status), code), name


def test_the_readme_and_the_help_list_the_exit_codes_the_code_uses():
    readme = readme_table()
    assert {code for _, code in readme.values()} == set(EXIT_CODES)
    assert {kind: readme[kind.__name__] for kind in KINDS} == {
        kind: (kind.http_status, kind.exit_code) for kind in KINDS
    }
    assert (LineageError.http_status, LineageError.exit_code) == readme["70"]
    help_text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert all(f"{code} {meaning}" in help_text for code, meaning in EXIT_CODES.items())


# --- over HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def demo(tmp_path, monkeypatch):
    """A store with the demo pipeline, API keys, a signing key, and an approval that was revoked."""
    from governance import approvals as appr
    from governance import readmodels

    url = f"sqlite:///{tmp_path}/errors.db"
    assert CliRunner().invoke(cli, ["demo", "--store", url]).exit_code == 0
    with open_store(url) as store:
        tokens = {scope: auth.create_key(store, scope, [scope], "test")[1] for scope in ("ingest", "read", "approve")}
        appr.generate_key(store, "Rita Risk", ["model-risk"], tmp_path / "rita.pem", "test")
        payload = appr.signed_payload(
            MODEL,
            readmodels.artifact_digest(store, MODEL),
            "model-risk",
            appr.load_signer(tmp_path / "rita.pem"),
            "sha256:" + "0" * 64,
            store.head().hash,
        )
        appr.revoke_approval(store, appr.record_signed(store, payload, "test").seq, "signed the wrong version", "test")
    return {"url": url, "file": tmp_path / "errors.db", "tokens": tokens, "revoked": payload}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_each_kind_of_error_gets_its_status_from_a_real_server(demo):
    tokens, api = demo["tokens"], "/api/v1"
    with live_server(ServerConfig(store_url=demo["url"], webhooks=False)) as server:

        def get(path, token="read", **params):
            return httpx.get(server + api + path, params=params, headers=bearer(tokens[token]))

        def post(path, body, headers):
            return httpx.post(server + api + path, json=body, headers=headers)

        answers = {
            "unknown node": get("/nodes", id="dataset:nowhere/nothing"),
            "bad id": get("/nodes", id="table:x"),
            "bad event": post("/lineage", {**run_event("j"), "eventType": "BOGUS"}, bearer(tokens["ingest"])),
            "no key": post("/lineage", run_event("j"), {}),
            "read key writing": post("/lineage", run_event("j"), bearer(tokens["read"])),
            "revoked approval again": post("/governance/approvals", demo["revoked"], bearer(tokens["approve"])),
        }
    assert {what: a.status_code for what, a in answers.items()} == {
        "unknown node": 404,
        "bad id": 422,
        "bad event": 422,
        "no key": 401,
        "read key writing": 403,
        "revoked approval again": 409,
    }
    details = {what: a.json()["detail"] for what, a in answers.items()}
    assert details["read key writing"] == "the API key lacks the 'ingest' scope"
    assert details["revoked approval again"].startswith("this signed statement was revoked (ledger:")


# --- through the command line --------------------------------------------------------------------------


def test_each_kind_of_error_exits_with_its_code_and_one_line(demo, tmp_path):
    in_a_file = tmp_path / "a-file"
    in_a_file.write_text("not a folder")
    url = ["--store", demo["url"]]
    runs = {
        "unknown node": ["lineage", "show", "dataset:nowhere/nothing", *url],
        "bad id": ["lineage", "show", "table:x", *url],
        "unreachable Neo4j": ["lineage", "show", FEATURES, "--store", "neo4j://neo4j:secret@127.0.0.1:1"],
        "SQLite file that cannot be created": ["store", "stats", "--store", f"sqlite:///{in_a_file}/store.db"],
        "gate on an unknown model": ["governance", "gate", "model:demo/nothing@1", "--policy", "baseline", *url],
        "key file that exists": [
            "governance",
            "keygen",
            "Rita Risk",
            "--role",
            "model-risk",
            "--out",
            str(in_a_file),
            *url,
        ],
    }
    done = {what: CliRunner().invoke(cli, args) for what, args in runs.items()}
    assert {what: r.exit_code for what, r in done.items()} == {
        "unknown node": 4,
        "bad id": 2,
        "unreachable Neo4j": 3,
        "SQLite file that cannot be created": 3,
        "gate on an unknown model": 4,
        "key file that exists": 5,
    }
    for what, r in done.items():
        assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, (what, r.stderr)
    assert done["unknown node"].stderr == (
        "Error: no node 'dataset:nowhere/nothing' in the store (try 'auditgraph lineage search')\n"
    )


# --- a SQLite store that cannot be read -------------------------------------------------------------------


def break_facets(db_file) -> None:
    """Leave the store's facets table in a shape no read expects (opening the store again does not repair it)."""
    with sqlite3.connect(db_file) as db:
        db.execute("ALTER TABLE facets RENAME TO facets_before")
        db.execute("CREATE TABLE facets (node TEXT)")


def test_sqlite_read_errors_are_store_errors_naming_the_store(sqlite_store):
    from lineage.errors import StoreError

    break_facets(sqlite_store.file)
    with pytest.raises(StoreError, match=re.escape(f"SQLite store {sqlite_store.file}: no such column: name")):
        sqlite_store.facets("dataset:a/b")
    with sqlite3.connect(sqlite_store.file) as db:  # an error while the rows of a lazy read are taken
        db.execute("ALTER TABLE ledger RENAME TO ledger_before")
        db.execute("CREATE TABLE ledger (seq INTEGER)")
    with pytest.raises(StoreError, match="no such column"):
        list(sqlite_store.entries(limit=None))


def test_a_store_that_cannot_be_read_is_503_over_http_and_exit_3_on_the_cli(demo):
    with live_server(ServerConfig(store_url=demo["url"], webhooks=False)) as server:
        break_facets(demo["file"])
        answer = httpx.get(f"{server}/api/v1/nodes", params={"id": FEATURES}, headers=bearer(demo["tokens"]["read"]))
    reason = f"SQLite store {demo['file']}: no such column: name"
    assert (answer.status_code, answer.json()) == (503, {"detail": reason})
    done = CliRunner().invoke(cli, ["lineage", "show", FEATURES, "--store", demo["url"]])
    assert (done.exit_code, done.stderr) == (3, f"Error: {reason}\n")
