"""Hostile input to release reports: user templates, Markdown injection, JUnit that must parse.

The store is a real SQLite file holding a real (tiny) model whose every name, owner, approver,
intended use, metric, feature, protected column and fairness group was chosen by an attacker.
Reports are issued and verified through the real CLI; Markdown is read back with a real
CommonMark parser (markdown-it-py), HTML with the standard library's parser, JUnit with ElementTree.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from markdown_it import MarkdownIt
from openlineage.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport

from governance import records
from governance.gate import GateResult, RuleResult
from governance.sdk import assess_fairness, explain_model
from lineage.cli import cli
from lineage.ingest import ingest, read_documents
from lineage.sdk import TrainingRun
from lineage.store import open_store
from reports.junit import junit
from reports.render import markdown, plain

# Each starts with the forged construct, so it lands at the start of a line in some template too.
FORGE = "## FORGED PASSED\n![FORGED image](http://evil.example/i.png) [FORGED link](http://evil.example)"
TABLE = "FORGED | extra | cells |"
HTMLISH = "<img src=x onerror=alert(1)> <a href='http://evil.example'>FORGED</a> &#34;quoted&#34; &amp;"
LINES = "- FORGED item\n1. FORGED ordered\n> FORGED quote\n=====\n---\n```\nFORGED fence\n```\n    FORGED indented"
MARKS = "**FORGED bold** _FORGED em_ ~~FORGED strike~~ `FORGED code` [FORGED]: http://evil.example \\ $x$ # | !"
CONTROL = "FORGED\x00bell\x07esc\x1b[31mred\x0bvt\x0cff\x7fdel\u2028ls end"
HOSTILE = [FORGE, TABLE, HTMLISH, LINES, MARKS, CONTROL]

MODEL_NAME = "income " + FORGE + " " + TABLE + " " + CONTROL
FEATURE = TABLE + " " + HTMLISH
PROTECTED = FORGE + " " + MARKS
GROUP = LINES + " " + TABLE
METRIC = "accuracy " + HTMLISH + " " + TABLE
OWNER = FORGE + " " + CONTROL
APPROVER = "Rita " + FORGE + " " + TABLE
INTENDED = LINES + " " + FORGE + " " + HTMLISH
LIMITATION = MARKS + " " + CONTROL
RULE_TITLE = FORGE + " " + CONTROL
TYPED = [MODEL_NAME, FEATURE, PROTECTED, GROUP, METRIC, OWNER, APPROVER, INTENDED, LIMITATION]

MALICIOUS_TEMPLATES = {
    "globals of a helper": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "another helper": "{{ joiner.__init__.__globals__['os'].system('touch MARKER') }}",
    "lipsum": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "subclasses walk": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{% if c.__name__ == 'Popen' %}"
    "{{ c(['touch', 'MARKER']) }}{% endif %}{% endfor %}{{ ''.__class__.__mro__ }}",
    "format string": "{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}",
    "bundle internals": "{{ b.__class__.__init__ }}",
    "mutating the bundle": "{{ b.model.update({'id': 'forged'}) }}{{ b.model.id }}",
    "template internals": "{{ self._TemplateReference__context }}",
}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A store whose every user-supplied string is hostile, a gate run with --junit, and an issued report."""
    base = tmp_path_factory.mktemp("hostile")
    log, url = base / "events.jsonl", f"sqlite:///{base}/store.db"
    rng = np.random.default_rng(0)
    X = pd.DataFrame({FEATURE: rng.normal(size=200), "plain": rng.normal(size=200)})
    y = (X[FEATURE] > 0).astype(int).to_numpy()
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    estimator = LogisticRegression().fit(X, y)
    artifact = base / "model.skops"
    dump(estimator, artifact)  # the recorded artifact: evidence counts only when computed on it
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(log), append=True)))
    with TrainingRun("train " + TABLE, namespace="ml", code_path=base, client=client) as training:
        training.input("file", "/data/" + FORGE)
        model = training.model(
            "ml", MODEL_NAME, path=artifact, version="1", framework="sklearn " + MARKS, task="task " + HTMLISH
        )
    with open_store(url) as store, open(log, "rb") as f:
        assert ingest(store, read_documents(f, "events"), "test").accepted == 2
        records.set_owners(store, model, [OWNER, "second owner"], "test")
        records.set_intended_use(store, model, INTENDED, [LIMITATION], "test")
        records.record_evaluation(store, model, {METRIC: 0.5}, "test")
        explain_model(store, model, estimator, X, max_rows=50, background_rows=20, artifact=artifact)
        groups = pd.DataFrame({PROTECTED: [GROUP] * 100 + ["other"] * 100})
        assess_fairness(store, model, y, None, groups, min_group_size=10, bootstrap=0, artifact=artifact, X=X)
    assert (
        run(
            "governance", "keygen", APPROVER, "--role", "model-risk", "--out", base / "rita.pem", "--store", url
        ).exit_code
        == 0
    )
    approved = run("governance", "approve", model, "--role", "model-risk", "--key", base / "rita.pem", "--store", url)
    assert approved.exit_code == 0, approved.output
    policy = {
        "rules": [
            {
                "id": "accurate",
                "title": RULE_TITLE,
                "rationale": FORGE,
                "severity": "block",
                "check": "metric_threshold",
                "params": {"metric": METRIC, "min": 0.9},
                "evidences": {"nist-ai-rmf": ["MEASURE 2.9"]},
            },
            {
                "id": "approved",
                "title": RULE_TITLE,
                "rationale": TABLE,
                "severity": "warn",
                "check": "approvals",
                "params": {"role": "model-risk", "quorum": 2},
            },
        ]
    }
    (base / "policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    gate = run(
        "governance", "gate", model, "--policy", base / "policy.yaml", "--store", url, "--junit", base / "gate.xml"
    )
    assert gate.exit_code == 1, gate.output  # blocked: accuracy 0.5 < 0.9
    issued = run("reports", "release", model, "--out", base / "report", "--store", url)
    assert issued.exit_code == 0, issued.output
    return {"url": url, "model": model, "dir": base / "report", "base": base}


