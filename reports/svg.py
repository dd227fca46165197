"""Inline SVG for reports: the lineage graph (left to right), SHAP importance, fairness bars.

Invariants: every value from the bundle that reaches the SVG goes through one of two doors,
``_text`` (any value, shown as text: ``html.escape``, safe in element text and quoted attributes;
the same escaping as before, so reports issued earlier still verify byte for byte) or ``_num`` (a finite real number, else ``ValueError`` naming the field: a bundle that
puts text where a chart needs a number fails to render, it is never written into the markup).
Only then is the output marked safe for the templates. Layout is a pure function of the bundle,
so renderings are byte-identical.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from markupsafe import Markup

COLOURS = {
    "DatasetVersion": "#d7e8f7",
    "ModelVersion": "#f9e0b8",
    "Run": "#e4e4e4",
    "CodeVersion": "#dff0d8",
    "Dataset": "#d7e8f7",
    "Model": "#f9e0b8",
}


def _text(value: Any, limit: int | None = None) -> Markup:
    """``value`` as escaped text, shortened from the left to ``limit`` characters (the end of an id says most)."""
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = "…" + text[-(limit - 1) :]
    return Markup(escape(text))


def _num(value: Any, what: str) -> float:
    """A finite real number from the bundle; anything else is a ``ValueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {str(value)[:80]!r}")
    return float(value)


def lineage_graph(graph: dict[str, Any]) -> Markup:
    nodes = graph["nodes"]
    if not nodes:
        return Markup('<p class="muted">No lineage recorded.</p>')
    distance = {str(n["id"]): int(_num(n["distance"], f"lineage node {str(n['id'])[:80]!r}: distance")) for n in nodes}
    far = max(distance.values())
    columns: dict[int, list[dict]] = {}
    for n in sorted(nodes, key=lambda n: str(n["id"])):
        columns.setdefault(far - distance[str(n["id"])], []).append(n)
    width, height, gap_x, gap_y = 210, 34, 40, 12
    pos = {
        str(n["id"]): (col * (width + gap_x) + 10, row * (height + gap_y) + 10)
        for col, items in columns.items()
        for row, n in enumerate(items)
    }
    total_w = (far + 1) * (width + gap_x) + 10
    total_h = max(len(v) for v in columns.values()) * (height + gap_y) + 10
    parts = [
        f'<div class="graph"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total_w} {total_h}" '
        f'width="{total_w}" height="{total_h}" role="img" aria-label="Lineage graph, data flowing left to right">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>',
    ]
    for e in graph["edges"]:
        src, dst = str(e["src"]), str(e["dst"])
        if src in pos and dst in pos:
            (x1, y1), (x2, y2) = pos[src], pos[dst]
            parts.append(
                f'<line x1="{x1 + width}" y1="{y1 + height / 2}" x2="{x2}" y2="{y2 + height / 2}" '
                f'stroke="#999" stroke-width="1.2" marker-end="url(#arrow)"><title>{_text(e["type"])}</title></line>'
            )
    for n in nodes:
        x, y = pos[str(n["id"])]
        fill = COLOURS.get(str(n["kind"]), "#eee")
        parts.append(
            f'<g><title>{_text(n["id"])}</title><rect x="{x}" y="{y}" width="{width}" height="{height}" rx="5" '
            f'fill="{fill}" stroke="#888"/><text x="{x + 6}" y="{y + 14}" font-size="9" fill="#555">'
            f'{_text(n["kind"])}</text><text x="{x + 6}" y="{y + 27}" font-size="10">{_text(n["id"], 36)}</text></g>'
        )
    parts.append("</svg></div>")
    return Markup("".join(parts))


def importance_chart(importance: list[dict[str, Any]], top: int = 15) -> Markup:
    items = [
        (i["feature"], _num(i["share"], f"importance of {str(i['feature'])[:80]!r}")) for i in importance[: int(top)]
    ]
    if not items:
        return Markup("")
    bar_w, row_h, label_w = 360, 20, 170
    biggest = max(share for _, share in items) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 70} {len(items) * row_h + 10}" '
        f'width="100%" role="img" aria-label="Mean absolute SHAP value per feature">'
    ]
    for k, (feature, share) in enumerate(items):
        y = k * row_h + 5
        w = bar_w * share / biggest
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">{_text(feature, 28)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="#4a7fb5"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="10">{share * 100:.1f}%</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _bar(g: dict[str, Any], metric: str) -> tuple[float, list[float] | None, float]:
    """A group's rate, its bootstrap interval (None if it has none) and the interval's top (0 if none)."""
    where = f"fairness group {str(g['group'])[:80]!r}: {metric}"
    ci = (g.get("ci", {}) or {}).get(metric)
    top = _num((ci or [0, 0])[1] or 0, where + " interval")
    if not ci or ci[0] is None:
        return _num(g[metric], where), None, top
    return _num(g[metric], where), [_num(ci[0], where + " interval"), _num(ci[1], where + " interval")], top


def fairness_chart(assessment: dict[str, Any], metric: str = "selection_rate") -> Markup:
    groups = [(g, *_bar(g, metric)) for g in assessment["groups"] if g.get(metric) is not None]
    if not groups:
        return Markup("")
    bar_w, row_h, label_w = 320, 22, 200
    counted = [rate for g, rate, _, _ in groups if not g["too_small"]]
    top_rate = max(counted) if counted else 1
    scale = bar_w / max(1e-9, max(max(rate for _, rate, _, _ in groups), max(top for _, _, _, top in groups)))
    height = len(groups) * row_h + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 90} {height}" width="100%" '
        f'role="img" aria-label="{_text(metric)} per group">'
    ]
    for k, (g, rate, ci, _) in enumerate(groups):
        y = k * row_h + 4
        w = rate * scale
        colour = "#bbb" if g["too_small"] else "#5b9a68"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_text(g["group"], 30)}'
            f' (n={_text(g["n"])})</text><rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{colour}"/><text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="10">{rate:.3f}</text>'
        )
        if ci:
            parts.append(
                f'<line x1="{label_w + ci[0] * scale:.1f}" x2="{label_w + ci[1] * scale:.1f}" y1="{y + 11}" '
                f'y2="{y + 11}" stroke="#222" stroke-width="1.5"/>'
            )
    threshold = 0.8 * top_rate * scale
    parts.append(
        f'<line x1="{label_w + threshold:.1f}" x2="{label_w + threshold:.1f}" y1="0" y2="{height - 18}" '
        f'stroke="#c0392b" stroke-dasharray="4 3"/><text x="{label_w + threshold:.1f}" y="{height - 6}" '
        f'font-size="9" fill="#c0392b" text-anchor="middle">four fifths of the highest rate</text></svg>'
    )
    return Markup("".join(parts))
