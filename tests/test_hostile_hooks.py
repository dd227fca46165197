"""Hostile webhook input: private targets, DNS rebinding, credentials in URLs, forged and replayed signatures."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from click.testing import CliRunner
from conftest import live_server, wait_until
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_hooks import Receiver, new_features_version, train_and_release

from lineage import hooks
from lineage.cli import cli
from lineage.errors import HookTargetError
from lineage.ledger import Pending
from lineage.server import auth
from lineage.server.app import ServerConfig
from lineage.store import open_store

EVENT = "lineage.upstream_version"
PUBLIC = "93.184.216.34"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("AUDITGRAPH_SECRET_KEY", "test-server-key")


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path}/hostile-hooks.db"


def resolver(*answers: str):
    """A DNS that answers each lookup with the next address (the last one forever): rebinding on demand."""
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [answers[min(len(calls), len(answers)) - 1]]

    resolve.calls = calls
    return resolve


def cli_run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


PRIVATE_URLS = [
    ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
    ("http://2130706433/hook", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("http://0x7f.1/hook", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ("http://017700000001/hook", "017700000001 resolves to 127.0.0.1, a loopback address"),
    ("http://[::1]/hook", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/hook", "is a loopback address (it carries 127.0.0.1)"),
    ("http://[2002:a00:1::]/hook", "is a private address (it carries 10.0.0.1)"),
    ("http://[64:ff9b::a9fe:a9fe]/hook", "is a link-local address (it carries 169.254.169.254)"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
    ("http://192.168.0.10/hook", "192.168.0.10 is a private address"),
    ("http://[fd00::5]/hook", "fd00::5 is a private address"),
    ("http://100.64.0.1/hook", "100.64.0.1 is not a public address"),
    ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
    ("http://[::]/hook", ":: is an unspecified address"),
    ("http://224.0.0.251/hook", "224.0.0.251 is a multicast address"),
    ("http://[ff02::1]/hook", "ff02::1 is a multicast address"),
    ("http://localhost:5000/hook", "names localhost"),
    ("http://LocalHost./hook", "names localhost"),
    ("http://api.localhost/hook", "names localhost"),
]


@pytest.mark.parametrize("url, reason", PRIVATE_URLS, ids=[u for u, _ in PRIVATE_URLS])
def test_a_webhook_url_on_a_private_address_is_refused_and_nothing_is_recorded(store_url, url, reason):
    with open_store(store_url) as store:
        before = store.head().seq
        with pytest.raises(HookTargetError) as refused:
            hooks.subscribe(store, url, [EVENT], "mallory")
        assert reason in str(refused.value) and url in str(refused.value)
        assert str(refused.value).endswith(
            "pass --allow-private-targets (allow_private=True) to send to private networks"
        )
        assert store.head().seq == before and hooks.subscriptions(store) == []


def test_a_host_name_that_resolves_to_a_private_address_is_refused_when_subscribing(store_url):
    with open_store(store_url) as store:
        with pytest.raises(HookTargetError, match=r"hooks\.internal resolves to 10\.0\.0\.7, a private address"):
            hooks.subscribe(store, "https://hooks.internal/x", [EVENT], "mallory", resolve=resolver("10.0.0.7"))
        two = lambda host, port: [PUBLIC, "127.0.0.1"]  # noqa: E731  one private answer among public ones is enough
        with pytest.raises(HookTargetError, match="resolves to 127.0.0.1, a loopback address"):
            hooks.subscribe(store, "https://mixed.example/x", [EVENT], "mallory", resolve=two)
        assert hooks.subscriptions(store) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://ci.example.com/x",
        "file:///etc/passwd",
        "gopher://ci.example.com/x",
        "javascript:alert(1)",
        "http:///x",
        "http://h:0/x",
        "http://h/a\nb",
        "http://%31%32%37.0.0.1/",
        "https://" + "a" * 3000 + ".example/",
    ],
)
def test_a_webhook_url_that_is_not_plain_http_or_https_is_refused(store_url, url):
    with open_store(store_url) as store:
        with pytest.raises(HookTargetError, match="^webhook url "):
            hooks.subscribe(store, url, [EVENT], "mallory")
        assert hooks.subscriptions(store) == []


def test_the_cli_refuses_a_private_webhook_url_in_one_line_and_accepts_it_with_the_flag(store_url):
    refused = cli_run("hooks", "add", "http://2130706433/hook", "--event", EVENT, "--store", store_url)
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        "Error: webhook url 'http://2130706433/hook': 2130706433 resolves to 127.0.0.1, a loopback "
        "address; pass --allow-private-targets (allow_private=True) to send to private networks\n"
    )
    allowed = cli_run(
        "hooks", "add", "http://2130706433/hook", "--event", EVENT, "--allow-private-targets", "--store", store_url
    )
    assert allowed.exit_code == 0 and len(allowed.stdout.split()) == 2
    assert [h["url"] for h in json.loads(cli_run("hooks", "list", "--json", "--store", store_url).stdout)] == [
        "http://2130706433/hook"
    ]


def test_serve_and_hooks_add_document_allow_private_targets_with_an_example():
    serve_help = " ".join(cli_run("serve", "--help").stdout.split())  # unwrapped
    add_help = " ".join(cli_run("hooks", "add", "--help").stdout.split())
    assert "--allow-private-targets" in serve_help and "auditgraph serve --allow-private-targets" in serve_help
    assert "--allow-private-targets" in add_help and "credentials" in add_help
    assert (
        "auditgraph hooks add http://10.0.0.5:8080/hook --event governance.check_failed --allow-private-targets"
        in add_help
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:s3cr3t-pw@hooks.example.com/x",
        "https://s3cr3t-pw@hooks.example.com/x",
        "https://alice:s3cr/3t-pw@hooks.example.com/x",
        "http://alice:s3cr3t-pw@10.0.0.1/x",
    ],
)
def test_credentials_in_a_webhook_url_are_refused_and_never_stored_or_printed(store_url, url, caplog):
    caplog.set_level(logging.DEBUG)
    result = cli_run("hooks", "add", url, "--event", EVENT, "--allow-private-targets", "--store", store_url)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert "carries credentials" in result.stderr and "X-Auditgraph-Signature" in result.stderr
    assert "***@" in result.stderr
    with open_store(store_url) as store:
        entries = json.dumps([e.model_dump() for e in store.entries(limit=None)])
    for secret in ("s3cr3t", "s3cr/3t", "alice"):
        assert secret not in result.stdout + result.stderr + entries + caplog.text


@pytest.mark.slow
def test_a_hook_recorded_with_credentials_is_listed_masked_and_never_sent_them(store_url, caplog):
    """A ledger written before credentials were refused keeps its entry; nothing shows or sends them."""
    caplog.set_level(logging.DEBUG)
    with open_store(store_url) as store:
        _, token = auth.create_key(store, "pipeline", ["ingest"], "test")
    receiver = Receiver()
    legacy = receiver.url.replace("http://", "http://alice:s3cr3t-pw@")
    with open_store(store_url) as store:
        store.append(
            Pending(
                hooks.SUBSCRIBED,
                {
                    "hook_id": "00legacy00hook00",
                    "url": legacy,
                    "events": [EVENT],
                    "description": "",
                    "at": "2024-01-01T00:00:00.000000Z",
                },
                "old",
                subject="hook:00legacy00hook00",
            )
        )
    listed = (
        cli_run("hooks", "list", "--store", store_url).stdout
        + cli_run("hooks", "list", "--json", "--store", store_url).stdout
    )
    assert "http://***@127.0.0.1:" in listed and "s3cr3t" not in listed
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(ServerConfig(store_url=store_url, hook_backoff=0.01, allow_private_targets=True)) as server:
        train_and_release(server, headers, store_url)
        new_features_version(server, headers)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, "00legacy00hook00"))
            [record] = hooks.deliveries(store, "00legacy00hook00")
    assert (record["status"], record["attempts"], receiver.requests) == ("failed", 0, [])
    assert (
        record["error"].startswith("refused: webhook url 'http://***@127.0.0.1:")
        and "carries credentials" in record["error"]
    )
    shown = cli_run("hooks", "deliveries", "--json", "--store", store_url).stdout
    assert "s3cr3t" not in json.dumps(record) + shown + caplog.text
    receiver.close()


def start_dispatcher(store_url: str, **kwargs) -> hooks.Dispatcher:
    return hooks.Dispatcher(lambda: open_store(store_url), backoff=0.01, attempts=2, **kwargs).start()


def ingest_a_trigger(store_url: str) -> None:
    """A released model and then a new version of its training data, through the real server."""
    with open_store(store_url) as store:
        _, token = auth.create_key(store, "pipeline", ["ingest"], "test")
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(ServerConfig(store_url=store_url, webhooks=False)) as server:
        train_and_release(server, headers, store_url)
        new_features_version(server, headers)


@pytest.mark.slow
def test_a_host_that_rebinds_to_loopback_after_subscribing_is_not_sent_to(store_url):
    receiver = Receiver()
    port = receiver.server.server_address[1]
    dns = resolver(PUBLIC, "127.0.0.1")  # public when subscribed, loopback from the first delivery on
    with open_store(store_url) as store:
        hook_id, _ = hooks.subscribe(store, f"http://rebind.example:{port}/hook", [EVENT], "mallory", resolve=dns)
    dispatcher = start_dispatcher(store_url, resolve=dns)
    try:
        ingest_a_trigger(store_url)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [record] = hooks.deliveries(store, hook_id)
    finally:
        dispatcher.stop()
    assert (record["status"], record["attempts"], record["http_status"], receiver.requests) == ("failed", 0, None, [])
    assert record["error"] == (
        f"refused: webhook url 'http://rebind.example:{port}/hook': rebind.example resolves to "
        "127.0.0.1, a loopback address; pass --allow-private-targets (allow_private=True) to send "
        "to private networks"
    )
    receiver.close()


@pytest.mark.slow
def test_a_delivery_connects_to_the_address_that_was_checked_and_names_the_host(store_url):
    """The name resolves only through the checker's resolver: the connection cannot have looked it up again."""
    receiver = Receiver()
    port = receiver.server.server_address[1]
    dns = resolver("127.0.0.1")
    with open_store(store_url) as store:
        hook_id, secret = hooks.subscribe(
            store, f"http://receiver.test:{port}/hook", [EVENT], "ops", allow_private=True, resolve=dns
        )
    dispatcher = start_dispatcher(store_url, resolve=dns, allow_private=True)
    try:
        ingest_a_trigger(store_url)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [record] = hooks.deliveries(store, hook_id)
    finally:
        dispatcher.stop()
    assert (record["status"], record["attempts"], record["http_status"]) == ("delivered", 1, 204)
    [(head, body)] = receiver.requests
    assert head["Host"] == f"receiver.test:{port}" and hooks.verify_signature(
        secret, head["X-Auditgraph-Signature"], body
    )
    assert dns.calls == ["receiver.test", "receiver.test"]  # once when subscribing, once for the one attempt
    receiver.close()


