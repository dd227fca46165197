"""auditgraph's checkpoints and proofs against independent implementations of the formats, both ways.

tools/tlog-interop is a small Go program built on the reference packages: golang.org/x/mod/sumdb/note
(signed notes, keys), github.com/transparency-dev/formats/log (C2SP tlog-checkpoint) and
github.com/transparency-dev/merkle (RFC 6962 trees and proofs). A real SQLite store is filled by the
real CLI (``auditgraph demo``, ``audit keygen``, ``audit checkpoint``, ``ingest --checkpoint-every``);
then

* Go opens every checkpoint auditgraph signed, with the public key ``audit keygen`` printed, and
  verifies every inclusion and consistency proof the store serves against them, and refuses each
  altered one;
* Go makes a key, signs checkpoints and computes roots and proofs over the store's entries: ours are
  byte-identical, our verifier accepts Go's notes and proofs, ``audit verify --checkpoint`` accepts a
  Go-signed checkpoint (and catches one over other entries), and ``audit checkpoint`` with Go's key
  writes the very note Go wrote.

Go is on every machine of this project's kind; in CI (CI set) a missing Go fails the test rather than
skipping it. The program is built once per session (about 90 s on an empty Go cache, 2 s after).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_event

from lineage import merkle
from lineage.anchors import CHECKPOINT_KIND
from lineage.checkpoint import Checkpoint, LogKey, Verifier, read_checkpoint, sign_checkpoint
from lineage.store import open_store

pytestmark = pytest.mark.slow

TOOL = ROOT / "tools" / "tlog-interop"
ORIGIN = "tlog-interop.example/ledger"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def find_go() -> str | None:
    return shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if Path(p).is_file()), None)


@pytest.fixture(scope="session")
def go(tmp_path_factory):
    """Send one request to tools/tlog-interop (built once) and return its answer."""
    toolchain = find_go()
    if toolchain is None:
        message = (
            "Go is not installed (no go on PATH, nor /usr/local/go/bin/go): tests/test_tlog_interop.py checks "
            "checkpoints and proofs with Go's reference packages (tools/tlog-interop, Go 1.26)"
        )
        if IN_CI:
            pytest.fail(f"CI is set and {message}")
        pytest.skip(message)
    binary = tmp_path_factory.mktemp("tlog-interop") / "tlog-interop"
    build = subprocess.run(
        [toolchain, "build", "-buildvcs=false", "-o", str(binary), "."],
        cwd=TOOL,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, f"go build in {TOOL} failed:\n{build.stderr}"

    def call(request: dict) -> dict:
        proc = subprocess.run([binary], input=json.dumps(request), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"tlog-interop failed: {proc.stderr}"
        return json.loads(proc.stdout)

    return call


def cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITGRAPH_")}
    proc = subprocess.run([sys.executable, "-m", "lineage", *map(str, args)], capture_output=True, text=True, env=env)
    if ok:
        assert proc.returncode == 0, f"auditgraph {' '.join(map(str, args))}: {proc.stderr}"
    return proc


def demo_store(directory: Path) -> str:
    url = f"sqlite:///{directory}/store.db"
    cli("demo", "--store", url)
    return url


class Anchored:
    """A store filled by the CLI, with checkpoints signed by a key from ``audit keygen``."""

    def __init__(self, directory: Path):
        self.url = demo_store(directory)
        self.vkey = cli("audit", "keygen", ORIGIN, "--out", directory / "log.key").stdout.strip()
        self.printed = cli("audit", "checkpoint", "--store", self.url, "--log-key-file", directory / "log.key").stdout
        events = directory / "events.jsonl"
        events.write_text(
            "".join(json.dumps(run_event(f"job{i}", outputs=[("interop", f"t{i}")])) + "\n" for i in range(600))
        )
        key = ("--log-key-file", directory / "log.key")
        cli("ingest", events, "--store", self.url, "--batch-size", 50, "--checkpoint-every", 100, *key)
        with open_store(self.url) as store:
            recorded = [r.value for r in CHECKPOINT_KIND.valid(store)]  # the printed one first
            self.notes, self.sizes = [c.note for c in recorded], [c.size for c in recorded]
            self.leaves = [bytes.fromhex(e.hash) for e in store.entries(limit=None)]  # each entry's leaf data
            self.inclusion = [
                {"checkpoint": c, "index": i, "leaf": self.leaves[i].hex(), "proof": self.proof(store, i, size)}
                for c, size in enumerate(self.sizes)
                for i in range(size)
            ]
            self.consistency = [
                {"old": a, "new": b, "proof": hexes(store.consistency_proof(self.sizes[a], self.sizes[b]))}
                for b in range(len(self.sizes))
                for a in range(b + 1)
            ]
            self.roots = {size: store.tree_root(size).hex() for size in self.sizes}

    @staticmethod
    def proof(store, index: int, size: int) -> list[str]:
        return hexes(store.inclusion_proof(index + 1, size))

    def verify(self, go, **request) -> dict:
        return go({"op": "verify", "vkey": self.vkey, "origin": ORIGIN, "checkpoints": self.notes, **request})


def hexes(proof: list[bytes]) -> list[str]:
    return [h.hex() for h in proof]


def flip(h: str) -> str:
    return f"{int(h[0], 16) ^ 1:x}{h[1:]}"


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    return Anchored(tmp_path_factory.mktemp("anchored"))


# --- auditgraph signs and proves, Go verifies ------------------------------------------------------------


def test_go_opens_every_checkpoint_auditgraph_signed_with_the_key_audit_keygen_printed(go, anchored):
    assert anchored.notes[0] == anchored.printed
    assert anchored.sizes[0] == 8 and anchored.sizes[-1] > 2 * merkle.TILE_WIDTH  # the demo, then past two tiles
    answer = anchored.verify(go)
    assert [(c["ok"], c.get("error")) for c in answer["checkpoints"]] == [(True, None)] * len(anchored.notes)
    assert [(c["origin"], c["size"], c["root"]) for c in answer["checkpoints"]] == [
        (ORIGIN, size, anchored.roots[size]) for size in anchored.sizes
    ]


def test_go_verifies_every_inclusion_proof_the_store_serves_against_every_checkpoint(go, anchored):
    answer = anchored.verify(go, inclusion=anchored.inclusion)
    failed = [(p["checkpoint"], p["index"], r) for p, r in zip(anchored.inclusion, answer["inclusion"]) if not r["ok"]]
    assert failed == []
    assert len(answer["inclusion"]) == sum(anchored.sizes)


def test_go_verifies_every_consistency_proof_between_the_checkpoints(go, anchored):
    answer = anchored.verify(go, consistency=anchored.consistency)
    assert [r for r in answer["consistency"] if not r["ok"]] == []
    assert len(answer["consistency"]) == len(anchored.sizes) * (len(anchored.sizes) + 1) // 2


def test_go_refuses_every_altered_inclusion_proof(go, anchored):
    probes = []
    for p in anchored.inclusion[:: max(1, len(anchored.inclusion) // 150)]:  # spread over checkpoints and tiles
        size = anchored.sizes[p["checkpoint"]]
        for i in range(len(p["proof"])):
            probes.append({**p, "proof": [*p["proof"][:i], flip(p["proof"][i]), *p["proof"][i + 1 :]]})
        probes.append({**p, "index": (p["index"] + 1) % size})
        probes.append({**p, "leaf": anchored.leaves[(p["index"] + 1) % size].hex()})
        probes.append({**p, "proof": p["proof"][:-1]})
        probes.append({**p, "proof": [*p["proof"], p["proof"][-1] if p["proof"] else "00" * 32]})
        if p["checkpoint"]:
            probes.append({**p, "checkpoint": p["checkpoint"] - 1})  # another size and root
    answer = anchored.verify(go, inclusion=probes)
    accepted = [p for p, r in zip(probes, answer["inclusion"]) if r["ok"]]
    assert accepted == [] and len(probes) > 1000


def test_go_refuses_every_altered_consistency_proof(go, anchored):
    probes = []
    for p in anchored.consistency:
        if p["old"] == p["new"]:
            continue
        for i in range(len(p["proof"])):
            probes.append({**p, "proof": [*p["proof"][:i], flip(p["proof"][i]), *p["proof"][i + 1 :]]})
        probes.append({**p, "old": p["new"], "new": p["old"]})
        probes.append({**p, "proof": p["proof"][:-1]})
        if p["new"] - p["old"] > 1:
            probes.append({**p, "new": p["new"] - 1})
    answer = anchored.verify(go, consistency=probes)
    assert [p for p, r in zip(probes, answer["consistency"]) if r["ok"]] == []


def test_go_refuses_an_altered_checkpoint_another_key_and_another_origin(go, anchored):
    note = anchored.notes[-1]
    size = str(anchored.sizes[-1])
    altered = note.replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)
    other = sign_checkpoint(
        Checkpoint(ORIGIN, int(size), bytes.fromhex(anchored.roots[int(size)])), LogKey.generate(ORIGIN)
    )
    answer = go({"op": "verify", "vkey": anchored.vkey, "origin": ORIGIN, "checkpoints": [altered, other]})
    assert [c["ok"] for c in answer["checkpoints"]] == [False, False]
    assert "invalid signature" in answer["checkpoints"][0]["error"]
    assert "no verifiable signatures" in answer["checkpoints"][1]["error"]
    elsewhere = go({"op": "verify", "vkey": anchored.vkey, "origin": "elsewhere.example/log", "checkpoints": [note]})
    assert elsewhere["checkpoints"][0] == {
        "ok": False,
        "error": f'got Origin "{ORIGIN}" but expected "elsewhere.example/log"',
        "size": 0,
    }


# --- Go signs and proves, auditgraph verifies ---------------------------------------------------------------


@pytest.fixture
def demo(tmp_path):
    url = demo_store(tmp_path)
    with open_store(url) as store:
        leaves = [bytes.fromhex(e.hash) for e in store.entries(limit=None)]
    return url, leaves


def go_sign(go, leaves: list[bytes], **request) -> dict:
    n = len(leaves)
    return go(
        {
            "op": "sign",
            "origin": ORIGIN,
            "leaves": [leaf.hex() for leaf in leaves],
            "sizes": list(range(n + 1)),
            "inclusion": [{"index": i, "size": size} for size in range(1, n + 1) for i in range(size)],
            "consistency": [{"old": old, "new": new} for new in range(n + 1) for old in range(new + 1)],
            **request,
        }
    )


def test_our_roots_and_proofs_are_byte_identical_to_gos_and_verify(go, demo):
    url, leaves = demo
    signed = go_sign(go, leaves)
    with open_store(url) as store:
        assert {int(k): v for k, v in signed["roots"].items()} == {n: store.tree_root(n).hex() for n in range(9)}
        for p in signed["inclusion"]:
            assert p["proof"] == hexes(store.inclusion_proof(p["index"] + 1, p["size"])), p
            proof = [bytes.fromhex(h) for h in p["proof"]]
            merkle.verify_inclusion(
                p["index"], p["size"], merkle.leaf_hash(leaves[p["index"]]), proof, store.tree_root(p["size"])
            )
        for p in signed["consistency"]:
            assert p["proof"] == hexes(store.consistency_proof(p["old"], p["new"])), p
            proof = [bytes.fromhex(h) for h in p["proof"]]
            merkle.verify_consistency(p["old"], p["new"], store.tree_root(p["old"]), store.tree_root(p["new"]), proof)
    assert len(signed["inclusion"]) == 36 and len(signed["consistency"]) == 45


def test_we_open_gos_checkpoints_and_sign_byte_identically_with_a_key_go_made(go, demo):
    url, leaves = demo
    signed = go_sign(go, leaves, inclusion=[], consistency=[])
    verifier, key = Verifier.parse(signed["vkey"]), LogKey.parse(signed["skey"])
    assert key.verifier() == verifier and key.text() == signed["skey"] and verifier.text() == signed["vkey"]
    for size, note in signed["notes"].items():
        checkpoint = read_checkpoint(note, verifier)
        assert (checkpoint.origin, checkpoint.size, checkpoint.root.hex()) == (ORIGIN, int(size), signed["roots"][size])
        assert sign_checkpoint(checkpoint, key) == note


def test_audit_verify_accepts_a_checkpoint_go_signed_and_catches_one_over_other_entries(go, demo, tmp_path):
    url, leaves = demo
    signed = go_sign(go, leaves, sizes=[len(leaves)], inclusion=[], consistency=[])
    (tmp_path / "go.note").write_text(signed["notes"]["8"])
    verified = cli("audit", "verify", "--store", url, "--log-key", signed["vkey"], "--checkpoint", tmp_path / "go.note")
    assert f"{tmp_path / 'go.note'}: the ledger's first 8 entries match its signed root" in verified.stdout
    forged = [*leaves[:4], bytes(32), *leaves[5:]]  # entry 5 is not what the store holds
    other = go_sign(go, forged, skey=signed["skey"], sizes=[len(leaves)], inclusion=[], consistency=[])
    (tmp_path / "forged.note").write_text(other["notes"]["8"])
    broken = cli(
        "audit",
        "verify",
        "--store",
        url,
        "--log-key",
        signed["vkey"],
        "--checkpoint",
        tmp_path / "forged.note",
        ok=False,
    )
    assert broken.returncode == 1 and "BROKEN at" in broken.stderr, broken.stderr


def test_audit_checkpoint_with_a_key_go_made_writes_the_note_go_writes(go, demo, tmp_path):
    url, leaves = demo
    signed = go_sign(go, leaves, sizes=[len(leaves)], inclusion=[], consistency=[])
    (tmp_path / "go.key").write_text(signed["skey"] + "\n")
    ours = cli("audit", "checkpoint", "--store", url, "--log-key-file", tmp_path / "go.key").stdout
    assert ours == signed["notes"]["8"]
    answer = go({"op": "verify", "vkey": signed["vkey"], "origin": ORIGIN, "checkpoints": [ours]})
    assert answer["checkpoints"][0]["ok"] is True
