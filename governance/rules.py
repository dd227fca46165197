"""Rule files: YAML data naming registered checks. Never executed.

A rule file::

    pack: {name: baseline, version: "1", description: ...}   # optional
    rules:
      - id: pii-needs-privacy-approval
        title: Training data tagged pii needs the privacy officer's approval
        rationale: Personal data may only train a model a privacy officer approved.
        severity: block                 # block | warn
        applies_to: {models: ["model:ml/*"]}   # globs on model ids; default: every model
        check: data_tags                # a registered check
        params: {tags: [pii], approval_role: privacy-officer}
        evidences: {nist-ai-rmf: [MEASURE 2.10], iso-42001: [A.7.5]}

Files are read with ``yaml.safe_load`` (plain data: no tags, no code), checked
with pydantic (unknown keys are errors), and every error names the file, the
line and the field. A file with any error evaluates nothing. Before anything is
built, the file must be at most ``MAX_RULE_FILE_BYTES``, nest at most
``MAX_DEPTH`` levels, expand (aliases counted each time they are used) to at
most ``MAX_NODES`` nodes with no alias inside itself, and repeat no key in any
mapping: a repeated key is an error, never "the last one wins". ``load_policy``
also takes the name of a built-in pack (``baseline``, ``nist-ai-rmf`` ...).
"""

from __future__ import annotations

import difflib
import fnmatch
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from governance.checks import registry
from governance.errors import RuleFileError
from governance.frameworks import FRAMEWORKS

MAX_RULE_FILE_BYTES = 1 << 20
MAX_DEPTH = 32  # a rule file needs about six levels
MAX_NODES = 100_000  # after expanding aliases: a few dozen anchors can stand for billions of nodes
_MERGE = "tag:yaml.org,2002:merge"


