"""PDF through headless Chromium (Debian's ``chromium``), for auditors who file paper."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from reports.errors import ChromiumError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-pdf-header-footer",
)


def find_chromium() -> str | None:
    explicit = os.environ.get("AUDITGRAPH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def html_to_pdf(html: Path, out: Path, timeout: float = 120) -> Path:
    browser = find_chromium()
    if browser is None:
        raise ChromiumError(
            "PDF needs headless Chromium, and none was found: install it (Debian: apt-get install "
            "chromium) or set AUDITGRAPH_CHROMIUM; the HTML report prints to PDF from any browser too"
        )
    with tempfile.TemporaryDirectory(prefix="auditgraph-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}", html.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ChromiumError(f"Chromium did not finish the PDF in {timeout:.0f}s") from None
    if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise ChromiumError(
            f"Chromium could not print {html.name} to PDF (exit {done.returncode}): "
            f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'no output'}"
        )
    return out
