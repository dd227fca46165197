"""The anchored ledger under attack: what an insider with write access to the database can forge, and what catches it.

Each test fills a store through the real CLI (``demo``, a signed approval and its revocation, the
OpenLineage corpus, a few hundred generated runs so the tree spans two tiles), signs two checkpoints
with a real log key (``audit keygen``, ``audit checkpoint --out``) and keeps them in files, then
tampers with the database directly, bypassing auditgraph: SQL on the SQLite file, Cypher through the
Neo4j driver. The insider knows the hashing and re-hashes every later entry consistently
(``rehash``), and the careful one also rewrites the stored tree (``lineage.merkle.grow``) so the
store agrees with itself. Each test then asks which command catches it:

* ``audit verify`` alone (ALONE): the chain, the roots of the checkpoints recorded in the ledger,
  the stored tree;
* ``audit verify --log-key PUB`` (KEY): also the recorded checkpoints' signatures;
* ``audit verify --log-key PUB --checkpoint early.note --checkpoint late.note`` (KEPT): also the
  checkpoints kept outside the store.

A verdict is the entry ``audit verify`` names (exit 1), or None when it passes (exit 0). The first
entry that no longer matches is named exactly while the stored tree still holds the leaves that were
signed; once the insider rewrote the tree too, it is bounded between the largest kept checkpoint that
still matches and the first that does not (``lineage.anchors._locate``).

RELIABILITY.md, "Threat model", cites these tests row by row.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CORPUS, backends, ingest_events, make_store, run_event

from lineage import anchors, merkle
from lineage.canonical import canonical_json, digest, sha256_hex
from lineage.checkpoint import Checkpoint, LogKey, sign_checkpoint, split_note
from lineage.cli import cli
from lineage.ledger import GENESIS, entry_header
from lineage.store import open_store
from lineage.store.urls import split_credentials

ORIGIN = "auditgraph.test/anchoring"
MODEL = "model:demo/churn-classifier@3"
ALONE, KEY, KEPT = "audit verify", "audit verify --log-key", "audit verify --checkpoint"
GENERATED = 150  # runs ingested between the two checkpoints: the tree then spans two level-0 tiles
AFTER = 3  # runs ingested after the last checkpoint


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def ok(*args, input=None) -> str:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def runs(prefix: str, count: int) -> str:
    """JSON lines of ``count`` generated runs (fixed run ids and times, so a rebuild is identical)."""
    return "".join(
        json.dumps(
            run_event(
                f"{prefix}-{i}",
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}/{i}")),
                time=f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z",
                inputs=[("warehouse", f"table{i % 10}")],
                outputs=[("warehouse", f"{prefix}{i}")],
            )
        )
        + "\n"
        for i in range(count)
    )


# --- the insider: write access to the database, knowledge of the hashing --------------------------------


def rehash(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number entries 1..n and recompute every payload digest, prev_hash and hash, as someone who read
    ``lineage.ledger`` would: the chain verifies again."""
    out, prev = [], GENESIS
    for seq, e in enumerate(entries, 1):
        payload_digest = sha256_hex(e["payload"].encode("utf-8"))
        header = entry_header(
            seq, e["recorded_at"], e["kind"], e["actor"], e["subject"], e["event_time"], payload_digest, prev
        )
        prev = digest(header)
        out.append({**e, **header, "hash": prev})
    return out


