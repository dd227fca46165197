"""Rendering a bundle: one jinja2 environment for every format.

The environment escapes by default, fails on an undefined name
(``StrictUndefined``), registers its filters by name, and looks for templates
first in a user directory (``--templates DIR``), so a team can override
``report.html.j2`` or ``model_card.md.j2`` by name, then in the package.
Everything rendered comes from the bundle: the same bundle renders to the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from governance.gate import GateResult, junit
from reports import svg

TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2", "card": "model_card.md.j2"}
FILENAMES = {"html": "report.html", "md": "report.md", "card": "model_card.md", "json": "bundle.json",
             "junit": "gate.junit.xml", "pdf": "report.pdf"}


def environment(user_templates: Path | None = None) -> Environment:
    loaders = ([FileSystemLoader(str(user_templates))] if user_templates else []) + [PackageLoader("reports", "templates")]
    env = Environment(loader=ChoiceLoader(loaders), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update({
        "pct": lambda v: "–" if v is None else f"{v * 100:.1f}%",
        "num": lambda v, d=3: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v)),
        "compact": lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False),
        "status_label": lambda s: {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "not_evaluated": "NOT EVALUATED"}.get(s, s),
        "lineage_svg": svg.lineage_graph,
        "importance_svg": svg.importance_chart,
        "fairness_svg": svg.fairness_chart,
        "md_cell": lambda v: str(v).replace("|", "\\|").replace("\n", " "),
    })
    return env


def bundle_json(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(bundle: dict[str, Any], fmt: str, user_templates: Path | None = None) -> str:
    if fmt == "json":
        return bundle_json(bundle)
    if fmt == "junit":
        gate = bundle["gate"]
        if gate is None:
            return junit(GateResult(model=bundle["model"]["id"], outcome="blocked", evaluated_at="", policy=[],
                                    policy_digest="", results=[]))
        return junit(GateResult(model=bundle["model"]["id"], outcome=gate["outcome"], evaluated_at=gate["evaluated_at"],
                                policy=gate["policy"], policy_digest=gate["policy_digest"], results=gate["rules"], seq=gate["seq"]))
    context = {"b": bundle, "blocking": [r for r in (bundle["gate"] or {}).get("rules", []) if r["blocking"]]}
    return environment(user_templates).get_template(TEMPLATES[fmt]).render(**context)
