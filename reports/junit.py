"""A gate result as JUnit XML, for CI systems that show test reports (the ``junit`` report format).

Used for a report's ``gate.junit.xml`` and, through the report format registry,
by ``governance gate --junit`` (governance does not import reports).
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from governance.gate import GateResult

# XML 1.0 cannot hold these even as character references: C0 controls but tab and line
# breaks, lone surrogates, U+FFFE and U+FFFF. They become U+FFFD so every JUnit file parses.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text))


def _xml_attr(text: str) -> str:
    return quoteattr(_NOT_XML.sub("\ufffd", text))


def junit(result: GateResult) -> str:
    """JUnit XML: one test case per rule. Blocking results (failed or not evaluated) are failures; a
    warning, a warn rule that was not evaluated and a rule with nothing to check are skipped with a
    note; only a pass shows as a passed test.

    Every name and message is text from rule files and the store: it is escaped, and characters
    XML cannot hold are replaced, so the file always parses.
    """
    failures = sum(r.blocking for r in result.results)
    skipped = sum(not r.blocking and r.status != "pass" for r in result.results)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name={_xml_attr("auditgraph gate " + result.model)} tests="{len(result.results)}" '
        f'failures="{failures}" errors="0" skipped="{skipped}" '
        f"timestamp={_xml_attr(result.evaluated_at)}>",
    ]
    for r in result.results:
        detail = json.dumps(
            {"observed": r.observed, "threshold": r.threshold, "evidence": r.evidence}, sort_keys=True, default=str
        )
        lines.append(f"  <testcase classname={_xml_attr('auditgraph.' + r.check)} name={_xml_attr(r.rule)}>")
        if r.blocking:
            lines.append(
                f'    <failure message={_xml_attr(r.reason or r.status)} type="{r.status}">{_xml_text(detail)}</failure>'
            )
        elif r.status != "pass":  # a warning, a warn rule not evaluated, a rule with nothing to check: never a pass
            label = {"warn": "warning", "not_evaluated": "not evaluated", "not_applicable": "not applicable"}[r.status]
            lines.append(f"    <skipped message={_xml_attr(label + ': ' + r.reason)}/>")
        lines.append(f"    <system-out>{_xml_text(r.title + ': ' + r.reason)}</system-out>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


def from_bundle(bundle: dict[str, Any]) -> str:
    """The JUnit XML of a report bundle's gate run (a bundle with no gate run reads as blocked, no rules)."""
    gate = bundle["gate"]
    if gate is None:
        return junit(
            GateResult(
                model=bundle["model"]["id"], outcome="blocked", evaluated_at="", policy=[], policy_digest="", results=[]
            )
        )
    return junit(
        GateResult(
            model=bundle["model"]["id"],
            outcome=gate["outcome"],
            evaluated_at=gate["evaluated_at"],
            policy=gate["policy"],
            policy_digest=gate["policy_digest"],
            results=gate["rules"],
            seq=gate["seq"],
        )
    )
