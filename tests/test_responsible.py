"""Explainability (SHAP) and fairness (fairlearn) on the real data in ../shared/data."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import SHARED, ingest_events, run_event

from governance import explain as explaining
from governance import fairness
from governance import gate as gates
from governance.errors import ArtifactError
from governance.modelfiles import ModelFileError, load_model
from governance.rules import load_policy
from governance.sdk import assess_fairness, explain_model
from lineage.cli import cli
from lineage.sdk import file_digest
from lineage.store import open_store

MODEL = "model:ml/income@1"
RESPONSIBLE_RULES = """\
rules:
  - id: four-fifths-sex
    title: Selection rates by sex within four fifths
    rationale: The four-fifths rule of US employment practice.
    severity: block
    check: four_fifths
    params: {threshold: 0.8, protected: [sex]}
    evidences: {nist-ai-rmf: [MEASURE 2.11], eu-ai-act-annex-iv: ["3"]}
  - id: no-proxy
    title: No stand-in for a protected attribute drives the model
    rationale: Dropping the protected column is not enough.
    severity: block
    check: proxy_features
    params: {auc_threshold: 0.8, min_share: 0.1}
  - id: no-reliance
    title: Protected features carry little weight
    rationale: The model must not decide on sex or race.
    severity: block
    check: protected_reliance
    params: {protected_features: [sex, race], max_share: 0.05, top_k: 3}
  - id: additive
    title: SHAP values add up
    rationale: An explanation that does not add up explains something else.
    severity: block
    check: additivity
    params: {max_residual: 1.0e-6}
