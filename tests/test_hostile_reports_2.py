"""Hostile input to reports, second pass: values that reach the SVG charts, and user templates that
try to exhaust memory or time.

A real store (the demo pipeline in a SQLite file) issues a real report through the CLI; its
bundle.json is then hand-edited the way someone asked to ``reports render`` it could be handed one.
HTML is read back with the standard library's parser. User templates are run through the real
``auditgraph`` command in a subprocess with a hard timeout, so a template that never ends fails
the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from lineage.cli import cli
from lineage.store import open_store

MODEL = "model:demo/churn-classifier@3"


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The demo store and a report issued from it (its bundle.json is what the tests edit)."""
    base = tmp_path_factory.mktemp("released")
    url = f"sqlite:///{base}/store.db"
    assert run("demo", "--store", url).exit_code == 0
    result = run("reports", "release", MODEL, "--out", base / "report", "--format", "json", "--store", url)
    assert result.exit_code == 0, result.output
    return {"url": url, "bundle": json.loads((base / "report" / "bundle.json").read_text(encoding="utf-8"))}


def assessment(groups: list[dict]) -> dict:
    """A fairness assessment as a bundle holds it (what reports.bundle.collect writes)."""
    return {
        "seq": 7,
        "protected": ["sex"],
        "rows": 100,
        "min_group_size": 1,
        "excluded_groups": [],
        "groups": groups,
        "metrics": {"demographic_parity_ratio": {"value": 0.5, "ci": [0.4, 0.6]}},
        "overall": {},
        "bootstrap": {"resamples": 10},
        "versions": {},
    }


def group(name="a", n=50, rate=0.5, **extra) -> dict:
    return {
        "group": name,
        "n": n,
        "too_small": False,
        "selection_rate": rate,
        "tpr": None,
        "fpr": None,
        "fnr": None,
        "accuracy": None,
        "ci": {"selection_rate": [0.4, 0.6]},
        **extra,
    }


def write_bundle(path: Path, bundle: dict, groups: list[dict]) -> Path:
    path.write_text(json.dumps({**bundle, "fairness": [assessment(groups)]}), encoding="utf-8")
    return path


