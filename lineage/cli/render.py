"""Rendering query results for people: tables, Graphviz DOT and Mermaid."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import click
from rich.console import Console

__all__ = ["Console", "console", "table", "note", "progress", "dot", "mermaid"]
from rich.table import Table

from lineage.query import EdgeRef

_SHAPES = {"dataset": "cylinder", "model": "hexagon", "run": "box", "job": "component", "code": "note"}


def console() -> Console:
    # Off a terminal (a pipe, a file, a test) nothing is folded: ids must stay whole to be copied.
    import sys

    width = None if sys.stdout.isatty() else 1000
    return Console(width=width, highlight=False)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    out = Table(title=title, title_justify="left", show_lines=False)
    for name in columns:
        out.add_column(name, overflow="fold", no_wrap=name == "id")
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row))
    console().print(out)


def note(text: str) -> None:
    click.echo(text, err=True)


@contextlib.contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while the block runs (none off a terminal); yields ``advance(n)``."""
    from rich.progress import Progress

    from lineage.cli.options import is_terminal

    with Progress(disable=not is_terminal(), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def dot(node_ids: Iterable[str], edges: Iterable[EdgeRef]) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for node in node_ids:
        shape = _SHAPES.get(node.partition(":")[0], "ellipse")
        lines.append(f"  {_dot_quote(node)} [shape={shape}];")
    for e in edges:
        lines.append(f"  {_dot_quote(e.src)} -> {_dot_quote(e.dst)} [label={_dot_quote(e.type)}];")
    lines.append("}")
    return "\n".join(lines)


def mermaid(node_ids: Iterable[str], edges: Iterable[EdgeRef]) -> str:
    names: dict[str, str] = {}
    lines = ["flowchart LR"]
    for node in node_ids:
        names[node] = f"n{len(names)}"
        label = node.replace('"', "#quot;")
        lines.append(f'  {names[node]}["{label}"]')
    for e in edges:
        if e.src in names and e.dst in names:
            lines.append(f"  {names[e.src]} -->|{e.type}| {names[e.dst]}")
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