class Insider(ABC):
    """Someone who can write the store's database but holds no log key (unless a test gives them one)."""

    def __init__(self, url: str):
        self.url = url

    def entries(self) -> list[dict[str, Any]]:
        with open_store(self.url) as store:
            return [e.model_dump() for e in store.entries()]

    def rewrite(self, forged: list[dict[str, Any]]) -> None:
        """Replace the ledger by ``forged``, re-hashed; only entries from the first that differs are written."""
        forged, now = rehash(forged), self.entries()
        first = next((i for i, (a, b) in enumerate(zip(forged, now)) if a != b), min(len(forged), len(now)))
        self._replace_entries(first + 1, forged[first:])

    def rewrite_tree(self, size: int | None = None) -> None:
        """Recompute the stored tree from the ledger as it is now (its first ``size`` entries): the store agrees
        with itself again."""
        leaves = [merkle.entry_leaf(e["hash"]) for e in self.entries()][:size]
        self._replace_tree(merkle.grow(0, {}, leaves), len(leaves))

    @abstractmethod
    def _replace_entries(self, from_seq: int, entries: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    def _replace_tree(self, tiles: dict[merkle.TileKey, bytes], size: int) -> None: ...

    @abstractmethod
    def set_tree_size(self, size: int) -> None: ...

    @abstractmethod
    def delete_tiles(self, keys: list[merkle.TileKey]) -> None: ...

    @abstractmethod
    def snapshot(self) -> Any:
        """Everything the database holds, to ``restore`` before each test (a fill takes long on Neo4j)."""

    @abstractmethod
    def restore(self, snapshot: Any) -> None: ...


class SQLiteInsider(Insider):
    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)

    def _replace_entries(self, from_seq, entries):
        db = self._db()
        db.execute("BEGIN")
        db.execute("DELETE FROM ledger WHERE seq >= ?", (from_seq,))
        db.executemany(
            "INSERT INTO ledger (seq, recorded_at, kind, actor, subject, event_time, payload, payload_digest, "
            "prev_hash, hash) VALUES (:seq, :recorded_at, :kind, :actor, :subject, :event_time, :payload, "
            ":payload_digest, :prev_hash, :hash)",
            entries,
        )
        db.execute("COMMIT")
        db.close()

    def _replace_tree(self, tiles, size):
        db = self._db()
        db.execute("BEGIN")
        db.execute("DELETE FROM tiles")
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?)", [(lv, ix, data) for (lv, ix), data in tiles.items()])
        db.execute("UPDATE meta SET value = ? WHERE key = 'tree_size'", (str(size),))
        db.execute("COMMIT")
        db.close()

    def set_tree_size(self, size):
        db = self._db()
        db.execute("UPDATE meta SET value = ? WHERE key = 'tree_size'", (str(size),))
        db.close()

    def delete_tiles(self, keys):
        db = self._db()
        db.executemany("DELETE FROM tiles WHERE level = ? AND idx = ?", keys)
        db.close()

    def snapshot(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))

    def restore(self, snapshot: Path) -> None:
        source, copy = sqlite3.connect(snapshot), self._db()
        source.backup(copy)
        source.close()
        copy.close()


class Neo4jInsider(Insider):
    def _write(self, *statements: tuple[str, dict]) -> list[list[dict]]:
        import neo4j

        bare, user, password = split_credentials(self.url)
        with neo4j.GraphDatabase.driver(bare, auth=(user or "neo4j", password)) as driver:
            with driver.session() as session:

                def work(tx):
                    return [[r.data() for r in tx.run(query, **params)] for query, params in statements]

                return session.execute_write(work)

    def snapshot(self) -> tuple[list[dict], list[dict]]:
        nodes, edges = self._write(
            ("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props", {}),
            ("MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS type, b.id AS b, properties(r) AS props", {}),
        )
        return nodes, edges

    def restore(self, snapshot: tuple[list[dict], list[dict]]) -> None:
        nodes, edges = snapshot
        statements: list[tuple[str, dict]] = [("MATCH (n) DETACH DELETE n", {})]
        for labels in {tuple(sorted(n["labels"])) for n in nodes}:
            assert all(re.fullmatch(r"[A-Za-z]+", label) for label in labels)
            rows = [n["props"] for n in nodes if tuple(sorted(n["labels"])) == labels]
            statements.append((f"UNWIND $rows AS r CREATE (n:{':'.join(labels)}) SET n = r", {"rows": rows}))
        for type_ in {e["type"] for e in edges}:
            assert re.fullmatch(r"[A-Z_]+", type_)
            rows = [e for e in edges if e["type"] == type_]
            statements.append(
                (
                    f"UNWIND $rows AS r MATCH (a:Node {{id: r.a}}), (b:Node {{id: r.b}}) "
                    f"CREATE (a)-[e:{type_}]->(b) SET e = r.props",
                    {"rows": rows},
                )
            )
        self._write(*statements)

    def _replace_entries(self, from_seq, entries):
        rows = [{**e, "idem": f"{e['kind']}:{e['payload_digest']}"} for e in entries]
        head = entries[-1] if entries else self.entries()[from_seq - 2]
        self._write(
            ("MATCH (e:LedgerEntry) WHERE e.seq >= $s DETACH DELETE e", {"s": from_seq}),
            ("UNWIND $rows AS r CREATE (e:LedgerEntry) SET e = r", {"rows": rows}),
            ("MATCH (h:LedgerHead {id: 'head'}) SET h.seq = $seq, h.hash = $hash", head),
        )

    def _replace_tree(self, tiles, size):
        rows = [{"level": lv, "idx": ix, "hashes": data} for (lv, ix), data in tiles.items()]
        self._write(
            ("MATCH (t:MerkleTile) DELETE t", {}),
            ("UNWIND $rows AS r CREATE (t:MerkleTile) SET t = r", {"rows": rows}),
            ("MATCH (h:LedgerHead {id: 'head'}) SET h.tree_size = $size", {"size": size}),
        )

    def set_tree_size(self, size):
        self._write(("MATCH (h:LedgerHead {id: 'head'}) SET h.tree_size = $size", {"size": size}))

    def delete_tiles(self, keys):
        self._write(
            (
                "UNWIND $keys AS k MATCH (t:MerkleTile {level: k[0], idx: k[1]}) DELETE t",
                {"keys": [list(k) for k in keys]},
            )
        )