# --- Markdown -----------------------------------------------------------------------------

PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def tokens(path: Path) -> list:
    flat = []
    for token in PARSER.parse(path.read_text(encoding="utf-8")):
        flat.append(token)
        flat.extend(token.children or [])
    return flat


def text_of(path: Path) -> str:
    """What a reader sees: the text and code of every inline, one space for each break."""
    shown = [
        "".join(
            c.content if c.type in ("text", "code_inline") else " "
            for c in block.children
            if c.type in ("text", "code_inline", "softbreak", "hardbreak")
        )
        for block in PARSER.parse(path.read_text(encoding="utf-8"))
        if block.type == "inline"
    ]
    return " ".join(" ".join(shown).split())


def inner_text(found: list, opening: str) -> list[str]:
    """The text right inside each ``opening`` token (a heading, emphasis ...)."""
    return [found[i + 1].content for i, t in enumerate(found) if t.type == opening and i + 1 < len(found)]


@pytest.mark.parametrize("name", ["report.md", "model_card.md"])
@pytest.mark.slow
def test_hostile_names_forge_no_heading_image_link_or_html_in_the_markdown(hostile, name):
    found = tokens(hostile["dir"] / name)
    headings = inner_text(found, "heading_open")
    assert headings and not [h for h in headings if h.startswith(("FORGED", "PASSED", "=", "-"))]
    forged_kinds = {
        "image",
        "link_open",
        "html_inline",
        "html_block",
        "fence",
        "code_block",
        "blockquote_open",
        "ordered_list_open",
        "hr",
        "s_open",
    }
    assert sorted({t.type for t in found} & forged_kinds) == []
    assert not [t for t in inner_text(found, "strong_open") + inner_text(found, "em_open") if "FORGED" in t]