"""


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


# --- COMPAS: the README's numbers, exactly --------------------------------------


@pytest.fixture(scope="module")
def compas_csv(tmp_path_factory):
    d = pd.read_csv(SHARED / "data/compas/compas-two-years-nopii.csv")
    d = d[
        (d.days_b_screening_arrest <= 30)
        & (d.days_b_screening_arrest >= -30)
        & (d.is_recid != -1)
        & (d.c_charge_degree != "O")
        & (d.score_text != "N/A")
        & d.race.isin(["African-American", "Caucasian"])
    ]
    d = d.assign(high_risk=(d.score_text != "Low").astype(int))[["race", "sex", "two_year_recid", "high_risk"]]
    path = tmp_path_factory.mktemp("compas") / "compas.csv"
    d.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_the_compas_numbers_in_the_shared_readme_are_reproduced_exactly(tmp_path, compas_csv):
    url = f"sqlite:///{tmp_path}/c.db"
    with open_store(url) as store:
        ingest_events(
            store,
            [
                run_event(
                    "score",
                    outputs=[
                        {
                            "namespace": "justice",
                            "name": "compas",
                            "facets": {
                                "datasetType": {"_producer": "x", "_schemaURL": "y", "datasetType": "MODEL"},
                                "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"},
                            },
                        }
                    ],
                )
            ],
        )
    result = run(
        "governance",
        "fairness",
        "model:justice/compas@1",
        "--data",
        compas_csv,
        "--target",
        "two_year_recid",
        "--protected",
        "race",
        "--predictions",
        "high_risk",
        "--bootstrap",
        "0",
        "--json",
        "--store",
        url,
    )
    assert result.exit_code == 0, result.output
    [a] = json.loads(result.stdout)
    assert a["rows"] == 5278
    groups = {g["group"]: {k: round(g[k], 3) for k in ("selection_rate", "fpr", "fnr", "tpr")} for g in a["groups"]}
    assert groups == {
        "African-American": {"selection_rate": 0.576, "fpr": 0.423, "fnr": 0.285, "tpr": 0.715},
        "Caucasian": {"selection_rate": 0.331, "fpr": 0.220, "fnr": 0.496, "tpr": 0.504},
    }
    metrics = {k: round(v["value"], 3) for k, v in a["metrics"].items()}
    assert metrics == {
        "demographic_parity_difference": 0.245,
        "demographic_parity_ratio": 0.575,
        "equalized_odds_difference": 0.212,
        "equalized_odds_ratio": 0.52,
        "equal_opportunity_difference": 0.212,
    }


@pytest.mark.slow
def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate(compas_csv):
    d = pd.read_csv(compas_csv)
    first = fairness.assess(d.two_year_recid, d.high_risk, d[["race"]], bootstrap=100, seed=3)
    again = fairness.assess(d.two_year_recid, d.high_risk, d[["race"]], bootstrap=100, seed=3)
    assert first == again
    for m in first["metrics"].values():
        low, high = m["ci"]
        assert low <= m["value"] <= high


@pytest.mark.slow
def test_intersections_report_small_groups_but_leave_them_out(compas_csv):
    d = pd.read_csv(compas_csv)
    a = fairness.assess(d.two_year_recid, d.high_risk, d[["race", "sex"]], min_group_size=700, bootstrap=0)
    sizes = {g["group"]: (g["n"], g["too_small"]) for g in a["groups"]}
    assert sizes["Caucasian & Female"][1] is True and sizes["African-American & Male"] == (
        sizes["African-American & Male"][0],
        False,
    )
    assert a["excluded_groups"] == [g for g, (n, small) in sorted(sizes.items()) if small]


def test_labels_that_are_not_binary_are_refused():
    with pytest.raises(Exception, match="must hold 0/1 labels"):
        fairness.assess([0, 2], [0, 1], pd.DataFrame({"g": ["a", "b"]}))


# --- Adult: a model trained without sex and race ---------------------------------


@pytest.mark.slow
def test_adult_without_sex_and_race_still_fails_four_fifths_and_the_proxy_check_names_relationship(adult, tmp_path):
    url = adult["url"]
    explained = run(
        "governance",
        "explain",
        MODEL,
        "--model-file",
        adult["model_file"],
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--protected",
        "sex",
        "--protected",
        "race",
        "--json",
        "--store",
        url,
    )
    assert explained.exit_code == 0, explained.output
    e = json.loads(explained.stdout)
    assert (e["explainer"], e["output"]) == ("tree", "log_odds")
    assert "sex" not in e["features"] and "race" not in e["features"]
    assert e["importance"][0]["feature"] == "relationship"
    assert e["proxies"]["sex"]["relationship"] > 0.85
    assessed = run(
        "governance",
        "fairness",
        MODEL,
        "--model-file",
        adult["model_file"],
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--positive",
        ">50K",
        "--protected",
        "sex",
        "--bootstrap",
        "50",
        "--json",
        "--store",
        url,
    )
    assert assessed.exit_code == 0, assessed.output
    ratio = json.loads(assessed.stdout)[0]["metrics"]["demographic_parity_ratio"]["value"]
    assert ratio < 0.8
    rules = tmp_path / "responsible.yaml"
    rules.write_text(RESPONSIBLE_RULES)
    gated = run("governance", "gate", MODEL, "--policy", rules, "--json", "--store", url)
    assert gated.exit_code == 1
    results = {r["rule"]: r for r in json.loads(gated.stdout)["results"]}
    assert {k: r["status"] for k, r in results.items()} == {
        "four-fifths-sex": "fail",
        "no-proxy": "fail",
        "no-reliance": "pass",
        "additive": "pass",
    }
    assert results["no-proxy"]["reason"].startswith("relationship stands in for sex (AUC 0.87")
    assert [p["feature"] for p in results["no-proxy"]["observed"]] == ["relationship"]


@pytest.mark.slow
def test_additivity_holds_and_results_are_identical_across_runs(adult):
    X = adult["data"].drop(columns=["income", "sex", "race"])
    first = explaining.explain(adult["model"], X, max_rows=300, seed=7)
    second = explaining.explain(adult["model"], X, max_rows=300, seed=7)
    assert first["additivity"]["max"] < 1e-9
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(first) == strip(second)
    assert explaining.explain(adult["model"], X, max_rows=300, seed=8)["rows_digest"] != first["rows_digest"]


@pytest.mark.slow
def test_the_sdk_records_the_same_evidence_from_an_in_memory_model(adult):
    X = adult["data"].drop(columns=["income", "sex", "race"])
    seq, result = explain_model(
        adult["url"],
        MODEL,
        adult["model"],
        X,
        max_rows=200,
        protected=adult["data"][["sex"]],
        artifact=adult["model_file"],
    )
    with open_store(adult["url"]) as store:
        assert explaining.latest(store, MODEL)[0] == seq
        unbound, _ = explain_model(store, MODEL, adult["model"], X, max_rows=50)  # no artifact named: recorded...
        assert explaining.latest(store, MODEL)[0] == seq  # ...but it does not count
    y = (adult["data"].income == ">50K").astype(int)
    fseq, f = assess_fairness(adult["url"], MODEL, y, adult["model"].predict(X), adult["data"][["sex"]], bootstrap=0)
    assert f["metrics"]["demographic_parity_ratio"]["value"] < 0.8


# --- explainer selection ----------------------------------------------------------------


@pytest.fixture(scope="module")
def german():
    cols = [
        "status",
        "duration",
        "credit_history",
        "purpose",
        "credit_amount",
        "savings",
        "present_employment",
        "installment_rate",
        "status_sex",
        "other_debtors",
        "present_residence_since",
        "property",
        "age",
        "installment_plans",
        "housing",
        "number_of_existing_credits",
        "job",
        "number_of_people_liable_for",
        "telephone",
        "foreign_worker",
        "credit",
    ]
    d = pd.read_csv(SHARED / "data/german/german.data", sep=" ", header=None, names=cols)
    return d.select_dtypes("number").drop(columns=["credit"]), (d.credit == 1).astype(int)


@pytest.mark.slow
def test_a_linear_model_gets_the_linear_explainer_on_its_margin(german):
    from sklearn.linear_model import LogisticRegression

    X, y = german
    model = LogisticRegression(max_iter=2000).fit(X, y)
    result = explaining.explain(model, X, max_rows=200)
    assert (result["explainer"], result["output"]) == ("linear", "log_odds")
    assert result["additivity"]["max"] < 1e-6


@pytest.mark.slow
def test_a_small_black_box_is_explained_exactly_in_log_odds(german):
    from sklearn.naive_bayes import GaussianNB

    X, y = german
    model = GaussianNB().fit(X, y)
    result = explaining.explain(model, X, max_rows=20, background_rows=20)
    assert (result["explainer"], result["output"], len(result["features"])) == ("exact", "log_odds", 7)
    assert result["additivity"]["max"] < 1e-6


@pytest.mark.slow
def test_a_wide_black_box_gets_the_seeded_permutation_explainer():
    from sklearn.naive_bayes import GaussianNB

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 12)), columns=[f"x{i}" for i in range(12)])
    y = (X.x0 + X.x1 > 0).astype(int)
    model = GaussianNB().fit(X, y)
    first = explaining.explain(model, X, max_rows=10, background_rows=20, seed=1)
    second = explaining.explain(model, X, max_rows=10, background_rows=20, seed=1)
    assert first["explainer"] == "permutation"
    assert first["importance"] == second["importance"]
    assert {i["feature"] for i in first["importance"][:2]} == {"x0", "x1"}
    assert first["additivity"]["max"] < 1e-6


# --- model files ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pickle_is_refused_unless_trusted_and_matching_lineage(adult, tmp_path):
    path = tmp_path / "income.pkl"
    path.write_bytes(pickle.dumps(adult["model"]))
    with pytest.raises(ModelFileError, match="refusing to unpickle"):
        load_model(path)
    with pytest.raises(ArtifactError, match="no artifact digest is recorded"):
        load_model(path, trust_pickle=True)
    with pytest.raises(ArtifactError, match="differs from the recorded artifact"):
        load_model(path, trust_pickle=True, expected_digest=file_digest(adult["model_file"]))
    assert load_model(path, trust_pickle=True, expected_digest=file_digest(path)).predict(
        adult["data"].drop(columns=["income", "sex", "race"]).head(3)
    ).shape == (3,)


@pytest.mark.slow
def test_the_cli_refuses_a_pickle_whose_digest_is_not_the_recorded_artifact(adult, tmp_path):
    path = tmp_path / "swapped.pkl"
    path.write_bytes(pickle.dumps(adult["model"]))
    result = run(
        "governance",
        "explain",
        MODEL,
        "--model-file",
        path,
        "--trust-pickle",
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--store",
        adult["url"],
    )
    assert result.exit_code == 5 and "differs from the artifact recorded for" in result.stderr
    result = run(
        "governance",
        "explain",
        MODEL,
        "--model-file",
        path,
        "--trust-pickle",
        "--allow-unrecorded-artifact",
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--store",
        adult["url"],
    )
    assert result.exit_code == 5 and "differs from the recorded artifact" in result.stderr  # a pickle must match


@pytest.mark.slow
def test_bad_data_input_is_a_clear_error(adult, tmp_path):
    result = run(
        "governance",
        "fairness",
        MODEL,
        "--model-file",
        adult["model_file"],
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--protected",
        "gender",
        "--store",
        adult["url"],
    )
    assert result.exit_code == 2 and "fairness: no column gender in the data" in result.stderr
    unlabeled = run(
        "governance",
        "fairness",
        MODEL,
        "--model-file",
        adult["model_file"],
        "--data",
        adult["csv"],
        "--target",
        "income",
        "--protected",
        "sex",
        "--store",
        adult["url"],
    )
    assert unlabeled.exit_code == 2 and "say which is positive with --positive" in unlabeled.stderr


@pytest.mark.slow
def test_the_bootstrap_formulas_agree_with_fairlearn_on_the_full_sample(compas_csv):
    """The resamples use vectorised group rates; on the full data they must give fairlearn's numbers."""
    d = pd.read_csv(compas_csv)
    labels = sorted(d.race.unique())
    codes = d.race.map({g: i for i, g in enumerate(labels)}).to_numpy()
    rates = fairness._rates(d.two_year_recid.to_numpy(float), d.high_risk.to_numpy(float), codes, len(labels))
    fast = fairness._fast_disparities(*rates)
    reference = fairness._disparities(d.two_year_recid.to_numpy(), d.high_risk.to_numpy(), d.race)
    assert fast == pytest.approx(reference, abs=1e-12)


