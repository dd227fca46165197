"""Where a webhook may be sent.

Invariants, checked when a hook is subscribed and again before every delivery attempt:

* Only ``http://`` and ``https://`` URLs with a host, a port in 1-65535, no whitespace or
  control characters, at most ``MAX_URL_LENGTH`` characters.
* A URL never carries credentials (``https://user:pass@host/``): it is refused, and no
  message repeats them. Receivers authenticate deliveries by their signature.
* Every address the host resolves to must be public: loopback, private, link-local,
  unspecified, multicast, reserved and shared (CGNAT) addresses are refused, in IPv4 and
  IPv6, including IPv4 addresses carried inside IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo,
  NAT64). One refused address refuses the host. ``localhost`` and ``*.localhost`` are refused
  by name. Integer, octal and hex hosts (``http://2130706433/``) go through the system
  resolver like names, so they are checked as the address they mean.
* The address checked is the address connected to: a delivery goes to ``Target.address``
  with the original name in ``Host`` and in TLS SNI (so certificates are still checked against
  the name), and DNS cannot answer differently between the check and the connection
  (rebinding).
* ``allow_private`` (``--allow-private-targets``) lifts only the address rule.

A host that does not resolve when it is subscribed is accepted; it is resolved and checked
at each delivery, where not resolving is a failed attempt.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lineage.errors import HookTargetError

MAX_URL_LENGTH = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
_USERINFO = re.compile(r"^[^?#]*@")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALLOW_HINT = "pass --allow-private-targets (allow_private=True) to send to private networks"


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (raises ``OSError`` when none)."""
    found = (info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    # An IP address is a string; a Python built without IPv6 gives an IPv6 result as (int, bytes), not usable here.
    return [address for address in found if isinstance(address, str)]


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the address its request must go to."""

    url: httpx.URL
    address: Address

    def request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL naming the pinned address, extra headers, httpx extensions) for one attempt."""
        pinned = str(self.url.copy_with(host=str(self.address)))
        extensions = {}
        if self.url.scheme == "https" and not _literal(self.url.host):
            extensions["sni_hostname"] = self.url.host
        return pinned, {"Host": self.url.netloc.decode("ascii")}, extensions


def shown(url: str) -> str:
    """``url`` as it may appear in a message, a log line or ``hooks list``: credentials masked.

    Masks up to the last ``@`` before any query, so a password holding ``/`` is masked too.
    """
    if not (at := _USERINFO.match(url)):
        return url
    scheme = _SCHEME.match(url)
    return (scheme.group(0) if scheme else "") + "***@" + url[at.end() :]


def parse(url: str) -> httpx.URL:
    """The URL if its form is acceptable (see the module docstring); else ``HookTargetError``."""
    if not isinstance(url, str) or not url:
        raise HookTargetError("webhook url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise HookTargetError(f"webhook url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise HookTargetError("webhook url contains whitespace or control characters")
    if _USERINFO.match(url):  # also 'user:pa/ss@host', which parses as host 'user' with '/ss@host' as the path
        raise HookTargetError(
            f"webhook url {shown(url)!r} carries credentials (or an '@' before its query); "
            "they are not stored or sent: remove them and have the receiver check the "
            "X-Auditgraph-Signature made with the hook's secret"
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as e:
        raise HookTargetError(f"webhook url {url!r} is not a valid URL: {e}") from None
    if parsed.scheme not in ("http", "https"):
        raise HookTargetError(f"webhook url must start with http:// or https://, got {url!r}")
    if not parsed.host:
        raise HookTargetError(f"webhook url {url!r} has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise HookTargetError(f"webhook url {url!r} has port {parsed.port}, outside 1-65535")
    host = parsed.raw_host.decode("ascii")
    if not _literal(parsed.host) and not _HOSTNAME.fullmatch(host):
        raise HookTargetError(f"webhook url {url!r} has an invalid host name {host!r}")
    return parsed


def check(url: str, allow_private: bool = False, resolve: Resolver = system_resolve) -> Target:
    """Parse ``url``, resolve its host once and check every address; the Target pins the first.

    Raises ``HookTargetError`` when refused and ``OSError`` when the host does not resolve.
    """
    parsed = parse(url)
    name = parsed.raw_host.decode("ascii").rstrip(".").lower()
    if not allow_private and (name == "localhost" or name.endswith(".localhost")):
        raise HookTargetError(f"webhook url {url!r} names localhost; {_ALLOW_HINT}")
    literal = _literal(parsed.host)
    found = (
        [literal]
        if literal
        else [
            ipaddress.ip_address(a.split("%")[0])
            for a in resolve(name, parsed.port or (443 if parsed.scheme == "https" else 80))
        ]
    )
    if not found:
        raise OSError(f"{name} has no address")
    for address in found:
        reason = refused_because(address)
        if reason and not allow_private:
            what = f"{address} is" if literal else f"{name} resolves to {address},"
            raise HookTargetError(f"webhook url {url!r}: {what} {reason}; {_ALLOW_HINT}")
    return Target(parsed, found[0])


def refused_because(address: Address) -> str | None:
    """Why a webhook may not go to ``address`` (or to an IPv4 address it carries), or None."""
    for inner in _carried(address):
        if reason := _refused_because(inner):
            return f"{reason} (it carries {inner})"
    return _refused_because(address)


def _refused_because(address: Address) -> str | None:
    for reason, flag in (
        ("a loopback address", address.is_loopback),
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
    ):
        if flag:
            return reason
    return None if address.is_global else "not a public address"


def _carried(address: Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address stands for: mapped, 6to4, Teredo, NAT64."""
    if address.version == 4:
        return []
    carried = [a for a in (address.ipv4_mapped, address.sixtofour) if a]
    if address.teredo:
        carried.extend(address.teredo)
    if address in _NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return carried


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None