INSIDERS: dict[str, type[Insider]] = {"sqlite": SQLiteInsider, "neo4j": Neo4jInsider}


# --- the anchored store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """A checkpoint kept in a file outside the store, and the entry that recorded it in the ledger."""

    path: Path
    size: int
    seq: int


@dataclass
class Anchored:
    url: str
    dir: Path
    key: Path  # the log's private key (kept away from the insider)
    pub: Path
    early: Kept
    late: Kept
    approval: int
    revocation: int
    head: str
    insider: Insider

    def kept(self) -> list[Kept]:
        return [self.early, self.late]

    def verify(self, *extra) -> tuple[int, str]:
        result = run("audit", "verify", "--store", self.url, *extra)
        return result.exit_code, result.output

    def verdict(self, *extra) -> Verdict:
        code, output = self.verify(*extra)
        if code == 0:
            return None
        assert code == 1, output
        found = re.search(r"BROKEN at entry (\d+): (.*)", output)
        assert found, output
        return Break(int(found[1]), found[2])

    def verdicts(self, kept: list[Path] | None = None) -> dict[str, Verdict]:
        files = [k.path for k in self.kept()] if kept is None else kept
        return {
            ALONE: self.verdict(),
            KEY: self.verdict("--log-key", self.pub),
            KEPT: self.verdict("--log-key", self.pub, *(a for f in files for a in ("--checkpoint", f))),
        }

    def checkpoint(self, key: Path, out: Path) -> int:
        """Take a checkpoint through the CLI; the sequence number of the entry that records it."""
        return checkpoint(self.url, key, out).seq


@dataclass(frozen=True)
class Break:
    seq: int
    message: str

    def __eq__(self, other) -> bool:  # a verdict compares to the entry it names
        return other == self.seq if isinstance(other, int) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.seq)


Verdict = Break | None


@pytest.fixture(scope="session")
def log_key(tmp_path_factory) -> tuple[Path, Path]:
    """The operator's log key (``audit keygen``): the private key file and the public key file."""
    where = tmp_path_factory.mktemp("log-key")
    (where / "log.pub").write_text(ok("audit", "keygen", ORIGIN, "--out", where / "log.key"))
    return where / "log.key", where / "log.pub"


@pytest.fixture(scope="session")
def insider_key(tmp_path_factory) -> Path:
    """A log key the insider made, under the same name as the operator's."""
    where = tmp_path_factory.mktemp("insider-key")
    ok("audit", "keygen", ORIGIN, "--out", where / "evil.key")
    return where / "evil.key"


def fill(url: str, where: Path, key: Path, pub: Path) -> Anchored:
    """Fill a store through the CLI and keep two checkpoints of it in files."""
    ok("demo", "--store", url)
    ok("governance", "keygen", "Rita Risk", "--role", "model-risk", "--out", where / "rita.pem", "--store", url)
    out = ok("governance", "approve", MODEL, "--role", "model-risk", "--key", where / "rita.pem", "--store", url)
    approval = int(re.search(r"\(ledger (\d+)", out)[1])
    out = ok("governance", "revoke-approval", approval, "--reason", "signed the wrong version", "--key",
             where / "rita.pem", "--store", url)  # fmt: skip
    revocation = int(re.search(r"\(ledger (\d+)\)", out)[1])
    files = sorted(p for part in ("valid", "lenient") for p in (CORPUS / part).rglob("*.json"))
    ok("ingest", *files, "--store", url)
    early = checkpoint(url, key, where / "early.note")
    ok("ingest", "-", "--store", url, input=runs("between", GENERATED))
    late = checkpoint(url, key, where / "late.note")
    ok("ingest", "-", "--store", url, input=runs("after", AFTER))
    with open_store(url) as store:
        head = store.head().hash
    return Anchored(url, where, key, pub, early, late, approval, revocation, head, INSIDERS[url.split(":")[0]](url))


