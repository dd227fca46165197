"""Outgoing webhooks: subscriptions, signatures, retried delivery, and the retraining trigger.

* Subscriptions are ledger entries (``hook.subscribed`` / ``hook.unsubscribed``).
* A hook's signing secret is never stored: it is HMAC(server key, hook id). The
  server key comes from AUDITGRAPH_SECRET_KEY, else from a 0600 file
  (``$XDG_CONFIG_HOME/auditgraph/secret.key``) made on first use, so the CLI
  that creates a hook and the server that signs for it agree on one machine.
* Each delivery is a JSON POST with ``X-Auditgraph-Event``,
  ``X-Auditgraph-Delivery`` and ``X-Auditgraph-Signature: t=<unix time>,v1=<hex>``
  where v1 = HMAC-SHA256(secret, "<t>.<body>"). Receivers check it with
  ``verify_signature`` (or the same few lines in their language), which refuses
  timestamps older than the tolerance or ahead by more than the clock skew, and
  drop replays by remembering delivery ids for that window (``ReplayGuard``).
  Retries of one delivery carry the same id.
* Where a hook may point is ``lineage.hook_targets``' business: no credentials in
  the URL, no private addresses unless the operator allows them, checked when
  subscribing and before each attempt, and the connection goes to the address
  checked. Redirects are not followed.
* The server's dispatcher tails the ledger, so writes from the CLI, the server
  and the SDK all raise events; other packages add event sources with
  ``register_event_sources`` (``lineage.hookspecs``). Delivery runs on worker threads with retries and
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
import itertools
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from lineage import hook_targets
from lineage.canonical import canonical_bytes, canonical_json
from lineage.clock import utc_text
from lineage.errors import HookTargetError, Invalid, NotFound
from lineage.graph import Graph
from lineage.ids import NodeKind
from lineage.kinds import EntryKind, Payload
from lineage.ledger import LedgerEntry
from lineage.plugins import registry
from lineage.store import Store

log = logging.getLogger(__name__)

EVENTS = ("lineage.upstream_version", "governance.check_failed", "governance.release_decided")


class SubscribedPayload(Payload):
    hook_id: str
    url: str
    events: list[str]
    description: str = ""
    at: str


class UnsubscribedPayload(Payload):
    hook_id: str
    at: str


class DeliveryPayload(Payload):
    """The outcome of one delivery: delivered, or failed after its last attempt."""

    hook_id: str
    url: str
    event: str
    delivery: str
    status: Literal["delivered", "failed"]
    attempts: int
    http_status: int | None = None
    error: str | None = None
    at: str


HOOK_SUBSCRIBED = EntryKind("hook.subscribed", SubscribedPayload, "admin", lambda p: f"hook:{p.hook_id}")
HOOK_UNSUBSCRIBED = EntryKind("hook.unsubscribed", UnsubscribedPayload, "admin", lambda p: f"hook:{p.hook_id}")
HOOK_DELIVERY = EntryKind("hook.delivery", DeliveryPayload, "system", lambda p: f"hook:{p.hook_id}")
SUBSCRIBED, UNSUBSCRIBED, DELIVERY = HOOK_SUBSCRIBED.name, HOOK_UNSUBSCRIBED.name, HOOK_DELIVERY.name
TOLERANCE, MAX_SKEW = 300.0, 30.0  # seconds a signature stays valid; how far ahead a sender's clock may be
_SIGNATURE = re.compile(r"t=(\d{1,12}),v1=([0-9a-f]{64})")


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


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = TOLERANCE,
    now: float | None = None,
    skew: float = MAX_SKEW,
) -> bool:
    """True when ``header`` (``X-Auditgraph-Signature``) signs ``body`` with ``secret``, in time.

    In time: at most ``tolerance`` seconds old and at most ``skew`` seconds ahead of ``now``
    (clocks differ a little; a timestamp further ahead would stretch the window a captured
    request can be replayed in). The MAC is compared in constant time.

    A valid signature does not make a request new: within the window a captured request
    can be sent again. Receivers remember the ``delivery`` id of each request they
    processed (it is in the signed body, and repeated in the ``X-Auditgraph-Delivery``
    header) for ``tolerance + skew`` seconds and drop repeats; ``ReplayGuard`` does that.
    Retries of one delivery carry the same id, so a processed delivery is never processed twice.
    """
    match = _SIGNATURE.fullmatch(header) if isinstance(header, str) and isinstance(body, bytes) else None
    if match is None:
        return False
    timestamp, mac = int(match.group(1)), match.group(2)
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance or -age > skew:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), mac.encode())


class ReplayGuard:
    """Delivery ids seen in the last ``window`` seconds, for a receiver to drop replays.

    ``first_time(id)`` is True once per id within the window. Call it after
    ``verify_signature`` passes, with the ``delivery`` id from the signed body.
    Thread-safe; memory is bounded by the deliveries received in one window.
    """

    def __init__(self, window: float = TOLERANCE + MAX_SKEW):
        self.window, self._lock = window, threading.Lock()
        self._seen: dict[str, float] = {}  # delivery id -> when first seen, oldest first

    def first_time(self, delivery: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self.window:
                self._seen.pop(next(iter(self._seen)))
            if delivery in self._seen:
                return False
            self._seen[delivery] = now
            return True


# --- subscriptions ------------------------------------------------------------


def subscribe(
    store: Store,
    url: str,
    events: list[str],
    actor: str,
    description: str = "",
    *,
    allow_private: bool = False,
    resolve: hook_targets.Resolver = hook_targets.system_resolve,
) -> tuple[str, str]:
    """Add a subscription; return (hook id, signing secret).

    ``url`` is checked as ``lineage.hook_targets`` describes (``HookTargetError`` when refused);
    a host that does not resolve yet is accepted and checked at each delivery.
    """
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise Invalid(f"events must be some of {', '.join(EVENTS)}; got {', '.join(unknown) or 'none'}")
    try:
        hook_targets.check(url, allow_private, resolve)
    except OSError:
        log.warning("webhook host of %s does not resolve now; it is checked at each delivery", url)
    hook_id = uuid.uuid4().hex[:16]
    store.append(
        HOOK_SUBSCRIBED.pending(
            {
                "hook_id": hook_id,
                "url": url,
                "events": sorted(set(events)),
                "description": description,
                "at": utc_text(),
            },
            actor,
        )
    )
    return hook_id, secret_for(hook_id)


def unsubscribe(store: Store, hook_id: str, actor: str) -> None:
    if hook_id not in {h["hook_id"] for h in subscriptions(store)}:
        raise NotFound(f"no active webhook {hook_id!r}")
    store.append(HOOK_UNSUBSCRIBED.pending({"hook_id": hook_id, "at": utc_text()}, actor))


def subscriptions(store: Store) -> list[dict]:
    """Active subscriptions; a URL recorded with credentials (before they were refused) shows them masked.

    Fails closed: a subscription entry that does not validate delivers nothing, and any unsubscription
    entry about a hook (valid or not) ends it.
    """
    gone = {e.subject for e in store.entries(kind=UNSUBSCRIBED, limit=None)}
    return [
        {**r.value.model_dump(), "url": hook_targets.shown(r.value.url)}
        for r in HOOK_SUBSCRIBED.valid(store)
        if r.subject == f"hook:{r.value.hook_id}" and r.subject not in gone
    ]


def deliveries(store: Store, hook_id: str | None = None, limit: int = 100) -> list[dict]:
    subject = f"hook:{hook_id}" if hook_id else None
    return [r.value.model_dump() for r in itertools.islice(HOOK_DELIVERY.valid(store, subject), limit)]


# --- the retraining trigger ---------------------------------------------------


def watched_models(store: Store, models: list[str]) -> set[str]:
    """Which of these model versions a plugin's watcher (``register_watchers``) vouches for."""
    return set().union(*(w(store, models) for w in registry().watchers)) if models else set()


