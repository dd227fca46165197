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
* What a template can make is bounded (``BoundedSandbox``): ``*``, ``+`` and ``**`` that would build
  a string, list or integer over the limits, ``%``/``format`` widths over ``MAX_WIDTH``, filter
  arguments over ``MAX_WIDTH`` and ``range`` over ``MAX_RANGE`` are refused; a rendering longer
  than ``MAX_OUTPUT`` characters is stopped. A user's templates (``--templates``) also run in a
  child process with a wall-clock budget (``AUDITGRAPH_TEMPLATE_SECONDS``, default
  ``USER_SECONDS``) and a memory budget (``USER_MEMORY`` bytes over what the process holds): a
  template that exceeds either, or runs out of memory, is a one-line ``ReportError`` and nothing
  is written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import string
import traceback
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from reports import svg
from reports.errors import FormatError, RenderError, ReportError

TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2", "card": "model_card.md.j2"}
BUILTIN = Path(__file__).parent / "templates"
# What a broken bundle or template raises while rendering (a sandbox violation is a TemplateError).
RENDER_ERRORS = (
    TemplateError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)
# What a template may make (see BoundedSandbox) and what a user's template may spend.
MAX_OUTPUT = 16 << 20  # characters in one rendering, and in one string or list a template builds
MAX_INT_BITS = 1 << 16  # an integer a template computes
MAX_WIDTH = 10_000  # a format width or precision, a numeric filter argument (center, indent, slice...)
MAX_RANGE = 100_000  # items in range(), as in jinja2's own sandbox
USER_SECONDS = 10.0  # wall clock for one rendering with a user's templates (AUDITGRAPH_TEMPLATE_SECONDS)
USER_MEMORY = 512 << 20  # bytes of address space a rendering with a user's templates may add

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


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} is over what a template may make")