@pytest.mark.parametrize("name", ["report.md", "model_card.md"])
def test_hostile_names_read_as_typed_in_the_markdown(hostile, name):
    shown = text_of(hostile["dir"] / name)
    expected = {"report.md": TYPED, "model_card.md": [MODEL_NAME, PROTECTED, METRIC, OWNER, INTENDED, LIMITATION]}[name]
    for typed in expected:
        assert " ".join(plain(typed).split()) in shown


def test_hostile_names_add_no_table_cell_and_stay_in_their_own(hostile):
    found = tokens(hostile["dir"] / "report.md")
    rows, row = [], None
    for t in found:
        if t.type == "tr_open":
            row = []
        elif t.type == "inline" and row is not None:
            row.append(" ".join("".join(c.content for c in t.children if c.type in ("text", "code_inline")).split()))
        elif t.type == "tr_close":
            rows.append(row)
            row = None
    by_first = {r[0]: r for r in rows}
    assert by_first[" ".join(plain(FEATURE).split())][1].endswith("%")  # the share, in the second column
    assert len(by_first[" ".join(plain(GROUP).split())]) == 5 and by_first[" ".join(plain(GROUP).split())][1] == "100"
    source = (hostile["dir"] / "report.md").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(source):
        if line.startswith("|") and "FORGED" in line:
            delimiter = next(source[j] for j in range(i, 0, -1) if source[j].startswith("|---"))
            assert line.replace("\\|", "").count("|") == delimiter.count("|"), line


def test_markdown_is_not_html_escaped(hostile):
    for name in ("report.md", "model_card.md"):
        text = (hostile["dir"] / name).read_text(encoding="utf-8")
        assert "&lt;" not in text and "&gt;" not in text and "&#39;" not in text
    found = tokens(hostile["dir"] / "report.md")
    metrics = json.dumps({METRIC: 0.5}, ensure_ascii=False)
    assert " ".join(metrics.split()) in [
        t.content for t in found if t.type == "code_inline"
    ]  # a code span shows entities raw


def test_control_characters_never_reach_the_markdown_file(hostile):
    for name in ("report.md", "model_card.md"):
        text = (hostile["dir"] / name).read_text(encoding="utf-8")
        assert not [c for c in text if (ord(c) < 32 and c != "\n") or c in "\x7f\u2028"]
        assert "FORGED\ufffdbell\ufffdesc\ufffd" in text


@pytest.mark.parametrize(
    "typed",
    HOSTILE
    + [
        "\ud800 lone surrogate \udfff",
        "\ufffe\uffff",
        "-",
        "+ x",
        "1) x",
        "=",
        "`",
        "``a``",
        "a ` b",
        "   leading",
        "2. x",
    ],
)
def test_the_md_filter_forms_no_block_or_inline_markup_and_reads_as_typed(typed):
    for line in (markdown(typed), f"- Owners: {markdown(typed)}", markdown(typed, code=True)):
        found = [t for block in PARSER.parse(line) for t in [block, *(block.children or [])]]
        assert {t.type for t in found} <= {
            "paragraph_open",
            "paragraph_close",
            "inline",
            "text",
            "code_inline",
            "bullet_list_open",
            "bullet_list_close",
            "list_item_open",
            "list_item_close",
        }, line
    shown = "".join(t.content for b in PARSER.parse(markdown(typed)) for t in b.children or [])
    assert shown == plain(typed)
    code = [
        t.content for b in PARSER.parse(markdown(typed, code=True)) for t in b.children or [] if t.type == "code_inline"
    ]
    assert code == ([plain(typed)] if plain(typed) else [])


# --- HTML ---------------------------------------------------------------------------------


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.hrefs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k in ("href", "src", "onerror")]

    def handle_data(self, data):
        self.text.append(data)