@pytest.mark.slow
def test_explanation_stability_compares_with_the_previously_released_version(adult, tmp_path):
    from governance import gate as gates_module
    from lineage.sdk import file_digest

    X = adult["data"].drop(columns=["income", "sex", "race"])
    url = f"sqlite:///{tmp_path}/stable.db"
    digest = file_digest(adult["model_file"])
    with open_store(url) as store:
        for version, time in (("1", "2024-01-01T00:00:00Z"), ("2", "2024-02-01T00:00:00Z")):
            ingest_events(
                store,
                [
                    run_event(
                        "train",
                        time=time,
                        outputs=[
                            {
                                "namespace": "ml",
                                "name": "income",
                                "facets": {
                                    "version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": version},
                                    "auditgraph_model": {
                                        "_producer": "x",
                                        "_schemaURL": "y",
                                        "version": version,
                                        "artifactDigest": digest,
                                    },
                                },
                            }
                        ],
                    )
                ],
            )
        policy = tmp_path / "stable.yaml"
        policy.write_text(
            "rules:\n  - id: stable\n    title: t\n    rationale: r\n    severity: block\n"
            "    check: explanation_stability\n    params: {min_rank_correlation: 0.9, top_k: 3, min_top_k_overlap: 1.0}\n"
        )
        explain_model(store, "model:ml/income@2", adult["model"], X, max_rows=200, artifact=adult["model_file"])
        first = gates.evaluate(store, "model:ml/income@2", load_policy([str(policy)])).results[0]
        assert first.status == "not_evaluated" and "no earlier released version" in first.reason
        explain_model(store, "model:ml/income@1", adult["model"], X, max_rows=200, artifact=adult["model_file"])
        warn = tmp_path / "warn.yaml"
        warn.write_text(
            "rules:\n  - id: w\n    title: t\n    rationale: r\n    severity: warn\n    check: documentation\n"
        )
        assert gates_module.release(store, "model:ml/income@1", load_policy([str(warn)]), "t")[1]
        same = gates.evaluate(store, "model:ml/income@2", load_policy([str(policy)])).results[0]
        assert (same.status, same.observed["rank_correlation"], same.observed["compared_with"]) == (
            "pass",
            1.0,
            "model:ml/income@1",
        )
        reversed_result = {**explaining.latest(store, "model:ml/income@2")[1]}
        reversed_result["importance"] = list(reversed(reversed_result["importance"]))
        for key in ("model", "dataset", "data_digest", "at", "model_digest", "artifact_recorded"):
            reversed_result.pop(key)
        explaining.record(store, "model:ml/income@2", reversed_result, "t", model_digest=digest, artifact_recorded=True)
        moved = gates.evaluate(store, "model:ml/income@2", load_policy([str(policy)])).results[0]
        assert moved.status == "fail" and moved.observed["rank_correlation"] == -1.0
