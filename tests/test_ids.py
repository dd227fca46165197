"""Node ids: printed forms, the parser, and round trips on real and generated names."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS
from hypothesis import given
from hypothesis import strategies as st

from lineage.errors import IdError
from lineage.ids import NodeId, NodeKind, code_id, dataset_id, job_id, model_id, parse_id


@pytest.mark.parametrize(
    "namespace, name, printed",
    [
        ("gs://mock-bucket", "copied.csv", "dataset:gs://mock-bucket/copied.csv"),
        ("file", "/files/temp/data.txt", "dataset:file//files/temp/data.txt"),
        ("bigquery", "mock-project.test.upload", "dataset:bigquery/mock-project.test.upload"),
        ("abfss://c@acct.dfs.core.windows.net", "dir/a.csv", "dataset:abfss://c%40acct.dfs.core.windows.net/dir/a.csv"),
        ("file:///tmp", "x", "dataset:file://%2Ftmp/x"),
        ("a:", "/b", "dataset:a%3A//b"),
        ("postgres://host:5432", "db.schema.t@1", "dataset:postgres://host:5432/db.schema.t%401"),
    ],
)
def test_dataset_ids_print_readably_and_read_back(namespace, name, printed):
    assert dataset_id(namespace, name) == printed
    parsed = parse_id(printed)
    assert (parsed.namespace, parsed.name, parsed.version) == (namespace, name, None)


def test_versions_follow_the_first_at_sign_after_the_namespace():
    parsed = parse_id("model:ml/churn@v1@rc")
    assert (parsed.name, parsed.version, parsed.kind) == ("churn", "v1@rc", NodeKind.MODEL_VERSION)
    assert str(parsed.entity()) == "model:ml/churn"


def test_code_ids_split_at_the_last_at_sign():
    parsed = parse_id("code:git@github.com:org/repo.git@4f2c9e1")
    assert (parsed.namespace, parsed.version) == ("git@github.com:org/repo.git", "4f2c9e1")
    assert code_id("git@github.com:org/repo.git", "4f2c9e1") == "code:git@github.com:org/repo.git@4f2c9e1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty id"),
        ("table:x/y", "unknown id kind 'table'"),
        ("dataset:", "nothing after 'dataset:'"),
        ("dataset:nons", "no '/' after the namespace"),
        ("dataset:ns/", "the name after 'ns/' is empty"),
        ("dataset:ns/t@", "'@' must be followed by a version"),
        ("job:ns/j@1", "a job id has no version"),
        ("code:https://example.com/repo", "code:<repository url>@<revision>"),
    ],
)
def test_a_bad_id_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(IdError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_id(text)


def test_every_dataset_and_job_name_in_the_corpus_round_trips():
    names = set()
    for path in (CORPUS / "valid").rglob("*.json"):
        data = json.loads(path.read_text())
        for event in data if isinstance(data, list) else [data]:
            for ds in (event.get("inputs") or []) + (event.get("outputs") or []):
                names.add(("dataset", ds["namespace"], ds["name"]))
            if isinstance(event.get("job"), dict):
                names.add(("job", event["job"]["namespace"], event["job"]["name"]))
    assert len(names) > 50
    for prefix, namespace, name in names:
        text = dataset_id(namespace, name, "v1") if prefix == "dataset" else job_id(namespace, name)
        parsed = parse_id(text)
        assert (parsed.prefix, parsed.namespace, parsed.name) == (prefix, namespace, name), text


text = st.text(min_size=1, max_size=40)


@given(namespace=text, name=text, version=st.none() | text)
def test_any_namespace_name_and_version_round_trip(namespace, name, version):
    for make in (dataset_id, model_id):
        printed = make(namespace, name, version)
        parsed = parse_id(printed)
        assert (parsed.namespace, parsed.name, parsed.version) == (namespace, name, version)
        assert str(parsed) == printed


@given(
    url=text.filter(lambda u: "@" not in u[-1:]), revision=st.text(alphabet="0123456789abcdef", min_size=1, max_size=40)
)
def test_any_code_url_round_trips(url, revision):
    printed = code_id(url, revision)
    assert parse_id(printed) == NodeId(prefix="code", namespace=url, version=revision)


@given(st.text(max_size=60))
def test_the_parser_never_crashes_on_arbitrary_text(text):
    try:
        parse_id(text)
    except IdError:
        pass