class Selector(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    def matches(self, model_id: str) -> bool:
        entity = model_id.split("@", 1)[0]
        return any(fnmatch.fnmatchcase(model_id, p) or fnmatch.fnmatchcase(entity, p) for p in self.models)


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    title: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    severity: Literal["block", "warn"]
    applies_to: Selector = Field(default_factory=Selector)
    check: str
    params: dict[str, Any] = Field(default_factory=dict)
    evidences: dict[str, list[str]] = Field(default_factory=dict)
    source: str = Field(default="", exclude=True)

    @field_validator("evidences")
    @classmethod
    def _known_items(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for framework, items in value.items():
            if framework not in FRAMEWORKS:
                raise ValueError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")
            for item in items:
                if item not in FRAMEWORKS[framework]:
                    near = difflib.get_close_matches(item, FRAMEWORKS[framework], n=1)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    raise ValueError(f"{framework} has no item {item!r}{hint}")
        return value


class Pack(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str = "1"
    description: str = ""


class RuleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: Pack | None = None
    rules: list[Rule] = Field(min_length=1)


class Policy(BaseModel):
    """The rules of one or more files, checked, with where each came from."""

    model_config = ConfigDict(frozen=True)

    sources: list[str]
    rules: list[Rule]

    def applicable(self, model_id: str) -> list[Rule]:
        return [r for r in self.rules if r.applies_to.matches(model_id)]


def builtin_packs() -> dict[str, Path]:
    return {
        p.name.removesuffix(".yaml"): Path(str(p))
        for p in files("governance").joinpath("packs").iterdir()
        if p.name.endswith(".yaml")
    }


def load_policy(names: list[str]) -> Policy:
    """Load rule files (paths or built-in pack names); raise ``RuleFileError`` listing every problem."""
    if not names:
        raise RuleFileError(
            "no rule files given: pass --policy FILE (or a built-in pack: " + ", ".join(sorted(builtin_packs())) + ")"
        )
    rules: list[Rule] = []
    sources: list[str] = []
    seen: dict[str, str] = {}
    packs = builtin_packs()
    for name in names:
        path = packs.get(name) or Path(name)
        for rule in load_rule_file(path, label=f"pack:{name}" if name in packs else None):
            if rule.id in seen:
                raise RuleFileError(f"{rule.source}: rule id {rule.id!r} is already defined at {seen[rule.id]}")
            seen[rule.id] = rule.source
            rules.append(rule)
        sources.append(f"pack:{name}" if name in packs else str(path))
    return Policy(sources=sources, rules=rules)


def load_rule_file(path: Path, label: str | None = None) -> list[Rule]:
    tree, data = _read_yaml(path)
    try:
        parsed = RuleFile.model_validate(data)
    except ValidationError as e:
        raise RuleFileError("\n".join(_describe(path, tree, err["loc"], err["msg"]) for err in e.errors())) from None
    except RecursionError:
        raise RuleFileError(f"{path}: nested too deeply to check") from None
    problems = []
    rules = []
    for i, rule in enumerate(parsed.rules):
        problems += _check_params(path, tree, i, rule)
        rules.append(rule.model_copy(update={"source": f"{label or path}:{_line(tree, ('rules', i))}"}))
    if problems:
        raise RuleFileError("\n".join(problems))
    return rules


def _read_yaml(path: Path) -> tuple[Any, Any]:
    """The file's YAML node tree and its plain data, once its size, depth, expansion and keys are checked."""
    try:
        with open(path, "rb") as f:  # bounded read: a FIFO or /dev/zero has no useful size
            raw = f.read(MAX_RULE_FILE_BYTES + 1)
        if len(raw) > MAX_RULE_FILE_BYTES:
            raise RuleFileError(f"{path}: larger than {MAX_RULE_FILE_BYTES} bytes")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError(f"{path}: cannot read: {e}") from None
    try:
        _check_depth(path, text)
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(path, tree)
        _check_duplicate_keys(path, tree)
        return tree, yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RuleFileError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except RecursionError:  # a backstop: the checks above keep every recursive step shallow
        raise RuleFileError(f"{path}: nested too deeply to read") from None


def _check_depth(path: Path, text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, from the parser's events (which PyYAML produces without recursion)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark  # the parser always sets it; the stubs allow None
                where = f"{path}:{mark.line + 1}" if mark else str(path)
                raise RuleFileError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(path: Path, tree) -> None:
    """Refuse an alias inside its own anchor, and more than MAX_NODES nodes once aliases are expanded."""
    if tree is None:
        return
    size: dict[int, int] = {}
    stack = [(tree, False)]
    while stack:  # post-order, iterative; size is memoised, so shared anchors cost once here
        node, done = stack.pop()
        if done:
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
            if size[id(node)] > MAX_NODES:
                raise RuleFileError(
                    f"{path}:{node.start_mark.line + 1}: expands to more than {MAX_NODES} nodes (through aliases)"
                )
            continue
        if id(node) in size:
            continue
        size[id(node)] = -1  # on the current path
        stack.append((node, True))
        for child in _children(node):
            if size.get(id(child)) == -1:
                raise RuleFileError(f"{path}:{child.start_mark.line + 1}: an alias refers to a node that contains it")
            if id(child) not in size:
                stack.append((child, False))


def _check_duplicate_keys(path: Path, tree) -> None:
    """Refuse a key given twice in one mapping, at any depth (YAML says keys are unique; PyYAML keeps the last)."""
    problems, seen, stack = [], set(), [tree] if tree is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(_children(node))
        if not isinstance(node, yaml.MappingNode):
            continue
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
                continue
            line = key.start_mark.line + 1
            if (key.tag, key.value) in first:
                problems.append(
                    (line, f"{path}:{line}: duplicate key {key.value!r} (first at line {first[key.tag, key.value]})")
                )
            first.setdefault((key.tag, key.value), line)
    if problems:
        raise RuleFileError("\n".join(p for _, p in sorted(problems)))


def _check_params(path: Path, tree, i: int, rule: Rule) -> list[str]:
    check = registry().get(rule.check)
    if check is None:
        near = difflib.get_close_matches(rule.check, registry(), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f"; registered: {', '.join(sorted(registry()))}"
        return [f"{path}:{_line(tree, ('rules', i, 'check'))}: rules[{i}].check: no check named {rule.check!r}{hint}"]
    try:
        check.Params.model_validate(rule.params)
    except ValidationError as e:
        return [_describe(path, tree, ("rules", i, "params", *err["loc"]), err["msg"]) for err in e.errors()]
    return []


def _describe(path: Path, tree, loc: tuple[int | str, ...], msg: str) -> str:
    """One pydantic error (its ``loc`` and ``msg``) as ``file:line: field.path: message``."""
    field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if n else str(p)) for n, p in enumerate(loc))
    message = msg.removeprefix("Value error, ")
    return f"{path}:{_line(tree, loc)}: {field or '(file)'}: {message}"


def _line(node, loc: tuple) -> int:
    """The line of the YAML node at ``loc`` (or of the deepest node that exists on the way)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node, line = match[1], match[0].start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