def test_hostile_names_are_text_in_the_html(hostile):
    page = Elements()
    page.feed((hostile["dir"] / "report.html").read_text(encoding="utf-8"))
    assert "img" not in page.tags and "script" not in page.tags and "onerror" not in str(page.hrefs)
    assert page.hrefs and all(href.startswith("#") for href in page.hrefs)
    shown = " ".join("".join(page.text).split())
    for typed in (HTMLISH, PROTECTED, APPROVER, GROUP, INTENDED, METRIC):
        assert " ".join(typed.split()) in shown


# --- JUnit --------------------------------------------------------------------------------


def test_every_junit_file_written_from_hostile_names_parses(hostile):
    for path in (hostile["base"] / "gate.xml", hostile["dir"] / "gate.junit.xml"):
        suite = ET.parse(path).getroot()
        assert suite.get("name") == "auditgraph gate " + plain_xml(hostile["model"])
        [accurate] = [case for case in suite if case.get("name") == "accurate"]
        assert accurate.find("failure").get("message") == plain_xml(f"{METRIC} = 0.5 < 0.9")
        assert accurate.find("system-out").text.startswith(plain_xml(RULE_TITLE))
        [approved] = [case for case in suite if case.get("name") == "approved"]
        assert approved.find("skipped") is not None


def plain_xml(text: str) -> str:
    """What XML can hold of ``text``: the characters it cannot are U+FFFD."""
    return "".join(
        c if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) > 0xFFFF else "\ufffd"
        for c in text
    )