def _check_widths(fmt: str, args: Any) -> None:
    """Refuse a ``%`` format whose width or precision is over MAX_WIDTH or taken from an argument (``*``)."""
    for width in re.findall(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?", fmt):
        if any(w == "*" or (w and int(w) > MAX_WIDTH) for w in width):
            raise _too_big(f"a format width over {MAX_WIDTH}")


def _check_format_spec(fmt: str) -> None:
    """Refuse a ``str.format`` field whose width or precision is over MAX_WIDTH or nested (``{:{}}``)."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and ("{" in spec or any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec))):
            raise _too_big(f"a format width over {MAX_WIDTH}")


def _bounded_filter(name: str, f):
    """A jinja2 built-in filter that could make a large string or list from a small input, bounded:
    its width and count arguments are at most MAX_WIDTH, and ``replace`` may not grow past MAX_OUTPUT."""
    skip = 2 if hasattr(f, "jinja_pass_arg") else 1  # the context/environment argument, then the value

    def bounded(*args, **kwargs):
        value, rest = args[skip - 1], (*args[skip:], *kwargs.values())
        if any(
            abs(len(a) if isinstance(a, str) and name == "indent" else a) > MAX_WIDTH
            for a in rest
            if isinstance(a, int) or (isinstance(a, str) and name == "indent")
        ):
            raise _too_big(f"|{name} with a width or count over {MAX_WIDTH}")
        if name == "format" and isinstance(value, str):
            _check_widths(value, rest)
        if name == "replace" and len(rest) >= 2 and all(isinstance(a, str) for a in (value, *rest[:2])):
            old, new = rest[:2]
            if len(value) + (value.count(old) if old else len(value) + 1) * (len(new) - len(old)) > MAX_OUTPUT:
                raise _too_big(f"a string of more than {MAX_OUTPUT} characters")
        return f(*args, **kwargs)

    if hasattr(f, "jinja_pass_arg"):
        bounded.jinja_pass_arg = f.jinja_pass_arg  # type: ignore[attr-defined]
    return bounded


WIDTH_FILTERS = ("center", "indent", "wordwrap", "batch", "slice", "format", "replace")


def _bounded_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise _too_big(f"a range of more than {MAX_RANGE} items")
    return items


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox that also bounds the size of what a template makes (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.filters.update({name: _bounded_filter(name, FILTERS[name]) for name in WIDTH_FILTERS})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (size := _sized(seq)) is not None and isinstance(times, int) and size * times > MAX_OUTPUT:
                    raise _too_big(f"a string or list of more than {MAX_OUTPUT} items")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise _too_big(f"an integer of more than {MAX_INT_BITS} bits")
        elif operator == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and abs(left) > 1
                and right * left.bit_length() > MAX_INT_BITS
            ):
                raise _too_big(f"an integer of more than {MAX_INT_BITS} bits")
        elif operator == "+":
            if (a := _sized(left)) is not None and (b := _sized(right)) is not None and a + b > MAX_OUTPUT:
                raise _too_big(f"a string or list of more than {MAX_OUTPUT} items")
        elif operator == "%" and isinstance(left, str):
            _check_widths(left, right)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped


def environment(user_templates: Path | None = None) -> BoundedSandbox:
    loaders = ([ConfinedLoader(str(user_templates))] if user_templates else []) + [
        PackageLoader("reports", "templates")
    ]
    env = BoundedSandbox(
        loader=ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        {
            "pct": lambda v: "–" if v is None else f"{v * 100:.1f}%",
            "num": _bounded_filter(
                "num", lambda v, d=3: "–" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
            ),
            "compact": lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False),
            "status_label": lambda s: {
                "pass": "PASS",
                "fail": "FAIL",
                "warn": "WARN",
                "not_evaluated": "NOT EVALUATED",
                "not_applicable": "NOT APPLICABLE",
            }.get(s, s),
            "lineage_svg": svg.lineage_graph,
            "importance_svg": svg.importance_chart,
            "fairness_svg": svg.fairness_chart,
            "md": markdown,
            "md_cell": markdown,  # the old name, so a user's template written for it stays safe
        }
    )
    return env


def _where(error: BaseException, user_templates: Path | None) -> str:
    """The template file and line an error came from (jinja2 rewrites tracebacks to point there)."""
    if isinstance(error, TemplateSyntaxError) and error.lineno:  # the one jinja2 error that carries its place
        return f" ({error.filename or error.name}, line {error.lineno})"
    roots = [BUILTIN.resolve(), *([user_templates.resolve()] if user_templates else [])]
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if any(Path(f.filename).resolve().is_relative_to(root) for root in roots)
    ]
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def template(bundle: dict[str, Any], fmt: str, user_templates: Path | None = None) -> str:
    """A templated format (html, md, card) of the bundle: rendered in this process (our templates), or in
    a bounded child process (a user's)."""
    if user_templates is None:
        return _render_here(bundle, fmt, None)
    return _render_apart(bundle, fmt, user_templates)


def _render_here(bundle: dict[str, Any], fmt: str, user_templates: Path | None) -> str:
    name = TEMPLATES[fmt]
    try:
        blocking = [r for r in (bundle["gate"] or {}).get("rules", []) if r["blocking"]]
        size, chunks = 0, []
        for chunk in environment(user_templates).get_template(name).generate(b=bundle, blocking=blocking):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise _too_big(f"a rendering of more than {MAX_OUTPUT} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except RENDER_ERRORS as e:
        if isinstance(e, MemoryError):
            raise RenderError(f"template {name} ran out of memory") from None
        verb = "refused by the sandbox" if isinstance(e, SecurityError) else f"failed ({type(e).__name__})"
        raise RenderError(f"template {name}{_where(e, user_templates)} {verb}: {plain(e)}") from None


def _user_seconds() -> float:
    text = os.environ.get("AUDITGRAPH_TEMPLATE_SECONDS")
    try:
        seconds = float(text) if text else USER_SECONDS
    except ValueError:
        raise RenderError(f"AUDITGRAPH_TEMPLATE_SECONDS: expected a number of seconds, got {text!r:.40}") from None
    if not 0 < seconds < float("inf"):
        raise RenderError(f"AUDITGRAPH_TEMPLATE_SECONDS: expected a positive number of seconds, got {text!r:.40}")
    return seconds


def _render_apart(bundle: dict[str, Any], fmt: str, user_templates: Path) -> str:
    """Render with a user's templates in a child process that has ``_user_seconds()`` and USER_MEMORY."""
    seconds = _user_seconds()
    fork = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, bundle, fmt, user_templates), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise RenderError(
                f"template {TEMPLATES[fmt]} ran longer than {seconds:g} s "
                "(AUDITGRAPH_TEMPLATE_SECONDS); nothing was written"
            )
        ok, text = receive.recv()
    except EOFError:
        raise RenderError(
            f"template {TEMPLATES[fmt]} stopped the renderer (out of memory?); nothing was written"
        ) from None
    finally:
        child.kill()
        child.join()
        receive.close()
    if not ok:
        raise RenderError(text)
    return text


def _child(send, bundle: dict[str, Any], fmt: str, user_templates: Path) -> None:
    _limit_memory(USER_MEMORY)
    try:
        result = (True, _render_here(bundle, fmt, user_templates))
    except ReportError as e:
        result = (False, str(e))
    except MemoryError:
        result = (False, f"template {TEMPLATES[fmt]} ran out of memory")
    except Exception as e:  # anything else a user's template provokes is still that template's failure
        result = (False, f"template {TEMPLATES[fmt]} failed ({type(e).__name__}): {plain(e)}")
    send.send(result)


def _limit_memory(extra: int) -> None:
    """Cap this process's address space at what it holds now plus ``extra`` (Linux; elsewhere: no cap)."""
    try:
        import resource

        held = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        soft = held + extra if hard == resource.RLIM_INFINITY else min(held + extra, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ImportError, OSError, ValueError):
        pass


def bundle_json(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(bundle: dict[str, Any], fmt: str, user_templates: Path | None = None) -> str:
    """One text format of the bundle (any registered one, ``reports.formats``); a broken bundle or template
    is a ``ReportError``."""
    from reports.formats import RenderContext, named

    text = named(fmt).render(bundle, RenderContext(templates=user_templates))
    if not isinstance(text, str):
        raise FormatError(f"{fmt} is not a text format")
    return text
