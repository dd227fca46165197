"""Rendering a bundle: one sandboxed jinja2 environment for every format.

Invariants:

* Every template runs in jinja2's ``ImmutableSandboxedEnvironment``: ours, a
  user's from ``--templates DIR`` (which override ours by name), and anything
  either includes or extends. A template reads the bundle (``b``, ``blocking``)
  and calls the registered filters; it cannot reach Python internals (``_``
  attributes, ``__globals__``, ``__subclasses__``), mutate values, import or
  do I/O. A violation, like any other template failure, is a ``ReportError``
  naming the template and line.
* HTML is autoescaped. Markdown templates (``*.md.j2``) are not HTML-escaped
  (``&#34;`` has no place in a ``.md`` file); instead every value from the
  bundle goes through the ``md`` filter, which escapes it as Markdown.
* ``StrictUndefined``: a template naming a missing field fails, never renders blank.
* Everything rendered comes from the bundle: the same bundle renders to the same bytes.
"""

from __future__ import annotations

import json
import re
import traceback
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from governance.gate import GateResult, junit
from reports import svg
from reports.errors import ReportError

TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2", "card": "model_card.md.j2"}
FILENAMES = {"html": "report.html", "md": "report.md", "card": "model_card.md", "json": "bundle.json",
             "junit": "gate.junit.xml", "pdf": "report.pdf"}
BUILTIN = Path(__file__).parent / "templates"
# What a broken bundle or template raises while rendering (a sandbox violation is a TemplateError).
RENDER_ERRORS = (TemplateError, ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError)

# --- Markdown ------------------------------------------------------------------
# No well-kept library escapes text *into* CommonMark, so the rules live here, small
# and tested against a real parser (markdown-it-py) in tests/test_hostile_reports.py.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")  # control chars, lone surrogates
_SPACE = re.compile("[ \t\n\r\v\f\x85\u2028\u2029]+")  # line breaks collapse: no forged line can start
_INLINE = re.compile(r"([\\`*_\[\]<>#!|~&$])")  # emphasis, code, links/images, HTML, headings, tables, entities
_LINE_START = re.compile(r"^(\d{1,9}[.)]|[-+=])(?=[\s\-+=]|$)")  # list items, setext underlines, thematic breaks


def plain(value: Any) -> str:
    """One line of printable text: control characters become U+FFFD, any run of whitespace one space."""
    return _SPACE.sub(" ", _NOT_TEXT.sub("\ufffd", "" if value is None else str(value))).strip()


def markdown(value: Any, code: bool = False, cell: bool = False) -> str:
    """``value`` as Markdown that reads as typed and forms no heading, link, image, HTML or table cell.

    Text: CommonMark's specials are backslash-escaped (``|`` too, for table cells), and so is a
    line-start list, setext or thematic-break marker. ``code=True``: a code span fenced with one
    backtick more than the longest run inside (``cell=True`` when the span sits in a table cell).
    """
    text = plain(value)
    if not code:
        return _LINE_START.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], _INLINE.sub(r"\\\1", text), count=1)
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|') if cell else text}{pad}{fence}"


# --- the environment ----------------------------------------------------------

class ConfinedLoader(FileSystemLoader):
    """A user's templates folder; a template that is a link to a file outside it is refused, not read."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if not any(Path(filename).resolve().is_relative_to(Path(root).resolve()) for root in self.searchpath):
            raise SecurityError(f"{template} is a link to a file outside the templates folder")
        return source, filename, uptodate


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith((".md", ".md.j2"))


def environment(user_templates: Path | None = None) -> ImmutableSandboxedEnvironment:
    loaders = ([ConfinedLoader(str(user_templates))] if user_templates else []) + [PackageLoader("reports", "templates")]
    env = ImmutableSandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=_autoescape, undefined=StrictUndefined,
                                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update({
        "pct": lambda v: "–" if v is None else f"{v * 100:.1f}%",
        "num": lambda v, d=3: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v)),
        "compact": lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False),
        "status_label": lambda s: {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "not_evaluated": "NOT EVALUATED",
                                   "not_applicable": "NOT APPLICABLE"}.get(s, s),
        "lineage_svg": svg.lineage_graph,
        "importance_svg": svg.importance_chart,
        "fairness_svg": svg.fairness_chart,
        "md": markdown,
        "md_cell": markdown,  # the old name, so a user's template written for it stays safe
    })
    return env


def _where(error: BaseException, user_templates: Path | None) -> str:
    """The template file and line an error came from (jinja2 rewrites tracebacks to point there)."""
    if isinstance(error, TemplateError) and getattr(error, "lineno", None):
        return f" ({getattr(error, 'filename', None) or error.name}, line {error.lineno})"
    roots = [BUILTIN.resolve(), *([user_templates.resolve()] if user_templates else [])]
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if any(Path(f.filename).resolve().is_relative_to(root) for root in roots)]
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def _template(bundle: dict[str, Any], fmt: str, user_templates: Path | None) -> str:
    name = TEMPLATES[fmt]
    try:
        blocking = [r for r in (bundle["gate"] or {}).get("rules", []) if r["blocking"]]
        return environment(user_templates).get_template(name).render(b=bundle, blocking=blocking)
    except RENDER_ERRORS as e:
        verb = "refused by the sandbox" if isinstance(e, SecurityError) else f"failed ({type(e).__name__})"
        raise ReportError(f"template {name}{_where(e, user_templates)} {verb}: {plain(e)}") from None


def _junit(bundle: dict[str, Any]) -> str:
    gate = bundle["gate"]
    if gate is None:
        return junit(GateResult(model=bundle["model"]["id"], outcome="blocked", evaluated_at="", policy=[],
                                policy_digest="", results=[]))
    return junit(GateResult(model=bundle["model"]["id"], outcome=gate["outcome"], evaluated_at=gate["evaluated_at"],
                            policy=gate["policy"], policy_digest=gate["policy_digest"], results=gate["rules"], seq=gate["seq"]))


def bundle_json(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(bundle: dict[str, Any], fmt: str, user_templates: Path | None = None) -> str:
    """One format of the bundle as text; a broken bundle or template is a ``ReportError``."""
    if fmt == "json":
        return bundle_json(bundle)
    if fmt == "junit":
        try:
            return _junit(bundle)
        except RENDER_ERRORS as e:
            raise ReportError(f"bundle cannot be rendered as JUnit: {plain(e)}") from None
    return _template(bundle, fmt, user_templates)