def test_junit_holds_every_character_class_xml_forbids():
    forbidden = "".join(
        map(chr, [*range(0, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0xDFFF, 0xD800, 0xFFFE, 0xFFFF])
    )  # no surrogate pair
    rule = RuleResult(
        rule="r" + forbidden,
        title="t" + forbidden,
        rationale="",
        severity="block",
        check="c" + forbidden,
        status="fail",
        blocking=True,
        reason="why" + forbidden,
        observed=forbidden,
    )
    xml = junit(
        GateResult(
            model="model:ml/m" + forbidden + "@1",
            outcome="blocked",
            evaluated_at=forbidden,
            policy=[],
            policy_digest="",
            results=[rule],
        )
    )
    suite = ET.fromstring(xml.encode("utf-8"))
    case = suite.find("testcase")
    assert suite.get("name") == "auditgraph gate model:ml/m" + "\ufffd" * len(forbidden) + "@1"
    assert case.get("name") == "r" + "\ufffd" * len(forbidden)
    assert case.find("failure").get("message") == "why" + "\ufffd" * len(forbidden)
    assert json.loads(case.find("failure").text)["observed"] == forbidden  # JSON escapes keep it exact


# --- user templates -----------------------------------------------------------------------


def templates_with(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text.replace("MARKER", str(tmp_path / "MARKER")), encoding="utf-8")
    return folder


def ledger_head(url: str) -> int:
    with open_store(url) as store:
        return store.head().seq


@pytest.mark.parametrize("payload", MALICIOUS_TEMPLATES.values(), ids=MALICIOUS_TEMPLATES.keys())
@pytest.mark.slow
def test_a_user_template_that_reaches_for_python_is_refused_and_runs_nothing(hostile, tmp_path, payload):
    folder = templates_with(tmp_path, {"model_card.md.j2": "card\n" + payload})
    before = ledger_head(hostile["url"])
    result = run(
        "reports",
        "release",
        hostile["model"],
        "--out",
        tmp_path / "out",
        "--store",
        hostile["url"],
        "--templates",
        folder,
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: template model_card.md.j2 ({folder / 'model_card.md.j2'}, line 2) ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "out").exists()
    assert ledger_head(hostile["url"]) == before  # no issuance recorded
    check = run("reports", "verify", hostile["dir"], "--store", hostile["url"], "--templates", folder)
    assert check.exit_code == 2 and check.stderr.startswith("Error: template ")
    assert not (tmp_path / "MARKER").exists()


def test_a_template_included_or_extended_by_a_user_template_is_sandboxed_too(hostile, tmp_path):
    folder = templates_with(
        tmp_path,
        {
            "report.md.j2": "{% extends 'base.md' %}",
            "base.md": "{% include 'part.md' %}",
            "part.md": "ok\n" + MALICIOUS_TEMPLATES["globals of a helper"],
        },
    )
    result = run(
        "reports",
        "render",
        hostile["dir"] / "bundle.json",
        "--out",
        tmp_path / "out",
        "--format",
        "md",
        "--templates",
        folder,
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"Error: template report.md.j2 ({folder / 'part.md'}, line 2) refused by the sandbox: "
    )
    assert not (tmp_path / "MARKER").exists() and not (tmp_path / "out").exists()


def test_a_user_template_cannot_read_files_outside_its_folder(hostile, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-VALUE")
    folder = templates_with(tmp_path, {"report.md.j2": "{% include 'leak.md' %}"})
    os.symlink(secret, folder / "leak.md")
    os.symlink(secret, folder / "model_card.md.j2")
    for fmt, attempt in (
        ("md", None),
        ("card", None),
        ("md", "{% include '../secret.txt' %}"),
        ("md", "{% include '" + str(secret) + "' %}"),
    ):
        if attempt:
            (folder / "report.md.j2").write_text(attempt)
        result = run(
            "reports",
            "render",
            hostile["dir"] / "bundle.json",
            "--out",
            tmp_path / "out",
            "--format",
            fmt,
            "--templates",
            folder,
        )
        assert result.exit_code == 2 and result.stderr.startswith("Error: template "), result.output
        assert "SECRET-VALUE" not in result.output and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_benign_override_still_renders_and_verifies(hostile, tmp_path):
    folder = templates_with(
        tmp_path,
        {
            "model_card.md.j2": "{% extends 'base.md' %}{% block body %}{{ b.model.name|md }}; "
            "{{ b.documentation.owners|map('md')|join(', ') }}; {{ b.digest|md(code=True) }}{% endblock %}\n",
            "base.md": "# Card\n{% block body %}{% endblock %}\n\n",
        },
    )
    result = run(
        "reports",
        "release",
        hostile["model"],
        "--out",
        tmp_path / "out",
        "--format",
        "card",
        "--format",
        "md",
        "--store",
        hostile["url"],
        "--templates",
        folder,
    )
    assert result.exit_code == 0, result.output
    card = (tmp_path / "out" / "model_card.md").read_text(encoding="utf-8")
    digest = json.loads((tmp_path / "out" / "bundle.json").read_text())["digest"]
    assert card == f"# Card\n{markdown(MODEL_NAME)}; {markdown(OWNER)}, second owner; `{digest}`\n"
    assert text_of(tmp_path / "out" / "model_card.md") == " ".join(
        f"Card {plain(MODEL_NAME)}; {plain(OWNER)}, second owner; {digest}".split()
    )
    check = run("reports", "verify", tmp_path / "out", "--no-anchor", "--store", hostile["url"], "--templates", folder)
    assert check.exit_code == 0, check.output
    assert "ok: model_card.md re-renders byte for byte" in check.stdout


def test_a_bundle_that_is_not_a_report_bundle_is_a_one_line_error(hostile, tmp_path):
    from reports.bundle import seal

    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "bundle.json").write_text("[]")
    result = run("reports", "render", tmp_path / "list" / "bundle.json", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"Error: {tmp_path / 'list' / 'bundle.json'}: not a report bundle (a JSON object was expected)\n"
    )
    resealed = {k: v for k, v in json.loads((hostile["dir"] / "bundle.json").read_text()).items() if k != "cited"}
    (tmp_path / "resealed").mkdir()
    (tmp_path / "resealed" / "bundle.json").write_text(json.dumps(seal(resealed)))
    check = run("reports", "verify", tmp_path / "resealed", "--store", hostile["url"])
    assert check.exit_code == 1 and "Traceback" not in check.output
    assert "FAILED: bundle.json is not a complete report bundle: KeyError 'cited'" in check.stderr