# --- signatures: past, future, skew, replay -----------------------------------------

BODY = b'{"delivery":"d1","event":"governance.check_failed"}'
NOW = 1_700_000_000


def test_a_signature_is_valid_only_from_tolerance_seconds_ago_to_skew_seconds_ahead():
    offsets = [
        0,
        -299,
        -301,
        -3600,  # the past: up to the tolerance (300 s)
        25,
        31,
        120,
        86_400 * 365,
    ]  # the future: only the clock skew (30 s)
    valid = [hooks.verify_signature("s", hooks.sign("s", NOW + offset, BODY), BODY, now=NOW) for offset in offsets]
    assert dict(zip(offsets, valid)) == {
        0: True,
        -299: True,
        -301: False,
        -3600: False,
        25: True,
        31: False,
        120: False,
        86_400 * 365: False,
    }


def test_tolerance_and_skew_can_be_set_by_the_receiver():
    assert hooks.verify_signature("s", hooks.sign("s", NOW - 600, BODY), BODY, tolerance=900, now=NOW)
    assert not hooks.verify_signature("s", hooks.sign("s", NOW + 60, BODY), BODY, now=NOW)
    assert hooks.verify_signature("s", hooks.sign("s", NOW + 60, BODY), BODY, now=NOW, skew=90)
    assert hooks.verify_signature("s", hooks.sign("s", 0, BODY), BODY, now=0)  # now=0 is a time, not "now"