def checkpoint(url: str, key: Path, out: Path) -> Kept:
    """Take a checkpoint through the CLI and keep it in ``out``."""
    taken = json.loads(ok("audit", "checkpoint", "--store", url, "--log-key-file", key, "--out", out, "--json"))
    return Kept(out, taken["size"], taken["seq"])


@pytest.fixture(scope="session")
def templates(tmp_path_factory, log_key) -> dict[str, tuple[Anchored, Any]]:
    """One filled store per backend and session, and its snapshot; each test restores it (lazily filled)."""
    return {}


@pytest.fixture(params=[p for p in backends() if p.values[0] in INSIDERS])
def anchored(request, tmp_path, tmp_path_factory, log_key, templates) -> Anchored:
    scheme = request.param
    if scheme not in templates:
        where = tmp_path_factory.mktemp(f"{scheme}-template")
        store = make_store(scheme, where)  # on Neo4j: wipes the shared server
        url = store.url
        store.close()
        template = fill(url, where, *log_key)
        templates[scheme] = template, template.insider.snapshot()
    template, snapshot = templates[scheme]
    url = f"sqlite:///{tmp_path}/store.db" if scheme == "sqlite" else template.url
    insider = INSIDERS[scheme](url)
    insider.restore(snapshot)
    for name in ("early.note", "late.note", "rita.pem"):
        shutil.copy(template.dir / name, tmp_path / name)
    early, late = (Kept(tmp_path / k.path.name, k.size, k.seq) for k in template.kept())
    return Anchored(url, tmp_path, *log_key, early, late, template.approval, template.revocation, template.head,
                    insider)  # fmt: skip


