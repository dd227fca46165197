"""The Python SDK: a real scikit-learn training run recorded end to end."""

from __future__ import annotations

import subprocess

import pytest
from conftest import SHARED, live_server
from openlineage.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from lineage.graph import Graph
from lineage.ingest import ingest, read_documents
from lineage.sdk import TrainingRun, file_digest, training_run
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store


@pytest.fixture
def repo(tmp_path):
    """A git work tree the training code lives in."""
    path = tmp_path / "repo"
    path.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (path / "train.py").write_text("print('train')\n")
    git("add", ".")
    git("commit", "-qm", "train")
    git("remote", "add", "origin", "https://github.com/example/churn.git")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()
    return path, commit


def train_german_credit(run: TrainingRun, out_dir) -> str:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    data = pd.read_csv(SHARED / "data/german/german.data", sep=" ", header=None)
    X, y = data[[1, 4, 7, 10, 12, 15, 17]], (data[20] == 1).astype(int)
    run.input("file", str(SHARED / "data/german/german.data"), version=file_digest(SHARED / "data/german/german.data"))
    run.params(C=1.0, max_iter=500)
    model = LogisticRegression(C=1.0, max_iter=500).fit(X, y)
    run.metrics(train_accuracy=round(float(model.score(X, y)), 4))
    path = out_dir / "credit.skops"
    dump(model, path)
    return run.model("ml", "german-credit", path=path, framework="sklearn", task="binary-classification")


@pytest.mark.slow
def test_a_sklearn_training_run_is_visible_end_to_end_through_the_server(tmp_path, repo):
    repo_path, commit = repo
    store_url = f"sqlite:///{tmp_path}/sdk.db"
    with open_store(store_url) as store:
        _, token = auth.create_key(store, "trainer", ["ingest"], "test")
    with live_server(ServerConfig(store_url=store_url, webhooks=False)) as server:
        client = OpenLineageClient(
            transport=HttpTransport(HttpConfig(url=server, auth=ApiKeyTokenProvider({"apiKey": token})))
        )
        with TrainingRun("train_credit", namespace="ml", client=client, code_path=repo_path, strict=True) as run:
            model = train_german_credit(run, tmp_path)
    with open_store(store_url) as store:
        walk = Graph(store).traverse(model, "upstream")
        reached = {n.id for n in walk.nodes}
        assert f"code:https://github.com/example/churn.git@{commit}" in reached
        assert any(i.startswith("dataset:file//") and "german.data@sha256:" in i for i in reached)
        node = Graph(store).node(model)
        digest = file_digest(tmp_path / "credit.skops")
        assert node["facets"]["auditgraph_model"]["artifactDigest"] == digest
        assert model == f"model:ml/german-credit@{digest.split(':')[1][:12]}"
        run_node = Graph(store).node(f"run:{run.run_id}")
        assert run_node["facets"]["_state"]["eventType"] == "COMPLETE"
        assert run_node["facets"]["auditgraph_training"]["params"] == {"C": 1.0, "max_iter": 500}
        assert run_node["facets"]["auditgraph_training"]["codeDirty"] is False
        assert 0.6 < run_node["facets"]["auditgraph_training"]["metrics"]["train_accuracy"] < 1.0


def test_a_dirty_tree_is_recorded_as_dirty(tmp_path, repo):
    repo_path, _ = repo
    (repo_path / "train.py").write_text("print('changed')\n")
    run = TrainingRun(
        "t",
        client=OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(tmp_path / "ol.jsonl")))),
        code_path=repo_path,
    )
    with run:
        pass
    assert run.event(run_state()).run.facets["auditgraph_training"].codeDirty is True


def run_state():
    from openlineage.client.event_v2 import RunState

    return RunState.COMPLETE


@pytest.mark.slow
def test_the_file_transport_writes_events_the_cli_ingests(tmp_path, repo):
    repo_path, _ = repo
    log = tmp_path / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True)))

    @training_run("decorated", namespace="ml", client=client, code_path=repo_path)
    def train(run):
        return train_german_credit(run, tmp_path)

    model = train()
    with open_store(f"sqlite:///{tmp_path}/file.db") as store, open(log, "rb") as stream:
        report = ingest(store, read_documents(stream, str(log)), "test")
        assert (report.accepted, report.rejected) == (2, [])
        assert Graph(store).resolve(model).kind == "ModelVersion"


def test_a_failing_training_job_is_recorded_as_failed_and_its_error_propagates(tmp_path):
    log = tmp_path / "events.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True)))
    with pytest.raises(ZeroDivisionError):
        with TrainingRun("boom", client=client, code_path=tmp_path):
            raise ZeroDivisionError("division by zero")
    with open_store(f"sqlite:///{tmp_path}/fail.db") as store, open(log, "rb") as stream:
        ingest(store, read_documents(stream, str(log)), "test")
        [run] = [r for r in Graph(store).search("run:", limit=10)]
        facets = Graph(store).node(run.id)["facets"]
    assert facets["_state"]["eventType"] == "FAIL"
    assert facets["errorMessage"]["message"] == "ZeroDivisionError: division by zero"


def test_an_unreachable_server_never_breaks_training_unless_strict(tmp_path):
    dead = OpenLineageClient(
        transport=HttpTransport(HttpConfig(url="http://127.0.0.1:9", timeout=0.5, retry={"total": 0}))
    )
    with TrainingRun("resilient", client=dead, code_path=tmp_path) as run:
        run.params(a=1)
        result = 42
    assert result == 42
    with pytest.raises(OSError):  # the transport's own error (requests' ConnectionError), passed on
        with TrainingRun("strict", client=dead, code_path=tmp_path, strict=True):
            pass


def test_a_missing_model_file_is_logged_not_raised(tmp_path, caplog):
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(tmp_path / "e.jsonl"))))
    with TrainingRun("t", client=client, code_path=tmp_path) as run:
        model = run.model("ml", "m", path=tmp_path / "missing.skops")
    assert model == f"model:ml/m@{run.run_id}"
    assert "file_digest failed" in caplog.text