def test_a_malformed_signature_header_is_false_never_an_exception():
    headers = [
        None,
        b"t=1700000000,v1=00",
        "",
        "t=1700000000",
        "v1=" + "0" * 64,
        "t=1700000000,v1=é",
        "t=١٧٠٠٠٠٠٠٠٠,v1=" + "0" * 64,
        "t=1700000000,v1=" + "0" * 64 + ",t=1",
        "t=" + "9" * 5000 + ",v1=" + "0" * 64,
        "t= 1700000000,v1=" + "0" * 64,
    ]
    assert [hooks.verify_signature("s", header, BODY, now=NOW) for header in headers] == [False] * len(headers)


class CarefulReceiver:
    """A receiver written from the README: verify the signature, then drop delivery ids it has seen."""

    def __init__(self, secret: str):
        self.guard, self.processed = hooks.ReplayGuard(), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not hooks.verify_signature(secret, self.headers.get("X-Auditgraph-Signature"), body):
                    code = 401
                elif not receiver.guard.first_time(json.loads(body)["delivery"]):
                    code = 409
                else:
                    receiver.processed.append(json.loads(body)["delivery"])
                    code = 204
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.slow
def test_a_replayed_delivery_is_dropped_by_a_receiver_that_remembers_delivery_ids(store_url):
    secret = hooks.secret_for("h1")
    receiver = CarefulReceiver(secret)
    body = json.dumps({"delivery": "d-42", "event": EVENT, "data": {}}).encode()
    captured = {"X-Auditgraph-Delivery": "d-42", "X-Auditgraph-Signature": hooks.sign(secret, int(time.time()), body)}
    assert httpx.post(receiver.url, content=body, headers=captured).status_code == 204
    assert httpx.post(receiver.url, content=body, headers=captured).status_code == 409  # the same request again
    relabelled = {**captured, "X-Auditgraph-Delivery": "d-43"}  # the header is not signed; the body's id is
    assert httpx.post(receiver.url, content=body, headers=relabelled).status_code == 409
    old = {**captured, "X-Auditgraph-Signature": hooks.sign(secret, int(time.time()) - 400, body)}
    assert httpx.post(receiver.url, content=body, headers=old).status_code == 401
    assert receiver.processed == ["d-42"]
    receiver.server.shutdown()


