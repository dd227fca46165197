"""Optional dependencies: which extra brings which module, and the one error for a missing one.

``pip install auditgraph`` is the core (ledger, stores, ingest, queries, the HTTP server, rules and
HTML reports). The rest comes in extras declared in ``pyproject.toml``; ``MODULES`` lists the
top-level modules each one brings, and ``tests/test_packaging.py`` checks the two agree.

Invariants:

* A module that the core commands import never imports an extra's module at module level; the code
  that needs one calls ``require`` first, where it needs it, then imports as usual.
* A missing extra is ``MissingExtra`` (exit code 3, HTTP 503), whose message is the ``pip install``
  that brings it. A check that cannot run for want of an extra is not evaluated, never passed.
"""

from __future__ import annotations

from importlib import import_module

from lineage.errors import Unavailable

MODULES: dict[str, tuple[str, ...]] = {
    "neo4j": ("neo4j",),
    "explain": ("numpy", "pandas", "sklearn", "shap", "fairlearn", "skops", "scipy", "joblib"),
    "signing": ("cryptography", "securesystemslib", "in_toto_attestation", "google.protobuf"),
}


class MissingExtra(Unavailable):
    """What was asked needs an optional extra that is not installed; the message says what to install."""

    def __init__(self, extra: str, reason: str):
        self.extra = extra
        super().__init__(f'this needs the {extra!r} extra: pip install "auditgraph[{extra}]" ({reason})')


def require(extra: str, *modules: str) -> None:
    """Import ``modules`` (all of the extra's when none are named), or raise ``MissingExtra``.

    Example::

        require("explain", "numpy", "pandas")
        import numpy as np
    """
    if extra not in MODULES:
        raise ValueError(f"unknown extra {extra!r}; expected one of: {', '.join(MODULES)}")
    for name in modules or MODULES[extra]:
        try:
            import_module(name)
        except ImportError as e:  # not installed, or installed without what it needs in turn
            raise MissingExtra(extra, str(e)) from None