class Markup(HTMLParser):
    """Every element, attribute and text run of an HTML file, as a browser would read them."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


SCRIPT = "<script>alert(document.domain)</script>"
HOSTILE_N = [
    SCRIPT,
    '"><svg onload=alert(1)>',
    "</text></svg><img src=x onerror=alert(1)><a href='javascript:alert(1)'>x</a>",
    "]]><script>alert(2)</script>",
]


@pytest.mark.parametrize("n", HOSTILE_N)
def test_a_hostile_group_size_in_a_bundle_renders_as_text_in_the_fairness_chart(released, tmp_path, n):
    bundle = write_bundle(tmp_path / "bundle.json", released["bundle"], [group("a", n), group("b", 40, 0.3)])
    result = run("reports", "render", bundle, "--out", tmp_path / "out", "--format", "html")
    assert result.exit_code == 0, result.output
    html = Markup((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))
    assert "script" not in html.tags and "img" not in html.tags
    assert [name for name, _ in html.attrs if name.startswith("on")] == []
    assert [
        v for name, v in html.attrs if name in ("href", "src", "xlink:href") and not (v or "").startswith("#")
    ] == []
    assert f"a (n={n})" in "".join(html.text)  # the chart label, shown as typed
    assert html.tags.count("svg") == 2  # lineage and fairness: the chart still draws


@pytest.mark.parametrize(
    "field, value",
    [
        ("selection_rate", "0.5"),
        ("selection_rate", float("nan")),
        ("ci", {"selection_rate": ["<script>", 0.6]}),
    ],
)
def test_text_where_a_fairness_chart_needs_a_number_is_a_one_line_error_naming_the_field(
    released, tmp_path, field, value
):
    bundle = write_bundle(tmp_path / "bundle.json", released["bundle"], [group("a", 50, **{field: value})])
    result = run("reports", "render", bundle, "--out", tmp_path / "out", "--format", "html")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "fairness group 'a': selection_rate" in result.output and "must be a finite number" in result.output
    assert not (tmp_path / "out").exists()


def test_text_where_the_importance_chart_needs_a_number_is_a_one_line_error_naming_the_feature(released, tmp_path):
    explanation = {
        "explainer": "tree",
        "output": "probability",
        "estimator": "x",
        "rows_explained": 1,
        "rows_available": 1,
        "seed": 0,
        "background_rows": 1,
        "additivity": {"max": 0.0, "p99": 0.0},
        "seq": 3,
        "proxies": {},
        "versions": {},
        "importance": [{"feature": "age", "share": 0.7}, {"feature": "tenure", "share": SCRIPT}],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({**released["bundle"], "explanation": explanation}), encoding="utf-8")
    result = run("reports", "render", path, "--out", tmp_path / "out", "--format", "html")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "importance of 'tenure' must be a finite number" in result.output
    assert not (tmp_path / "out").exists()


# --- user templates that try to exhaust memory or time ---------------------------------------

DOUBLE = "{% set a = 'x' * 16000000 %}" + "{% set a = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}" * 2 + "{{ a|length }}"
HUNGRY_TEMPLATES = {
    "a 400 MB string": ("{{ ('x' * 400000000)|length }}", "refused by the sandbox"),
    "a 10 TB string": ("{{ ('x' * 10**13)|length }}", "refused by the sandbox"),
    "a list of a billion": ("{{ ([0] * 10**9)|length }}", "refused by the sandbox"),
    "a huge integer power": ("{{ (2 ** 100000000) % 7 }}", "refused by the sandbox"),
    "a huge integer product": (
        "{% set a = 7 ** 9000 %}{{ (a * a * a * a * a * a * a * a) % 7 }}",
        "refused by the sandbox",
    ),
    "a huge % width": ("{{ '%0999999999d' % 1 }}", "refused by the sandbox"),
    "a % width from an argument": ("{{ '%*d' % (999999999, 1) }}", "refused by the sandbox"),
    "a huge format width": ("{{ '{:>999999999}'.format(1) }}", "refused by the sandbox"),
    "a huge |format width": ("{{ '%999999999s'|format('x') }}", "refused by the sandbox"),
    "a huge center": ("{{ 'x'|center(10**9) }}", "refused by the sandbox"),
    "a huge num precision": ("{{ 0.5|num(999999999) }}", "refused by the sandbox"),
    "a replace that multiplies": ("{{ ('x' * 100000)|replace('x', 'y' * 100000)|length }}", "refused by the sandbox"),
    "a concatenation that doubles": ("{% set a = 'x' * 9000000 %}{{ (a + a)|length }}", "refused by the sandbox"),
    "a range of a billion": ("{% for i in range(10**9) %}{% endfor %}", "refused by the sandbox"),
    "100 MB of output": ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "refused by the sandbox"),
    "~ doubling past the memory budget": (DOUBLE, "ran out of memory"),
    "nested loops of 10^10 steps": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "ran longer than 3 s",
    ),
}


@pytest.mark.parametrize("name", HUNGRY_TEMPLATES)
@pytest.mark.slow
def test_a_user_template_that_would_exhaust_memory_or_time_is_a_one_line_error_and_nothing_is_written(
    released, tmp_path, name
):
    source, reason = HUNGRY_TEMPLATES[name]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "model_card.md.j2").write_text(source, encoding="utf-8")
    bundle = write_bundle(tmp_path / "bundle.json", released["bundle"], [group()])
    env = {**os.environ, "AUDITGRAPH_TEMPLATE_SECONDS": "3" if "3 s" in reason else "60"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lineage",
            "reports",
            "render",
            str(bundle),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "card",
            "--templates",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr.startswith("Error: template model_card.md.j2") and done.stderr.count("\n") == 1, done.stderr[
        -2000:
    ]
    assert reason in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_release_with_a_hungry_template_writes_nothing_and_records_no_issuance(released, tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "report.md.j2").write_text("{{ 'x'|center(10**9) }}", encoding="utf-8")
    with open_store(released["url"]) as store:
        before = store.head().seq
    result = run(
        "reports",
        "release",
        MODEL,
        "--out",
        tmp_path / "out",
        "--format",
        "md",
        "--templates",
        tmp_path / "t",
        "--store",
        released["url"],
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: template report.md.j2") and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()
    with open_store(released["url"]) as store:
        assert store.head().seq == before


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf"])
def test_a_template_time_budget_that_is_not_a_positive_number_is_a_one_line_error(released, tmp_path, value):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "model_card.md.j2").write_text("ok\n", encoding="utf-8")
    bundle = write_bundle(tmp_path / "bundle.json", released["bundle"], [group()])
    result = run(
        "reports",
        "render",
        bundle,
        "--out",
        tmp_path / "out",
        "--format",
        "card",
        "--templates",
        tmp_path / "t",
        env={"AUDITGRAPH_TEMPLATE_SECONDS": value},
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: AUDITGRAPH_TEMPLATE_SECONDS: expected") and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()
