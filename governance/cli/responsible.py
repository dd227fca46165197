"""``auditgraph governance explain`` and ``auditgraph governance fairness``.

numpy, pandas, shap and fairlearn are imported inside the commands: every other
command starts without them.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from governance.errors import DataError
from lineage.cli import render
from lineage.cli.options import (
    actor_option,
    connect,
    default_actor,
    domain_errors,
    emit_json,
    json_option,
    store_option,
)
from lineage.errors import LineageError
from lineage.extras import require


def model_options(fn):
    fn = click.option(
        "--allow-unrecorded-artifact",
        "allow_unrecorded",
        is_flag=True,
        help="Use a model file whose SHA-256 is not the artifact lineage records for this version "
        "(the evidence says so). Never loads a pickle: those must always match.",
    )(fn)
    fn = click.option(
        "--trust-pickle",
        is_flag=True,
        help="Unpickle this .pkl/.joblib file (only if its digest matches the recorded artifact).",
    )(fn)
    fn = click.option(
        "--model-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The fitted model: .skops (only supported scikit-learn and NumPy types load, and only "
        "if their fitted arrays agree with each other; anything else is refused by name) or a "
        "trusted pickle.",
    )(fn)
    return fn


def data_options(fn):
    fn = click.option("--sep", default=None, help="CSV separator (default ',').")(fn)
    fn = click.option("--dataset", metavar="ID", help="The dataset version this file is (links the evidence).")(fn)
    fn = click.option("--target", required=True, help="The label column.")(fn)
    fn = click.option(
        "--data",
        "data_file",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="CSV or Parquet with the features, the target and the protected columns.",
    )(fn)
    return fn


def _model(store, model_id: str, path: Path | None, trust_pickle: bool, allow_unrecorded: bool):
    """Load the model file if it is the artifact lineage records for the version: (model, its digest, matched)."""
    from governance.errors import MissingFileError
    from governance.findings import check_model_file
    from governance.modelfiles import load_model

    if path is None:
        raise click.UsageError("give --model-file")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    actual, expected = check_model_file(store, model_id, path, allow_unrecorded)
    return load_model(path, trust_pickle=trust_pickle, expected_digest=expected), actual, actual == expected


def _features(model, data, target: str, protected: list[str], drop: list[str]):
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        missing = [c for c in names if c not in data.columns]
        if missing:
            raise DataError(f"the data lacks the model's features: {', '.join(missing)}")
        return data[list(names)]
    return data.drop(columns=[c for c in [target, *protected, *drop] if c in data.columns])


def _labels(values, positive: str | None, what: str):
    import pandas as pd

    if positive is not None:
        return (values.astype(str) == positive).to_numpy(dtype=int)
    uniques = set(pd.unique(values))
    if uniques <= {0, 1}:
        return values.to_numpy(dtype=int)
    raise DataError(f"{what} holds {sorted(map(str, uniques))[:5]}; say which is positive with --positive")


def _columns(data, names: list[str], what: str) -> None:
    missing = [c for c in names if c not in data.columns]
    if missing:
        raise DataError(
            f"{what}: no column {', '.join(missing)} in the data (columns: {', '.join(map(str, data.columns))})"
        )


def _complete(data, path: Path, names: list[str], what: str) -> None:
    """Every row has a value in these columns: a blank is not a group, and not an outcome."""
    for name in names:
        blank = data[name].isna().to_numpy()
        if blank.any():
            raise DataError(
                f"{what}: {path}: column {name!r} has {int(blank.sum())} missing value(s), the first "
                f"in data row {int(blank.argmax()) + 1}; fill or drop them first"
            )


def _several_groups(data, path: Path, protected: list[str], what: str) -> None:
    for name in protected:
        values = data[name].unique()
        if len(values) < 2:
            raise DataError(
                f"{what}: {path}: protected column {name!r} holds one value "
                f"({str(values[0]) if len(values) else 'no rows'!r}): there are no groups to compare"
            )


def _both_outcomes(labels, values, positive: str | None, what: str) -> None:
    if len(set(labels.tolist())) < 2:
        seen = ", ".join(sorted(map(str, values.unique()))[:5])
        hint = (
            f"no row equal to --positive {positive!r}"
            if positive is not None and not labels.any()
            else "one class only"
        )
        raise DataError(f"{what} has {hint} (values: {seen}); fairness needs rows of both outcomes")


@contextmanager
def _model_errors(path: Path):
    """The model refusing the data (NaN, wrong dtypes, wrong width) is a data error, not a crash."""
    try:
        yield
    except LineageError:  # ours already says what is wrong (an Invalid one is a ValueError too)
        raise
    except (ValueError, TypeError, KeyError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"the model cannot be applied to {path}: {first}") from None


@click.command()
@click.argument("model_id", metavar="MODEL@VERSION")
@model_options
@data_options
@click.option("--protected", multiple=True, help="A protected column, for proxy detection (repeatable).")
@click.option("--drop", multiple=True, help="A column the model does not take (repeatable).")
@click.option(
    "--max-rows", default=1000, show_default=True, type=click.IntRange(1), help="Rows explained (sampled with --seed)."
)
@click.option("--background-rows", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@store_option
@actor_option
@json_option
@domain_errors
def explain(
    model_id,
    model_file,
    trust_pickle,
    allow_unrecorded,
    data_file,
    target,
    dataset,
    sep,
    protected,
    drop,
    max_rows,
    background_rows,
    seed,
    store_url,
    actor,
    as_json,
):
    """Explain a model with SHAP and record the explanation as evidence.

    Records global importance (mean |SHAP| and share per feature), the
    explainer, background, seed, library versions and the additivity residual;
    with --protected, how well each feature predicts each protected column.
    A protected column with a missing value or a single value, a file that is
    not a model, or data the model refuses is an error (exit 1). The model
    file must be the artifact lineage records for the version (same SHA-256),
    unless --allow-unrecorded-artifact, which the evidence then records.

    \b
    Example:
        auditgraph governance explain model:ml/income@1 --model-file income.skops --data adult.csv --target income --protected sex --protected race
    """
    require("explain", "numpy", "pandas", "sklearn", "shap")
    from governance import explain as explaining
    from governance.modelfiles import load_data

    with connect(store_url) as store:
        model, model_digest, matched = _model(store, model_id, model_file, trust_pickle, allow_unrecorded)
        data = load_data(data_file, sep)
        _columns(data, [target, *protected], "explain")
        _complete(data, data_file, list(protected), "explain")
        _several_groups(data, data_file, list(protected), "explain")
        X = _features(model, data, target, list(protected), list(drop))
        with _model_errors(data_file):
            result = explaining.explain(
                model,
                X,
                max_rows=max_rows,
                background_rows=background_rows,
                seed=seed,
                protected=data[list(protected)] if protected else None,
            )
        from lineage.canonical import file_digest

        seq = explaining.record(
            store,
            model_id,
            result,
            default_actor(actor),
            dataset,
            file_digest(data_file),
            model_digest=model_digest,
            artifact_recorded=matched,
        )
    if as_json:
        emit_json({"seq": seq, **result})
        return
    click.echo(
        f"{result['explainer']} explainer, {result['output']} output, {result['rows_explained']} rows; "
        f"additivity residual max {result['additivity']['max']:.3g} (ledger {seq})"
    )
    render.table(
        "global importance",
        ["feature", "mean |SHAP|", "share"],
        ((i["feature"], f"{i['mean_abs_shap']:.4f}", f"{i['share']:.1%}") for i in result["importance"][:15]),
    )
    for column, scores in (result.get("proxies") or {}).items():
        top = list(scores.items())[:3]
        click.echo(f"best predictors of {column}: " + ", ".join(f"{f} (AUC {a:.2f})" for f, a in top))


@click.command()
@click.argument("model_id", metavar="MODEL@VERSION")
@model_options
@data_options
@click.option("--protected", multiple=True, required=True, help="A protected column (repeatable).")
@click.option("--positive", default=None, help="The target value that is the favourable outcome (e.g. '>50K').")
@click.option("--predictions", default=None, help="Take decisions from this column instead of a model file.")
@click.option("--predicted-positive", default=None, help="With --predictions: the value that is a positive decision.")
@click.option("--drop", multiple=True, help="A column the model does not take (repeatable).")
@click.option(
    "--intersections/--no-intersections",
    default=True,
    show_default=True,
    help="With several protected columns, also assess their intersection.",
)
@click.option("--min-group-size", default=30, show_default=True, type=click.IntRange(1))
@click.option(
    "--bootstrap", default=200, show_default=True, type=click.IntRange(0), help="Resamples for the intervals."
)
@click.option("--seed", default=0, show_default=True, type=int)
@store_option
@actor_option
@json_option
@domain_errors
def fairness(
    model_id,
    model_file,
    trust_pickle,
    allow_unrecorded,
    data_file,
    target,
    dataset,
    sep,
    protected,
    positive,
    predictions,
    predicted_positive,
    drop,
    intersections,
    min_group_size,
    bootstrap,
    seed,
    store_url,
    actor,
    as_json,
):
    """Assess fairness across protected groups (fairlearn) and record it as evidence.

    Per group: size, selection rate, TPR, FPR, FNR, accuracy; across groups:
    demographic parity and equalized odds (difference and ratio), equal
    opportunity difference, each with a bootstrap interval. Missing values in
    the target, a protected column or --predictions, a target with one class,
    or a protected column with one value are errors (exit 1). A model file must
    be the artifact lineage records for the version (same SHA-256), unless
    --allow-unrecorded-artifact, which the evidence then records.

    \b
    Example:
        auditgraph governance fairness model:ml/income@1 --model-file income.skops --data adult.csv --target income --positive '>50K' --protected sex
    """
    require("explain", "numpy", "pandas", "sklearn", "fairlearn")
    import pandas as pd

    from governance import fairness as fair
    from governance.modelfiles import load_data

    with connect(store_url) as store:
        data = load_data(data_file, sep)
        needed = [target, *protected] + ([predictions] if predictions else [])
        _columns(data, needed, "fairness")
        _complete(data, data_file, needed, "fairness")
        _several_groups(data, data_file, list(protected), "fairness")
        y_true = _labels(data[target], positive, f"target {target!r}")
        _both_outcomes(y_true, data[target], positive, f"fairness: {data_file}: target {target!r}")
        model_digest = matched = None
        if predictions:
            y_pred = _labels(data[predictions], predicted_positive, f"predictions {predictions!r}")
        else:
            model, model_digest, matched = _model(store, model_id, model_file, trust_pickle, allow_unrecorded)
            with _model_errors(data_file):
                raw = model.predict(_features(model, data, target, list(protected), list(drop)))
            y_pred = _labels(pd.Series(raw), positive if positive in map(str, pd.unique(raw)) else None, "predictions")
        sets = [[p] for p in protected] + ([list(protected)] if intersections and len(protected) > 1 else [])
        from lineage.canonical import file_digest

        digest = file_digest(data_file)
        out = []
        for columns in sets:
            result = fair.assess(
                y_true, y_pred, data[columns], min_group_size=min_group_size, bootstrap=bootstrap, seed=seed
            )
            seq = fair.record(
                store,
                model_id,
                result,
                default_actor(actor),
                dataset,
                digest,
                target,
                model_digest=model_digest,
                artifact_recorded=matched,
            )
            out.append({"seq": seq, **result})
    if as_json:
        emit_json(out)
        return
    for result in out:
        click.echo(f"{' & '.join(result['protected'])} (ledger {result['seq']}):")
        render.table(
            None,
            ["group", "n", "selection rate", "TPR", "FPR", "accuracy", "note"],
            (
                (
                    g["group"],
                    g["n"],
                    g["selection_rate"],
                    g["tpr"],
                    g["fpr"],
                    g["accuracy"],
                    "too small" if g["too_small"] else "",
                )
                for g in result["groups"]
            ),
        )
        for name, m in result["metrics"].items():
            ci = f" [{m['ci'][0]}, {m['ci'][1]}]" if m["ci"] else ""
            click.echo(f"  {name}: {m['value']}{ci}")


COMMANDS = (explain, fairness)