def altered(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its event rewritten: the run read nothing (a pii input hidden)."""
    event = json.loads(entry["payload"])
    event["inputs"] = []
    event["eventTime"] = "2024-01-01T00:00:00Z"
    return {**entry, "payload": canonical_json(event)}


def without_kind(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["kind"] != kind]


# --- an untouched store ---------------------------------------------------------------------------------


def test_an_untouched_store_passes_every_verify_and_says_what_it_checked(anchored):
    assert anchored.verdicts() == {ALONE: None, KEY: None, KEPT: None}
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", anchored.early.path)
    assert code == 0
    total = anchored.late.seq + AFTER
    assert output.splitlines()[1:] == [
        "  2 recorded checkpoints match the ledger and signed by the log key",
        f"  {anchored.early.path}: the ledger's first {anchored.early.size} entries match its signed root",
        f"  the stored Merkle tree matches the ledger over {total} entries",
    ]
    assert anchored.early.size > 77 and anchored.late.size > merkle.TILE_WIDTH  # the layout the attacks assume


# --- the attack: alter entry 77 and re-hash every later entry ------------------------------------


def test_entry_77_altered_and_the_chain_rehashed_is_named_by_audit_verify_alone(anchored):
    forged = anchored.insider.entries()
    forged[76] = altered(forged[76])
    anchored.insider.rewrite(forged)
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: 77, KEY: 77, KEPT: 77}
    assert "altered, deleted, inserted or reordered, and the chain re-hashed" in verdicts[ALONE].message


def test_entry_77_altered_with_the_tree_rewritten_too_is_caught_by_the_recorded_checkpoints_within_bounds(anchored):
    forged = anchored.insider.entries()
    forged[76] = altered(forged[76])
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: 1, KEY: 1, KEPT: 1}
    assert f"the first change is between entries 1 and {anchored.early.size}" in verdicts[ALONE].message


def test_entry_77_altered_with_the_tree_rewritten_and_the_recorded_checkpoints_deleted_only_a_kept_one_catches(
    anchored,
):
    forged = anchored.insider.entries()
    forged[76] = altered(forged[76])
    anchored.insider.rewrite(without_kind(forged, "ledger.checkpoint"))
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: None, KEPT: 1}
    assert f"{anchored.early.path}" in verdicts[KEPT].message
    assert f"between entries 1 and {anchored.early.size}" in verdicts[KEPT].message


def test_entry_77_altered_and_re_signed_with_the_insiders_own_key_is_caught_by_the_log_key(anchored, insider_key):
    forged = anchored.insider.entries()
    forged[76] = altered(forged[76])
    anchored.insider.rewrite(without_kind(forged, "ledger.checkpoint"))
    anchored.insider.rewrite_tree()
    forged_seq = anchored.checkpoint(insider_key, anchored.dir / "forged.note")
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: forged_seq, KEPT: 1}
    assert "recorded checkpoint: the note is not signed by log key" in verdicts[KEY].message


# --- an approval's revocation deleted, the ledger renumbered --------------------------------------------


def test_a_deleted_revocation_brings_the_approval_back_and_audit_verify_names_where_it_was(anchored):
    def approvals() -> list[tuple[int, bool]]:
        listed = json.loads(ok("governance", "approvals", MODEL, "--json", "--store", anchored.url))
        return [(a["seq"], a["valid"]) for a in listed]

    assert approvals() == [(anchored.approval, False)]
    anchored.insider.rewrite(without_kind(anchored.insider.entries(), "governance.approval_revoked"))
    # the forgery works on the read side: the revoked approval counts again ...
    assert approvals() == [(anchored.approval, True)]
    # ... and every verify catches it; a kept checkpoint names the entry the revocation was
    verdicts = anchored.verdicts()
    assert None not in verdicts.values()
    assert verdicts[KEPT] == anchored.revocation


def test_a_deleted_revocation_with_the_tree_and_recorded_checkpoints_rewritten_is_caught_by_a_kept_checkpoint(
    anchored,
):
    forged = without_kind(anchored.insider.entries(), "governance.approval_revoked")
    anchored.insider.rewrite(without_kind(forged, "ledger.checkpoint"))
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: None, KEPT: 1}
    assert f"between entries 1 and {anchored.early.size}" in verdicts[KEPT].message


# --- reordered, inserted ----------------------------------------------------------------------------------


def test_two_entries_swapped_and_rehashed_are_named(anchored):
    forged = anchored.insider.entries()
    forged[99], forged[100] = forged[100], forged[99]
    anchored.insider.rewrite(forged)
    assert anchored.verdicts() == {ALONE: 100, KEY: 100, KEPT: 100}


def test_two_entries_swapped_after_the_early_checkpoint_with_the_tree_rewritten_are_bounded_by_the_two_kept(
    anchored,
):
    forged = without_kind(anchored.insider.entries(), "ledger.checkpoint")
    forged[199], forged[200] = forged[200], forged[199]
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    early, late = anchored.early.size, anchored.late.size
    assert verdicts == {ALONE: None, KEY: None, KEPT: early + 1}
    assert f"between entries {early + 1} and {late}" in verdicts[KEPT].message


def test_a_forged_entry_inserted_and_rehashed_is_named(anchored):
    forged = anchored.insider.entries()
    event = json.loads(runs("forged", 1))
    forged.insert(49, {**forged[49], "payload": canonical_json(event), "subject": f"run:{event['run']['runId']}"})
    anchored.insider.rewrite(forged)
    assert anchored.verdicts() == {ALONE: 50, KEY: 50, KEPT: 50}


def test_a_forged_entry_inserted_with_the_tree_rewritten_is_caught_by_a_kept_checkpoint(anchored):
    forged = without_kind(anchored.insider.entries(), "ledger.checkpoint")
    event = json.loads(runs("forged", 1))
    forged.insert(249, {**forged[249], "payload": canonical_json(event), "subject": f"run:{event['run']['runId']}"})
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    assert anchored.verdicts() == {ALONE: None, KEY: None, KEPT: anchored.early.size + 1}


# --- truncated -------------------------------------------------------------------------------------------


def test_a_cut_tail_with_the_tree_left_is_named_by_audit_verify_alone(anchored):
    keep = anchored.late.size - 5
    anchored.insider.rewrite(anchored.insider.entries()[:keep])
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: keep + 1, KEY: keep + 1, KEPT: keep + 1}
    assert f"the ledger {keep}: entries {keep + 1}.." in verdicts[ALONE].message


def test_a_cut_tail_with_the_tree_cut_too_is_caught_by_a_kept_checkpoint_covering_it_and_by_expect_head(anchored):
    keep = anchored.late.size - 5
    anchored.insider.rewrite(anchored.insider.entries()[:keep])
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: None, KEPT: keep + 1}
    assert (
        f"{anchored.late.path} covers {anchored.late.size} entries; the ledger holds only {keep}: "
        f"entries {keep + 1}..{anchored.late.size} were removed" in verdicts[KEPT].message
    )
    code, output = anchored.verify("--expect-head", anchored.head)
    assert code == 1 and f"expected {anchored.head}" in output


def test_entries_after_the_last_kept_checkpoint_cut_with_the_tree_are_caught_only_by_expect_head(anchored):
    """Residual risk: no checkpoint covers them yet. Checkpoint often (--checkpoint-every) and keep the head."""
    anchored.insider.rewrite(anchored.insider.entries()[: anchored.late.seq])
    anchored.insider.rewrite_tree()
    assert anchored.verdicts() == {ALONE: None, KEY: None, KEPT: None}
    assert anchored.verify("--expect-head", anchored.head)[0] == 1


# --- the recorded checkpoints deleted, or one signed by another key --------------------------------------


def test_recorded_checkpoints_deleted_and_the_ledger_renumbered_are_caught_by_the_stored_tree(anchored):
    anchored.insider.rewrite(without_kind(anchored.insider.entries(), "ledger.checkpoint"))
    verdicts = anchored.verdicts()
    assert None not in verdicts.values()
    assert verdicts[KEPT] == anchored.early.seq


@pytest.mark.parametrize("kind", ["governance.approval_revoked", "ledger.checkpoint"])
def test_an_entry_deleted_and_the_ledger_renumbered_is_named_exactly_by_audit_verify_alone(anchored, kind):
    """The stored tree still holds the leaves that were recorded, so the first that differs can be named."""
    first = next(e["seq"] for e in anchored.insider.entries() if e["kind"] == kind)
    anchored.insider.rewrite(without_kind(anchored.insider.entries(), kind))
    assert anchored.verdict() == first


def test_recorded_checkpoints_deleted_with_the_tree_rewritten_are_caught_by_the_kept_checkpoint_after_them(anchored):
    anchored.insider.rewrite(without_kind(anchored.insider.entries(), "ledger.checkpoint"))
    anchored.insider.rewrite_tree()
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: None, KEPT: anchored.early.seq}
    assert f"between entries {anchored.early.seq} and {anchored.late.size}" in verdicts[KEPT].message


def test_a_checkpoint_recorded_with_another_key_is_named_with_the_log_key(anchored, insider_key):
    seq = anchored.checkpoint(insider_key, anchored.dir / "other.note")
    verdicts = anchored.verdicts()
    assert verdicts == {ALONE: None, KEY: seq, KEPT: seq}
    name_and_hash = "+".join(anchored.pub.read_text().split("+", 2)[:2])
    assert f"the note is not signed by log key {name_and_hash}" in verdicts[KEY].message


# --- kept checkpoint files: edited, another key's, no key ------------------------------------------------


@pytest.mark.parametrize("line", [1, 2], ids=["size", "root"])
def test_an_edited_kept_checkpoint_is_refused_naming_the_file(anchored, line):
    note = anchored.early.path.read_text().split("\n")
    note[line] = str(anchored.early.size - 1) if line == 1 else base64.b64encode(merkle.leaf_hash(b"x")).decode()
    anchored.early.path.write_text("\n".join(note))
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", anchored.early.path)
    assert code == 2
    assert f"Error: {anchored.early.path}: " in output
    assert "does not verify: the note was altered" in output


def test_a_kept_checkpoint_signed_by_another_key_is_refused(anchored, insider_key):
    anchored.checkpoint(insider_key, anchored.dir / "other.note")
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", anchored.dir / "other.note")
    assert code == 2
    assert f"Error: {anchored.dir / 'other.note'}: the note is not signed by log key {ORIGIN}+" in output


def test_a_kept_checkpoint_without_the_log_key_is_refused(anchored):
    code, output = anchored.verify("--checkpoint", anchored.early.path)
    assert code == 2
    assert "--checkpoint needs --log-key" in output


# --- an insider who also holds the log key ---------------------------------------------------------------


def test_with_the_log_key_too_a_rewrite_passes_everything_but_a_checkpoint_kept_before_it(anchored):
    """Residual risk: the database and the log key together rewrite history and re-sign it; only a checkpoint
    kept out of their reach before the rewrite shows it. A ledger rewritten before any was kept is not caught."""
    forged = without_kind(anchored.insider.entries(), "ledger.checkpoint")
    forged[76] = altered(forged[76])
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    anchored.checkpoint(anchored.key, anchored.dir / "after.note")
    assert anchored.verdicts([anchored.dir / "after.note"]) == {ALONE: None, KEY: None, KEPT: None}
    assert anchored.verdicts([anchored.dir / "after.note", anchored.early.path])[KEPT] == 1


# --- beyond the list ----------------------------------------------------------------------------------------


def test_a_lowered_tree_size_lets_the_next_write_hash_a_forged_tail_and_a_kept_checkpoint_still_catches_it(
    anchored,
):
    """The write path catches up a tree that lags its ledger (a store from before the tree). An insider who
    lowers the stored size to a tile boundary below their edit gets the next honest write to hash the forged
    entries into the tree; that is no more than rewriting the tiles, which they can do anyway."""
    forged = anchored.insider.entries()
    forged[269] = altered(forged[269])  # in the second level-0 tile
    anchored.insider.rewrite([e for e in forged if e["seq"] != anchored.late.seq])
    anchored.insider.set_tree_size(merkle.TILE_WIDTH)
    anchored.insider.delete_tiles([(0, 1)])
    code, output = anchored.verify()
    assert code == 0 and f"over {merkle.TILE_WIDTH} entries (it lags the ledger by" in output
    ok("ingest", "-", "--store", anchored.url, input=runs("honest", 1))  # the next write catches up
    assert anchored.verdicts() == {ALONE: None, KEY: None, KEPT: anchored.early.seq}


def test_a_tree_size_lowered_off_a_tile_boundary_stops_every_write_until_repaired(anchored):
    anchored.insider.set_tree_size(200)
    result = run("ingest", "-", "--store", anchored.url, input=runs("honest", 1))
    assert result.exit_code == 3
    assert "write failed, nothing recorded: tile (0, 0) holds 256 hashes, expected 200" in result.output


def test_a_kept_checkpoint_of_a_giant_size_names_the_entry_after_the_ledger(anchored):
    with open_store(anchored.url) as store:
        total = store.head().seq
        root = store.tree_root(total)
    note = sign_checkpoint(Checkpoint(ORIGIN, 10**18, root), LogKey.load(anchored.key))
    (anchored.dir / "giant.note").write_text(note)
    verdict = anchored.verdict("--log-key", anchored.pub, "--checkpoint", anchored.dir / "giant.note")
    assert verdict == total + 1
    assert f"covers {10**18} entries; the ledger holds only {total}" in verdict.message
    huge = sign_checkpoint(Checkpoint(ORIGIN, 10**20, root), LogKey.load(anchored.key))
    (anchored.dir / "huge.note").write_text(huge)
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", anchored.dir / "huge.note")
    assert code == 2 and "bad origin or size line" in output


def test_a_checkpoint_entry_forged_with_a_giant_size_is_named(anchored):
    forged = anchored.insider.entries()
    payload = json.loads(forged[anchored.late.seq - 1]["payload"])
    forged[anchored.late.seq - 1]["payload"] = canonical_json({**payload, "size": 10**30})
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    verdict = anchored.verdict()
    assert verdict == anchored.late.seq
    assert f"checkpoint of {10**30} entries recorded as entry {anchored.late.seq}" in verdict.message


def test_an_entry_appended_through_the_database_under_a_producers_name_passes_everything_and_is_then_signed(
    anchored,
):
    """Residual risk: actors are names, not signatures. An entry appended with SQL or Cypher, chained onto the
    head, is a well-formed entry; the next write hashes it into the tree and the next checkpoint signs it."""
    forged = anchored.insider.entries()
    event = json.loads(runs("appended", 1))
    forged.append({**forged[-1], "payload": canonical_json(event), "subject": f"run:{event['run']['runId']}"})
    anchored.insider.rewrite(forged)
    ok("ingest", "-", "--store", anchored.url, input=runs("honest", 1))
    anchored.checkpoint(anchored.key, anchored.dir / "next.note")
    kept = [k.path for k in anchored.kept()] + [anchored.dir / "next.note"]
    assert anchored.verdicts(kept) == {ALONE: None, KEY: None, KEPT: None}


def test_audit_checkpoint_refuses_to_sign_a_stored_tree_the_ledger_does_not_give(anchored):
    """An insider who rewrites only the tiles (here: for a ledger with entry 77 altered) would otherwise get the log
    key to sign a root of their choosing; the ledger still holds the true entries."""
    forged = anchored.insider.entries()
    forged[76] = altered(forged[76])
    leaves = [merkle.entry_leaf(e["hash"]) for e in rehash(forged)]
    anchored.insider._replace_tree(merkle.grow(0, {}, leaves), len(leaves))
    result = run("audit", "checkpoint", "--store", anchored.url, "--log-key-file", anchored.key)
    assert result.exit_code != 0
    with open_store(anchored.url) as store:
        assert store.head().seq == len(forged)  # nothing recorded


def test_a_kept_checkpoint_of_another_store_is_refused_or_fails(anchored, tmp_path_factory, log_key, insider_key):
    other = tmp_path_factory.mktemp("other")
    url = f"sqlite:///{other}/other.db"
    ok("demo", "--store", url)
    ok("audit", "checkpoint", "--store", url, "--log-key-file", insider_key, "--out", other / "theirs.note")
    ok("audit", "checkpoint", "--store", url, "--log-key-file", log_key[0], "--out", other / "ours.note")
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", other / "theirs.note")
    assert code == 2 and "is not signed by log key" in output
    assert anchored.verdict("--log-key", anchored.pub, "--checkpoint", other / "ours.note") == 1


@pytest.mark.parametrize("field, value", [("size", -5), ("root", "zz"), ("root", "AB" * 32)])
def test_a_checkpoint_entry_forged_with_a_bad_size_or_root_is_named_not_a_crash(anchored, field, value):
    forged = anchored.insider.entries()
    payload = json.loads(forged[anchored.late.seq - 1]["payload"])
    forged[anchored.late.seq - 1]["payload"] = canonical_json({**payload, field: value})
    anchored.insider.rewrite(forged)
    anchored.insider.rewrite_tree()
    verdict = anchored.verdict()
    assert verdict == anchored.late.seq
    assert "checkpoint entry does not validate" in verdict.message


@pytest.mark.parametrize("tiles", [[(0, 0)], [(0, 1), (1, 0)]], ids=["first", "second-and-level-1"])
def test_a_deleted_tile_is_named_not_a_crash(anchored, tiles):
    anchored.insider.delete_tiles(tiles)
    verdict = anchored.verdict()
    assert verdict is not None and "stored Merkle tree" in verdict.message


def test_a_kept_checkpoint_whose_first_log_key_signature_is_over_other_text_is_refused_as_go_refuses_it(anchored):
    """golang.org/x/mod/sumdb/note Open: the first signature by a known key decides (InvalidSignatureError)."""
    early = anchored.early.path.read_text()
    late = anchored.late.path.read_text()
    wrong = late.split("\n\n")[1].strip()  # the log key's valid signature, of the late checkpoint's text
    text, _ = split_note(early)
    (anchored.dir / "two.note").write_text(early.replace("\n\n", f"\n\n{wrong}\n", 1))
    assert split_note((anchored.dir / "two.note").read_text())[0] == text
    code, output = anchored.verify("--log-key", anchored.pub, "--checkpoint", anchored.dir / "two.note")
    assert code == 2


def test_checkpoints_taken_while_others_write_all_match_and_verify(anchored):
    """Three writers and a checkpointer at once: each checkpoint signs a prefix the writers cannot change."""
    key = LogKey.load(anchored.key)
    notes: list[str] = []
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            with open_store(anchored.url) as store:
                for i in range(20):
                    ingest_events(store, [json.loads(runs(f"{name}-{i}", 1))])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def checkpoint() -> None:
        try:
            with open_store(anchored.url) as store:
                for _ in range(6):
                    notes.append(anchors.take(store, key, "cron").note)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(3)]
    threads.append(threading.Thread(target=checkpoint))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, note in enumerate(notes):
        (anchored.dir / f"c{i}.note").write_text(note)
    files = [a for i in range(len(notes)) for a in ("--checkpoint", anchored.dir / f"c{i}.note")]
    code, output = anchored.verify("--log-key", anchored.pub, *files)
    assert code == 0, output
    assert "8 recorded checkpoints match the ledger and signed by the log key" in output


def test_audit_verify_while_an_entry_is_written_does_not_report_removed_entries(anchored):
    """SQLite reads the chain in one snapshot, so a write made while it is read lands between the chain and the
    tree size; Neo4j reads it in pages, which then take in the new entry, and the window is too short to hit."""
    if not anchored.url.startswith("sqlite"):
        pytest.skip("reproducible on SQLite only (see the docstring)")
    with open_store(anchored.url) as store, open_store(anchored.url) as writer:
        ingest_events(store, [json.loads(line) for line in runs("bulk", 1000 - store.head().seq).splitlines()])
        written: list[int] = []

        def progress(n: int) -> None:  # called while the chain is read: another client writes meanwhile
            if not written:
                written.append(ingest_events(writer, [json.loads(runs("meanwhile", 1))]).accepted)

        result = anchors.verify(store, progress=progress)
    assert written == [1]
    assert result.ok, result.first_break
