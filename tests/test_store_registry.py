"""Store backends are found by URL scheme through the ``auditgraph.stores`` entry points.

A third party's backend is "installed" here the way a wheel would be: a ``.dist-info`` folder with
its entry points, on the path of this process (``registered``) or of a real pytest subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import IN_CI, NEO4J_URL, ROOT

from lineage.errors import StoreError, StoreUrlError
from lineage.store import backends, open_store
from lineage.store.sqlite import SQLiteStore

BACKEND = """
from pathlib import Path

from lineage.store.sqlite import SQLiteStore


class FileStore(SQLiteStore):
    scheme = "file-store"


def build(url):
    return FileStore(url, Path(url.removeprefix("file-store://")))
"""


def install(site, entry_points: str, modules: dict[str, str] | None = None, name: str = "thirdparty") -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, text in (modules or {}).items():
        (site / f"{module}.py").write_text(text)


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """Install a distribution on this process's path: ``registered(entry_points, modules)``; the
    cached registry is read again after each install and forgotten at the end."""

    def add(entry_points: str, modules: dict[str, str] | None = None, name: str = "thirdparty") -> None:
        site = tmp_path / f"site-{name}"
        install(site, entry_points, modules, name)
        monkeypatch.syspath_prepend(str(site))
        backends.cache_clear()

    yield add
    backends.cache_clear()  # before monkeypatch takes the path away: the next reader reads it again


def test_the_built_in_backends_are_registered_like_a_third_partys():
    assert {scheme: ep.value for scheme, ep in backends().items()} == {
        "bolt": "lineage.store.neo4j:build",
        "bolt+s": "lineage.store.neo4j:build",
        "bolt+ssc": "lineage.store.neo4j:build",
        "neo4j": "lineage.store.neo4j:build",
        "neo4j+s": "lineage.store.neo4j:build",
        "neo4j+ssc": "lineage.store.neo4j:build",
        "sqlite": "lineage.store.sqlite:build",
    }
    assert all(ep.dist.name == "auditgraph" for ep in backends().values())


def test_a_third_party_scheme_opens_its_backend_and_is_listed_for_an_unknown_one(registered, tmp_path):
    registered("[auditgraph.stores]\nfile-store = thirdparty_store:build\n", {"thirdparty_store": BACKEND})
    with open_store(f"file-store://{tmp_path / 'x.db'}") as store:
        assert type(store).__name__ == "FileStore" and isinstance(store, SQLiteStore)
        assert store.stats()["ledger"]["entries"] == 0 and (tmp_path / "x.db").exists()
    with pytest.raises(StoreUrlError, match=r"unknown store URL 'mysql://x'; expected one of: .*file-store://\.\.\."):
        open_store("mysql://x")


def test_the_registry_is_read_once_per_process(tmp_path):
    first = backends()
    install(tmp_path / "site", "[auditgraph.stores]\nlate = late_store:build\n")
    sys.path.insert(0, str(tmp_path / "site"))
    try:
        assert backends() is first and "late" not in backends()
    finally:
        sys.path.remove(str(tmp_path / "site"))


def test_a_scheme_registered_twice_with_two_builders_is_an_error_naming_both(registered):
    registered("[auditgraph.stores]\nsqlite = other_sqlite:build\n", name="othersqlite")
    with pytest.raises(
        StoreError,
        match="store scheme 'sqlite' is registered twice .*: "
        "(lineage.store.sqlite:build and other_sqlite:build|other_sqlite:build and "
        "lineage.store.sqlite:build)",
    ):
        open_store("sqlite:///x.db")


def test_a_backend_that_does_not_import_is_a_store_error_naming_it(registered, tmp_path):
    registered("[auditgraph.stores]\nbroken = broken_store:build\n", {"broken_store": "import no_such_driver\n"})
    with pytest.raises(
        StoreError,
        match=r"the broken:// store backend \(broken_store:build\) cannot be loaded: "
        "ModuleNotFoundError: No module named 'no_such_driver'",
    ):
        open_store(f"broken://{tmp_path}")


@pytest.mark.slow
def test_the_contract_suite_fails_on_a_registered_backend_it_cannot_make_a_store_of(tmp_path):
    """A third party's backend without a TEST_STORES entry fails the suite: it is never skipped."""
    install(tmp_path / "site", "[auditgraph.stores]\nmemory = memory_store:build\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    test = "tests/test_store_contract.py::test_an_unknown_id_says_it_is_not_in_the_store"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert [line.split(" - ")[0] for line in failed] == [f"ERROR {test}[memory]"], done.stdout  # its fixture failed
    assert "the memory:// store backend (memory_store:build) has no way to make a test store" in done.stdout


@pytest.mark.neo4j
@pytest.mark.parametrize("scheme", ["neo4j", "bolt"])
def test_neo4j_and_bolt_urls_open_the_same_server(scheme, tmp_path):
    """The suite runs on Neo4j as neo4j://; bolt:// (a direct connection) reaches the same ledger.
    (neo4j+s, neo4j+ssc, bolt+s and bolt+ssc differ only in TLS, which the test server does not serve.)"""
    if not NEO4J_URL:
        if IN_CI:
            pytest.fail("CI=true but AUDITGRAPH_TEST_NEO4J_URL is not set")
        pytest.skip("no Neo4j server: set AUDITGRAPH_TEST_NEO4J_URL")
    url = scheme + "://" + NEO4J_URL.partition("://")[2]
    with open_store(NEO4J_URL) as reference, open_store(url) as store:
        assert type(store).__name__ == "Neo4jStore" and store.head() == reference.head()