def test_the_replay_guard_forgets_ids_after_its_window():
    guard = hooks.ReplayGuard(window=330)
    assert guard.first_time("d1", now=NOW) and not guard.first_time("d1", now=NOW + 329)
    assert guard.first_time("d1", now=NOW + 700)  # by then its signature is too old to pass verify_signature
    assert hooks.ReplayGuard().window == hooks.TOLERANCE + hooks.MAX_SKEW


def self_signed(tmp_path, name: str) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.mark.slow
def test_an_https_delivery_to_the_pinned_address_still_names_the_host_in_tls(store_url, tmp_path):
    """SNI (and so the certificate check) uses the hook's name, not the address it was pinned to."""
    context, seen = self_signed(tmp_path, "receiver.test"), []
    context.sni_callback = lambda sock, server_name, ctx: seen.append(server_name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def handshakes():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                context.wrap_socket(conn, server_side=True).close()
            conn.close()

    threading.Thread(target=handshakes, daemon=True).start()
    dns = resolver("127.0.0.1")
    with open_store(store_url) as store:
        hook_id, _ = hooks.subscribe(
            store, f"https://receiver.test:{port}/hook", [EVENT], "ops", allow_private=True, resolve=dns
        )
    dispatcher = start_dispatcher(store_url, resolve=dns, allow_private=True)
    try:
        ingest_a_trigger(store_url)
        with open_store(store_url) as store:
            wait_until(lambda: hooks.deliveries(store, hook_id))
            [record] = hooks.deliveries(store, hook_id)
    finally:
        dispatcher.stop()
        listener.close()
    assert seen == ["receiver.test", "receiver.test"]  # both attempts
    assert (record["status"], record["attempts"], record["error"]) == (
        "failed",
        2,
        "ConnectError",
    )  # self-signed: refused


def test_a_failure_inside_a_delivery_worker_is_logged_not_lost(caplog):
    def broken_store():
        raise RuntimeError("the disk is gone")

    dispatcher = hooks.Dispatcher(broken_store, attempts=1, backoff=0, timeout=1, allow_private=True)
    hook = {"hook_id": "h1", "url": "http://127.0.0.1:9/hook", "events": ["lineage.upstream_version"]}
    with caplog.at_level("ERROR", logger="lineage.hooks"):
        dispatcher._deliver_logged(hook, "lineage.upstream_version", {})
    assert (
        "webhook h1: delivery of lineage.upstream_version failed inside auditgraph: RuntimeError: the disk is gone"
        in caplog.text
    )
