"""Inline SVG for reports: the lineage graph (left to right), SHAP importance, fairness bars.

Every label is escaped here; the output is marked safe for the templates.
Layout is a pure function of the bundle, so renderings are byte-identical.
"""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

COLOURS = {"DatasetVersion": "#d7e8f7", "ModelVersion": "#f9e0b8", "Run": "#e4e4e4", "CodeVersion": "#dff0d8",
           "Dataset": "#d7e8f7", "Model": "#f9e0b8"}


def _label(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def lineage_graph(graph: dict[str, Any]) -> Markup:
    nodes = graph["nodes"]
    if not nodes:
        return Markup('<p class="muted">No lineage recorded.</p>')
    far = max(n["distance"] for n in nodes)
    columns: dict[int, list[dict]] = {}
    for n in sorted(nodes, key=lambda n: n["id"]):
        columns.setdefault(far - n["distance"], []).append(n)
    width, height, gap_x, gap_y = 210, 34, 40, 12
    pos = {n["id"]: (col * (width + gap_x) + 10, row * (height + gap_y) + 10)
           for col, items in columns.items() for row, n in enumerate(items)}
    total_w = (far + 1) * (width + gap_x) + 10
    total_h = max(len(v) for v in columns.values()) * (height + gap_y) + 10
    parts = [f'<div class="graph"><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {total_w} {total_h}" '
             f'width="{total_w}" height="{total_h}" role="img" aria-label="Lineage graph, data flowing left to right">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>']
    for e in graph["edges"]:
        if e["src"] in pos and e["dst"] in pos:
            (x1, y1), (x2, y2) = pos[e["src"]], pos[e["dst"]]
            parts.append(f'<line x1="{x1 + width}" y1="{y1 + height / 2}" x2="{x2}" y2="{y2 + height / 2}" '
                         f'stroke="#999" stroke-width="1.2" marker-end="url(#arrow)"><title>{escape(e["type"])}</title></line>')
    for n in nodes:
        x, y = pos[n["id"]]
        fill = COLOURS.get(n["kind"], "#eee")
        parts.append(f'<g><title>{escape(n["id"])}</title><rect x="{x}" y="{y}" width="{width}" height="{height}" rx="5" '
                     f'fill="{fill}" stroke="#888"/><text x="{x + 6}" y="{y + 14}" font-size="9" fill="#555">'
                     f'{escape(n["kind"])}</text><text x="{x + 6}" y="{y + 27}" font-size="10">{escape(_label(n["id"]))}</text></g>')
    parts.append("</svg></div>")
    return Markup("".join(parts))


def importance_chart(importance: list[dict[str, Any]], top: int = 15) -> Markup:
    items = importance[:top]
    if not items:
        return Markup("")
    bar_w, row_h, label_w = 360, 20, 170
    biggest = max(i["share"] for i in items) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 70} {len(items) * row_h + 10}" '
             f'width="100%" role="img" aria-label="Mean absolute SHAP value per feature">']
    for k, i in enumerate(items):
        y = k * row_h + 5
        w = bar_w * i["share"] / biggest
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" font-size="11" text-anchor="end">{escape(_label(i["feature"], 28))}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="#4a7fb5"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="10">{i["share"] * 100:.1f}%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def fairness_chart(assessment: dict[str, Any], metric: str = "selection_rate") -> Markup:
    groups = [g for g in assessment["groups"] if g.get(metric) is not None]
    if not groups:
        return Markup("")
    bar_w, row_h, label_w = 320, 22, 200
    top_rate = max(g[metric] for g in groups if not g["too_small"]) if any(not g["too_small"] for g in groups) else 1
    scale = bar_w / max(1e-9, max(max(g[metric] for g in groups), max((g.get("ci", {}).get(metric) or [0, 0])[1] or 0 for g in groups)))
    height = len(groups) * row_h + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 90} {height}" width="100%" '
             f'role="img" aria-label="{escape(metric)} per group">']
    for k, g in enumerate(groups):
        y = k * row_h + 4
        w = g[metric] * scale
        colour = "#bbb" if g["too_small"] else "#5b9a68"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{escape(_label(str(g["group"]), 30))}'
                     f' (n={g["n"]})</text><rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="10">{g[metric]:.3f}</text>')
        ci = (g.get("ci") or {}).get(metric)
        if ci and ci[0] is not None:
            parts.append(f'<line x1="{label_w + ci[0] * scale:.1f}" x2="{label_w + ci[1] * scale:.1f}" y1="{y + 11}" '
                         f'y2="{y + 11}" stroke="#222" stroke-width="1.5"/>')
    threshold = 0.8 * top_rate * scale
    parts.append(f'<line x1="{label_w + threshold:.1f}" x2="{label_w + threshold:.1f}" y1="0" y2="{height - 18}" '
                 f'stroke="#c0392b" stroke-dasharray="4 3"/><text x="{label_w + threshold:.1f}" y="{height - 6}" '
                 f'font-size="9" fill="#c0392b" text-anchor="middle">four fifths of the highest rate</text></svg>')
    return Markup("".join(parts))
