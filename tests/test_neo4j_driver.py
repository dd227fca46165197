"""One Neo4j driver per process and server, shared by every store object (on the real server).

The HTTP server opens a store per worker thread and per webhook delivery; each used to build a
driver (a connection pool) of its own, connect and re-create the schema.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import NEO4J_URL, ingest_events, make_store, run_event

from lineage.errors import StoreError
from lineage.graph import Graph
from lineage.store import open_store, split_credentials

pytestmark = pytest.mark.neo4j


@pytest.fixture
def url(tmp_path) -> str:
    make_store("neo4j", tmp_path).close()  # skips without a server (fails in CI); leaves the database empty
    return NEO4J_URL


def test_stores_opened_in_many_threads_share_one_driver_and_closing_one_leaves_the_others_working(url):
    def open_and_write(i: int):
        store = open_store(url)
        ingest_events(store, [run_event(f"job{i}", outputs=[("db", f"t{i}")])])
        return store

    with ThreadPoolExecutor(16) as pool:
        stores = list(pool.map(open_and_write, range(48)))
    driver = stores[0].driver
    assert all(s.driver is driver for s in stores)
    assert stores[0].head().seq == 48
    stores[0].close()
    stores[0].close()  # closing twice must not take a second store's share of the driver away
    with ThreadPoolExecutor(16) as pool:
        heads = list(pool.map(lambda s: s.head().seq, stores[1:]))
    assert heads == [48] * 47
    ingest_events(stores[1], [run_event("after", inputs=[("db", "t0")], outputs=[("db", "later")])])
    assert Graph(stores[2]).traverse("dataset:db/later", "upstream").root == "dataset:db/later"
    for s in stores[1:]:
        s.close()
    assert driver._closed  # the last store closed it
    with open_store(url) as again:  # and the next store starts a new one
        assert again.driver is not driver and again.head().seq == 49


def test_a_store_with_another_password_gets_no_share_of_an_open_driver(url):
    bare, user, password = split_credentials(url)
    scheme, _, rest = bare.partition("://")
    with open_store(url) as store:
        with pytest.raises(
            StoreError, match="cannot open Neo4j store at .*:\\*\\*\\*@.*(auth|Unauthorized|credentials)"
        ):
            open_store(f"{scheme}://{user}:{password}-wrong@{rest}")
        assert store.head().seq == 0


def test_a_store_is_cheap_to_open_once_its_driver_is_open(url):
    """Opening a store used to connect and re-create the schema (14 statements): now it is counted in."""
    with open_store(url):
        started = time.perf_counter()
        for _ in range(200):
            open_store(url).close()
        each = (time.perf_counter() - started) / 200
    assert each < 0.002, f"opening a store took {each * 1000:.2f} ms"
