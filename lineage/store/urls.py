"""Store URLs: credentials taken out first, and the one way a URL is shown.

Invariants:

* ``split_credentials`` never fails: it only cuts text, so credentials are out of
  the URL before anything that can raise (host and port parsing, the driver).
  The userinfo is everything between ``://`` and the LAST ``@`` (generated
  passwords hold ``/ # ? @ :``, which a standard URL parser reads as the start
  of the path, fragment or query, or as the host). The password is taken
  literally: no percent-decoding, so nothing needs escaping.
* ``redact`` is the only form of a store URL that reaches a message, a log
  line, a ``repr`` or an HTTP answer; it never fails either.
"""

from __future__ import annotations

from typing import NamedTuple

MASK = "***"


class Credentials(NamedTuple):
    """A store URL with its userinfo removed, and what the userinfo held."""

    bare: str  # scheme://host[:port][/path][?query], no userinfo
    user: str | None
    password: str | None


def split_credentials(url: str) -> Credentials:
    """Cut ``scheme://user:password@rest`` into (``scheme://rest``, user, password); never raises."""
    scheme, sep, rest = url.partition("://")
    if not sep or rest.startswith("/"):  # sqlite:///path: no authority, so no userinfo
        return Credentials(url, None, None)
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return Credentials(url, None, None)
    user, colon, password = userinfo.partition(":")
    return Credentials(f"{scheme}://{host}", user or None, password if colon else None)


def redact(url: str) -> str:
    """The url without its password (and without any userinfo when it is not a URL), for messages and logs."""
    if not isinstance(url, str):
        return MASK
    if "://" not in url:
        head, at, host = url.rpartition("@")
        if not at:
            return url
        scheme, colon, _ = head.partition(":")
        return f"{scheme}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    bare, user, password = split_credentials(url)
    if user is None and password is None:
        return url
    scheme, _, host = bare.partition("://")
    return f"{scheme}://{user or ''}:{MASK}@{host}" if password is not None else f"{scheme}://{user}@{host}"
