"""Loading model and data files for explanation and fairness checks.

A model file is code as much as data, so:

* ``.skops`` files load with skops, which rebuilds objects without pickle;
  types from scikit-learn, NumPy and SciPy are accepted, any other type is
  refused and named.
* ``.pkl``/``.pickle``/``.joblib`` files are unpickled only when the operator
  says this file is trusted (``trust_pickle``) *and* its SHA-256 equals the
  artifact digest recorded in lineage for the model version, so the file is
  the one that was trained, not one swapped in since.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from governance.errors import GovernanceError
from lineage.sdk import file_digest

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


class ModelFileError(GovernanceError):
    """A model or data file cannot be loaded safely or at all."""


def load_model(path: Path, *, trust_pickle: bool = False, expected_digest: str | None = None) -> Any:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if path.suffix == ".skops":
        return _load_skops(path)
    if path.suffix in PICKLE_SUFFIXES:
        return _load_trusted_pickle(path, trust_pickle, expected_digest)
    raise ModelFileError(f"{path}: unknown model format {path.suffix!r}; use .skops (or a trusted .pkl/.joblib)")


TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")  # skops rebuilds these itself; nothing is unpickled


def _load_skops(path: Path, extra_trusted: tuple[str, ...] = ()) -> Any:
    from skops.io import get_untrusted_types, load

    try:
        untrusted = get_untrusted_types(file=path)
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable skops file ({e})") from None
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_MODULES) and t not in extra_trusted]
    if unknown:
        raise ModelFileError(f"{path}: holds types outside scikit-learn, NumPy and SciPy: {', '.join(unknown)}")
    return load(path, trusted=untrusted)


def _load_trusted_pickle(path: Path, trust_pickle: bool, expected_digest: str | None) -> Any:
    if not trust_pickle:
        raise ModelFileError(f"{path}: refusing to unpickle (loading a pickle runs code). Save the model with "
                             "skops, or pass --trust-pickle if you trust this file")
    actual = file_digest(path)
    if expected_digest is None:
        raise ModelFileError(f"{path}: no artifact digest is recorded for this model version, so the file "
                             "cannot be checked against lineage; record it (SDK run.model(path=...)) or use skops")
    if actual != expected_digest:
        raise ModelFileError(f"{path}: digest {actual} differs from the recorded artifact {expected_digest}")
    import joblib  # trusted: the operator named this file and its digest matches lineage

    return joblib.load(path)


def load_data(path: Path, sep: str | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        if path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=sep or ",", skipinitialspace=True)
    except ImportError as e:
        raise ModelFileError(f"{path}: reading Parquet needs pyarrow ({e})") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: cannot read as {'Parquet' if path.suffix in ('.parquet', '.pq') else 'CSV'}: {e}") from None
