"""Outgoing webhooks: subscriptions, signatures, retried delivery, and the retraining trigger.

* Subscriptions are ledger entries (``hook.subscribed`` / ``hook.unsubscribed``).
* A hook's signing secret is never stored: it is HMAC(server key, hook id). The
  server key comes from AUDITGRAPH_SECRET_KEY, else from a 0600 file
  (``$XDG_CONFIG_HOME/auditgraph/secret.key``) made on first use, so the CLI
  that creates a hook and the server that signs for it agree on one machine.
* Each delivery is a JSON POST with ``X-Auditgraph-Event``,
  ``X-Auditgraph-Delivery`` and ``X-Auditgraph-Signature: t=<unix time>,v1=<hex>``
  where v1 = HMAC-SHA256(secret, "<t>.<body>"). Receivers check it with
  ``verify_signature`` (or the same three lines in their language) and reject
  old timestamps to stop replays.
* The server's dispatcher tails the ledger, so writes from the CLI, the server
  and the SDK all raise events; other packages add event sources with
  ``register_source``. Delivery runs on worker threads with retries and
  exponential backoff; the outcome (delivered, or failed after the last
  attempt) is a ``hook.delivery`` ledger entry. A slow or failing receiver
  never blocks ingestion.

Events: ``lineage.upstream_version`` (a new version of a dataset upstream of an
approved or released model: the retraining trigger), ``governance.check_failed``,
``governance.release_decided``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from lineage.canonical import canonical_bytes, canonical_json
from lineage.errors import LineageError
from lineage.ids import NodeKind
from lineage.ledger import LedgerEntry, Pending
from lineage.plugins import load_plugins
from lineage.projection import OPENLINEAGE_KIND
from lineage.store import Store

log = logging.getLogger(__name__)

EVENTS = ("lineage.upstream_version", "governance.check_failed", "governance.release_decided")
SUBSCRIBED, UNSUBSCRIBED, DELIVERY = "hook.subscribed", "hook.unsubscribed", "hook.delivery"
WATCH_FACETS = ("auditgraph.release", "auditgraph.approval")  # set by governance's projections


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def server_key() -> bytes:
    """The key hook secrets derive from (see the module docstring)."""
    if env := os.environ.get("AUDITGRAPH_SECRET_KEY"):
        return env.encode("utf-8")
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "auditgraph"
    path = base / "secret.key"
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def secret_for(hook_id: str) -> str:
    return hmac.new(server_key(), f"hook:{hook_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: float = 300, now: float | None = None) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` seconds old."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


# --- subscriptions ------------------------------------------------------------

def subscribe(store: Store, url: str, events: list[str], actor: str, description: str = "") -> tuple[str, str]:
    """Add a subscription; return (hook id, signing secret)."""
    if not url.startswith(("http://", "https://")):
        raise LineageError(f"webhook url must start with http:// or https://, got {url!r}")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise LineageError(f"events must be some of {', '.join(EVENTS)}; got {', '.join(unknown) or 'none'}")
    hook_id = uuid.uuid4().hex[:16]
    store.append(Pending(SUBSCRIBED, {"hook_id": hook_id, "url": url, "events": sorted(set(events)),
                                      "description": description, "at": _now()}, actor, subject=f"hook:{hook_id}"))
    return hook_id, secret_for(hook_id)


def unsubscribe(store: Store, hook_id: str, actor: str) -> None:
    if hook_id not in {h["hook_id"] for h in subscriptions(store)}:
        raise LineageError(f"no active webhook {hook_id!r}")
    store.append(Pending(UNSUBSCRIBED, {"hook_id": hook_id, "at": _now()}, actor, subject=f"hook:{hook_id}"))


def subscriptions(store: Store) -> list[dict]:
    gone = {json.loads(e.payload)["hook_id"] for e in store.entries(kind=UNSUBSCRIBED, limit=None)}
    return [p for p in (json.loads(e.payload) for e in store.entries(kind=SUBSCRIBED, limit=None))
            if p["hook_id"] not in gone]


def deliveries(store: Store, hook_id: str | None = None, limit: int = 100) -> list[dict]:
    subject = f"hook:{hook_id}" if hook_id else None
    return [json.loads(e.payload) for e in store.entries(kind=DELIVERY, subject=subject, limit=limit)]


# --- the retraining trigger ---------------------------------------------------

def retraining_triggers(store: Store, run_ids: list[str]) -> list[dict]:
    """For runs just recorded: each new dataset version they wrote that feeds a watched model.

    The new version has no readers yet; the models it should retrain were built
    from earlier versions of the same dataset, so the walk starts from the
    dataset (all its versions) and keeps model versions that are approved or
    released (a facet in ``WATCH_FACETS``) and were not built from this very
    version (planning runs after the fact, so a model may have been released
    since).
    """
    out = []
    wrote = store.edges(run_ids, "downstream", ["WROTE"])
    for edge in wrote:
        version = store.nodes([edge.dst]).get(edge.dst)
        if version is None or version.kind != NodeKind.DATASET_VERSION:
            continue
        walk = store.traverse(version.entity, "downstream")
        consumed = {n.id for n in store.traverse(version.id, "downstream").nodes}  # trained on this very version
        candidates = [n.id for n in walk.nodes if n.kind == NodeKind.MODEL_VERSION and n.id not in consumed]
        watched = [m for m in candidates if any(f in store.facets(m) for f in WATCH_FACETS)]
        for model in watched:
            path = store.path(version.entity, model)
            out.append({"dataset": version.entity, "new_version": version.id, "written_by": edge.src,
                        "model": model, "path": path.nodes})
    return out


# --- delivery -------------------------------------------------------------------

EventSource = Callable[[LedgerEntry, Store], list[tuple[str, dict]]]
_SOURCES: dict[str, EventSource] = {}


def register_source(kind: str, source: EventSource) -> None:
    """Have ledger entries of ``kind`` raise webhook events: ``source`` returns (event, data) pairs."""
    _SOURCES[kind] = source


def _lineage_source(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    if not (entry.subject or "").startswith("run:"):
        return []
    return [("lineage.upstream_version", t) for t in retraining_triggers(store, [entry.subject])]


register_source(OPENLINEAGE_KIND, _lineage_source)


class Dispatcher:
    """Tails the ledger and delivers the webhook events its new entries raise, on background threads.

    Tailing the ledger (not the request path) means writes from the CLI, the
    server and the SDK all raise events, and ingestion never waits for a hook.
    It starts at the ledger head when the server starts.
    """

    def __init__(self, store_factory: Callable[[], Store], attempts: int = 5, backoff: float = 0.5,
                 timeout: float = 5.0, workers: int = 4, poll: float = 0.2):
        self.store_factory, self.attempts, self.backoff, self.timeout = store_factory, attempts, backoff, timeout
        self.poll = poll
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auditgraph-hook")
        self.planner = threading.Thread(target=self._tail, name="auditgraph-hook-planner", daemon=True)
        self._stopping = threading.Event()
        self._sent: dict[str, None] = {}  # (event, key) already delivered in this process, oldest first

    def start(self) -> "Dispatcher":
        load_plugins()
        self.planner.start()
        return self

    def stop(self, wait: bool = True) -> None:
        self._stopping.set()
        if wait and self.planner.is_alive():
            self.planner.join(timeout=10)
        self.pool.shutdown(wait=wait, cancel_futures=not wait)

    def _tail(self) -> None:
        store = self.store_factory()
        try:
            cursor = store.head().seq
            while not self._stopping.is_set():
                entries = list(store.entries(after_seq=cursor, limit=500))
                for entry in entries:
                    self._plan(store, entry)
                    cursor = entry.seq
                if not entries:
                    self._stopping.wait(self.poll)
        finally:
            store.close()

    def _plan(self, store: Store, entry: LedgerEntry) -> None:
        source = _SOURCES.get(entry.kind)
        if source is None:
            return
        try:
            events = source(entry, store)
        except Exception:
            log.exception("webhook planning failed for ledger entry %d", entry.seq)
            return
        for event, data in events:
            key = f"{event}:{canonical_json(data)}"
            if key in self._sent:
                continue  # e.g. the START and COMPLETE of one run name the same new version
            self._sent[key] = None
            if len(self._sent) > 100_000:
                self._sent.pop(next(iter(self._sent)))
            self._fan_out(store, event, data)

    def _fan_out(self, store: Store, event: str, data: dict) -> None:
        for hook in subscriptions(store):
            if event in hook["events"] and not self._stopping.is_set():
                self.pool.submit(self._deliver, hook, event, data)

    def _deliver(self, hook: dict, event: str, data: dict) -> None:
        import httpx

        delivery = uuid.uuid4().hex
        body = canonical_bytes({"event": event, "delivery": delivery, "hook": hook["hook_id"], "sent_at": _now(),
                                "data": data})
        secret, attempts, status, error = secret_for(hook["hook_id"]), 0, None, None
        while attempts < self.attempts and not self._stopping.is_set():
            attempts += 1
            headers = {"Content-Type": "application/json", "X-Auditgraph-Event": event,
                       "X-Auditgraph-Delivery": delivery, "X-Auditgraph-Signature": sign(secret, int(time.time()), body)}
            try:
                response = httpx.post(hook["url"], content=body, headers=headers, timeout=self.timeout)
                status, error = response.status_code, None
                if 200 <= status < 300:
                    break
            except httpx.HTTPError as e:
                status, error = None, type(e).__name__
            self._stopping.wait(self.backoff * 2 ** (attempts - 1))
        ok = status is not None and 200 <= status < 300
        self._record(hook, event, delivery, ok, attempts, status, error)

    def _record(self, hook, event, delivery, ok, attempts, status, error) -> None:
        store = self.store_factory()
        try:
            store.append(Pending(DELIVERY, {
                "hook_id": hook["hook_id"], "url": hook["url"], "event": event, "delivery": delivery,
                "status": "delivered" if ok else "failed", "attempts": attempts, "http_status": status,
                "error": error, "at": _now()}, "auditgraph:hooks", subject=f"hook:{hook['hook_id']}"))
        finally:
            store.close()
        log.info("webhook %s %s to %s after %d attempt(s)", event, "delivered" if ok else "failed", hook["url"], attempts)