def retraining_triggers(store: Store, run_ids: list[str]) -> list[dict]:
    """For runs just recorded: each new dataset version they wrote that feeds a watched model.

    The new version has no readers yet; the models it should retrain were built
    from earlier versions of the same dataset, so the walk starts from the
    dataset (all its versions) and keeps model versions that a registered
    watcher vouches for (governance: approved or released, computed by its
    read models, never read off a facet) and that were not built from this
    very version (planning runs after the fact, so a model may have been
    released since).
    """
    out = []
    wrote = store.edges(run_ids, "downstream", ["WROTE"])
    for edge in wrote:
        version = store.nodes([edge.dst]).get(edge.dst)
        if version is None or version.kind != NodeKind.DATASET_VERSION or version.entity is None:
            continue
        walk = Graph(store).traverse(version.entity, "downstream")
        consumed = {n.id for n in Graph(store).traverse(version.id, "downstream").nodes}  # trained on this very version
        candidates = [n.id for n in walk.nodes if n.kind == NodeKind.MODEL_VERSION and n.id not in consumed]
        watched = sorted(watched_models(store, candidates))
        for model in watched:
            path = Graph(store).path(version.entity, model)
            out.append(
                {
                    "dataset": version.entity,
                    "new_version": version.id,
                    "written_by": edge.src,
                    "model": model,
                    "path": path.nodes,
                }
            )
    return out


# --- delivery -------------------------------------------------------------------

EventSource = Callable[[LedgerEntry, Store], list[tuple[str, dict]]]  # registered with register_event_sources


def lineage_source(entry: LedgerEntry, store: Store) -> list[tuple[str, dict]]:
    if entry.subject is None or not entry.subject.startswith("run:"):
        return []
    return [("lineage.upstream_version", t) for t in retraining_triggers(store, [entry.subject])]


class Dispatcher:
    """Tails the ledger and delivers the webhook events its new entries raise, on background threads.

    Tailing the ledger (not the request path) means writes from the CLI, the
    server and the SDK all raise events, and ingestion never waits for a hook.
    It starts at the ledger head: ``start`` returns once the head is read, so every entry
    appended after ``start`` returns raises its events.
    """

    def __init__(
        self,
        store_factory: Callable[[], Store],
        attempts: int = 5,
        backoff: float = 0.5,
        timeout: float = 5.0,
        workers: int = 4,
        poll: float = 0.2,
        allow_private: bool = False,
        resolve: hook_targets.Resolver = hook_targets.system_resolve,
    ):
        self.store_factory, self.attempts, self.backoff, self.timeout = store_factory, attempts, backoff, timeout
        self.poll, self.allow_private, self.resolve = poll, allow_private, resolve
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auditgraph-hook")
        self.planner = threading.Thread(target=self._tail, name="auditgraph-hook-planner", daemon=True)
        self._stopping = threading.Event()
        self._tailing = threading.Event()  # set once the starting point is read
        self._sent: dict[str, None] = {}  # (event, key) already delivered in this process, oldest first

    def start(self) -> Dispatcher:
        registry()  # loads the plugins now, not on the first entry: a clash fails the start
        self.planner.start()
        self._tailing.wait(timeout=30)
        return self

    def stop(self, wait: bool = True) -> None:
        self._stopping.set()
        if wait and self.planner.is_alive():
            self.planner.join(timeout=10)
        self.pool.shutdown(wait=wait, cancel_futures=not wait)

    def _tail(self) -> None:
        store = None
        try:
            store = self.store_factory()
            cursor = store.head().seq
            self._tailing.set()
            while not self._stopping.is_set():
                entries = list(store.entries(after_seq=cursor, limit=500))
                for entry in entries:
                    self._plan(store, entry)
                    cursor = entry.seq
                if not entries:
                    self._stopping.wait(self.poll)
        finally:
            self._tailing.set()  # also when the store failed to open or to read: start() must not wait on it
            if store is not None:
                store.close()

    def _plan(self, store: Store, entry: LedgerEntry) -> None:
        source = registry().sources.get(entry.kind)
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
                self.pool.submit(self._deliver_logged, hook, event, data)

    def _deliver_logged(self, hook: dict, event: str, data: dict) -> None:
        """A worker's failure is logged (one line), never lost in the pool's future."""
        try:
            self._deliver(hook, event, data)
        except Exception as e:  # noqa: BLE001  a bug or a store error must not vanish silently
            log.error(
                "webhook %s: delivery of %s failed inside auditgraph: %s: %s",
                hook.get("hook_id"),
                event,
                type(e).__name__,
                e,
            )

    def _deliver(self, hook: dict, event: str, data: dict) -> None:
        delivery = uuid.uuid4().hex
        body = canonical_bytes(
            {"event": event, "delivery": delivery, "hook": hook["hook_id"], "sent_at": utc_text(), "data": data}
        )
        secret, attempts, status, error = secret_for(hook["hook_id"]), 0, None, None
        while attempts < self.attempts and not self._stopping.is_set():
            headers = {
                "Content-Type": "application/json",
                "X-Auditgraph-Event": event,
                "X-Auditgraph-Delivery": delivery,
                "X-Auditgraph-Signature": sign(secret, int(time.time()), body),
            }
            try:
                status, error = self._attempt(hook["url"], headers, body)
            except HookTargetError as e:
                status, error = None, f"refused: {e}"
                break  # nothing was sent, and a refused target is not retried
            attempts += 1
            if status is not None and 200 <= status < 300:
                break
            self._stopping.wait(self.backoff * 2 ** (attempts - 1))
        ok = status is not None and 200 <= status < 300
        self._record(hook, event, delivery, ok, attempts, status, error)

    def _attempt(self, url: str, headers: dict, body: bytes) -> tuple[int | None, str | None]:
        """POST once to the address ``url`` is checked to resolve to now: (HTTP status, error)."""
        import httpx

        try:
            pinned, host, extensions = hook_targets.check(url, self.allow_private, self.resolve).request()
        except OSError:
            return None, "the host does not resolve"  # a failed attempt, retried
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.post(pinned, content=body, headers={**headers, **host}, extensions=extensions)
        except httpx.HTTPError as e:
            return None, type(e).__name__
        return response.status_code, None

    def _record(self, hook, event, delivery, ok, attempts, status, error) -> None:
        store = self.store_factory()
        try:
            store.append(
                HOOK_DELIVERY.pending(
                    {
                        "hook_id": hook["hook_id"],
                        "url": hook["url"],
                        "event": event,
                        "delivery": delivery,
                        "status": "delivered" if ok else "failed",
                        "attempts": attempts,
                        "http_status": status,
                        "error": error,
                        "at": utc_text(),
                    },
                    "auditgraph:hooks",
                )
            )
        finally:
            store.close()
        log.info(
            "webhook %s %s to %s after %d attempt(s)", event, "delivered" if ok else "failed", hook["url"], attempts
        )
