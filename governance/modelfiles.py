"""Loading model and data files for explanation and fairness checks.

A model file is code as much as data, so:

* ``.skops`` files load with skops, which rebuilds objects without pickle by
  importing each type the file names and calling it. Every node of the file is
  checked against ``SKOPS_ALLOWED``, the exact estimators, transformers,
  pipelines and array types the project supports, before anything is imported:
  a name outside it (a function, a method, an alias of an allowed type, a type
  skops itself trusts by default) is refused and named. Before that, sizes are
  read from the zip directory, nothing inflated: a file may unpack to at most
  its own size plus ``MAX_SKOPS_EXTRA_BYTES``, and its ``schema.json`` is capped
  in bytes and in nodes, so a small file cannot make a large load.
* After loading and before any predict, ``governance.modelcheck`` checks that
  every estimator's fitted state agrees with its settings and with the
  estimators it holds (tree indices, ensemble shapes, coefficient shapes...),
  which scikit-learn's compiled code follows without bounds checks.
* ``.pkl``/``.pickle``/``.joblib`` files are unpickled only when the operator
  says this file is trusted (``trust_pickle``) *and* its SHA-256 equals the
  artifact digest recorded in lineage for the model version, so the file is
  the one that was trained, not one swapped in since.
* Whatever loads must be a model: something with a ``predict`` method.
* Data files are read with pandas (CSV) or pyarrow (Parquet): plain values, no code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from governance.errors import ArtifactError, MissingFileError, ModelFileError
from governance.modelcheck import FittedStateError, check_model
from lineage.canonical import file_digest
from lineage.extras import require

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# Declared sizes, read from the zip directory before anything is inflated (zipfile inflates no more than declared).
# Real files are small next to these: skops stores members uncompressed, so a 300-tree forest on Adult unpacks
# to its own 228 MB; its schema.json is 6.5 MB with 19,439 JSON objects and arrays (500 boosted trees: 14 MB, 40,570).
MAX_SKOPS_EXTRA_BYTES = 256 << 20  # unpacked bytes beyond the file's own size: what a compressed file may add
MAX_SKOPS_SCHEMA_BYTES = 64 << 20
MAX_SKOPS_SCHEMA_NODES = 1_000_000  # JSON objects and arrays, counted before parsing


def _names(module: str, names: str) -> set[str]:
    return {f"{module}.{name}" for name in names.split()}


# The exact types a supported model may hold, as skops names them. Names are not
# prefixes: ``sklearn.utils._testing.f`` is as foreign as ``os.system``. Left out
# on purpose: functions other than a few NumPy ufuncs (a function is a call
# waiting to happen), methods, ``functools.partial``, and estimators whose fitted
# state feeds C code unchecked indices (SVC's libsvm model, KD and ball trees,
# HistGradientBoosting's TreePredictor).
SKOPS_ALLOWED = frozenset(
    set().union(
        _names("builtins", "dict list tuple set slice str int float bool bytes"),
        _names("collections", "OrderedDict"),
        _names(
            "numpy",
            "ndarray dtype bool bytes_ str_ object_ float16 float32 float64 longdouble int8 int16 int32 "
            "int64 longlong uint8 uint16 uint32 uint64 ulonglong datetime64 timedelta64",
        ),
        _names("numpy", "log log1p log2 log10 exp expm1 sqrt square abs absolute negative sign"),  # FunctionTransformer
        _names("numpy.random.mtrand", "RandomState"),
        _names("sklearn.pipeline", "Pipeline FeatureUnion"),
        _names("sklearn.compose._column_transformer", "ColumnTransformer"),
        _names("sklearn.preprocessing._encoders", "OneHotEncoder OrdinalEncoder"),
        _names("sklearn.preprocessing._data", "StandardScaler MinMaxScaler MaxAbsScaler RobustScaler"),
        _names("sklearn.preprocessing._discretization", "KBinsDiscretizer"),
        _names("sklearn.preprocessing._polynomial", "PolynomialFeatures"),
        _names("sklearn.preprocessing._function_transformer", "FunctionTransformer"),
        _names("sklearn.preprocessing._label", "LabelEncoder LabelBinarizer"),
        _names("sklearn.impute._base", "SimpleImputer"),
        _names("sklearn.decomposition._pca", "PCA"),
        _names("sklearn.feature_selection._variance_threshold", "VarianceThreshold"),
        _names("sklearn.ensemble._gb", "GradientBoostingClassifier GradientBoostingRegressor"),
        _names(
            "sklearn.ensemble._forest",
            "RandomForestClassifier RandomForestRegressor ExtraTreesClassifier ExtraTreesRegressor",
        ),
        _names("sklearn.ensemble._weight_boosting", "AdaBoostClassifier AdaBoostRegressor"),
        _names(
            "sklearn.tree._classes",
            "DecisionTreeClassifier DecisionTreeRegressor ExtraTreeClassifier ExtraTreeRegressor",
        ),
        _names("sklearn.tree._tree", "Tree"),
        _names("sklearn.linear_model._logistic", "LogisticRegression"),
        _names("sklearn.linear_model._base", "LinearRegression"),
        _names("sklearn.linear_model._ridge", "Ridge RidgeClassifier"),
        _names("sklearn.linear_model._coordinate_descent", "Lasso ElasticNet"),
        _names("sklearn.linear_model._stochastic_gradient", "SGDClassifier SGDRegressor"),
        _names(
            "sklearn.linear_model._sgd_fast",
            "Hinge SquaredHinge ModifiedHuber EpsilonInsensitive SquaredEpsilonInsensitive",
        ),
        _names("sklearn.svm._classes", "LinearSVC"),
        _names("sklearn.naive_bayes", "GaussianNB BernoulliNB"),
        _names("sklearn.neural_network._multilayer_perceptron", "MLPClassifier MLPRegressor"),
        _names("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer SGDOptimizer"),
        _names("sklearn.dummy", "DummyClassifier DummyRegressor"),
        _names("sklearn.calibration", "CalibratedClassifierCV _CalibratedClassifier _SigmoidCalibration"),
        _names(
            "sklearn._loss.loss",
            "HalfBinomialLoss HalfMultinomialLoss HalfSquaredError AbsoluteError ExponentialLoss HuberLoss PinballLoss",
        ),
        _names(
            "sklearn._loss._loss",
            "CyHalfBinomialLoss CyHalfMultinomialLoss CyHalfSquaredError CyAbsoluteError "
            "CyExponentialLoss CyHuberLoss CyPinballLoss",
        ),
        _names("sklearn._loss.link", "IdentityLink LogitLink HalfLogitLink MultinomialLogit Interval"),
    )
)
# The node kinds those types are saved as. Left out: MethodNode, PartialNode,
# OperatorFuncNode and ConstructorFromReduceNode (which calls the named type
# with arguments from the file), and kinds no supported model uses.
SKOPS_LOADERS = frozenset(
    {
        "DictNode",
        "ListNode",
        "TupleNode",
        "SetNode",
        "SliceNode",
        "JsonNode",
        "TypeNode",
        "DTypeNode",
        "NdArrayNode",
        "RandomStateNode",
        "ObjectNode",
        "LossNode",
        "TreeNode",
        "FunctionNode",
        "BytesNode",
    }
)


def load_model(path: Path, *, trust_pickle: bool = False, expected_digest: str | None = None) -> Any:
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    if path.suffix == ".skops":
        model = _load_skops(path)
    elif path.suffix in PICKLE_SUFFIXES:
        model = _load_trusted_pickle(path, trust_pickle, expected_digest)
    else:
        raise ModelFileError(f"{path}: unknown model format {path.suffix!r}; use .skops (or a trusted .pkl/.joblib)")
    if not callable(getattr(model, "predict", None)):
        raise ModelFileError(
            f"{path}: holds a {type(model).__module__}.{type(model).__name__}, not a model (it has no predict method)"
        )
    return model


def skops_types(path: Path, data: bytes) -> set[str]:
    """Every type, function and method the skops file ``data`` names, the ones skops trusts by default included."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_sizes(path, archive, len(data))
            text = archive.read("schema.json")
        nodes = text.count(b"{") + text.count(b"[")  # an upper bound (brackets in strings count too), bytes-fast
        if nodes > MAX_SKOPS_SCHEMA_NODES:
            raise ModelFileError(
                f"{path}: schema.json holds up to {nodes} JSON objects and arrays, over the "
                f"{MAX_SKOPS_SCHEMA_NODES} limit; refusing to parse it"
            )
        schema = json.loads(text)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, OSError, EOFError) as e:
        raise ModelFileError(f"{path}: not a readable skops file ({type(e).__name__}: {e})") from None
    names: set[str] = set()
    stack = [schema]
    while stack:  # iterative: a deeply nested file must not exhaust the stack
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if "__loader__" in item:
                names.add(_node_name(path, item))
            stack.extend(item.values())
    return names


def _check_sizes(path: Path, archive: zipfile.ZipFile, size: int) -> None:
    """Refuse, from the zip directory alone, a file that would unpack to far more than it is."""
    members = archive.infolist()
    unpacked = sum(member.file_size for member in members)
    if unpacked > size + MAX_SKOPS_EXTRA_BYTES:
        raise ModelFileError(
            f"{path}: unpacks to {unpacked} bytes from {size}, over the limit of its own size plus "
            f"{MAX_SKOPS_EXTRA_BYTES}; refusing to inflate it"
        )
    schema = max((m.file_size for m in members if m.filename == "schema.json"), default=0)
    if schema > MAX_SKOPS_SCHEMA_BYTES:
        raise ModelFileError(
            f"{path}: schema.json unpacks to {schema} bytes, over the {MAX_SKOPS_SCHEMA_BYTES} "
            "limit; refusing to inflate it"
        )


def _node_name(path: Path, node: dict) -> str:
    loader, module, name = node.get("__loader__"), node.get("__module__"), node.get("__class__")
    if not all(isinstance(v, str) for v in (loader, module, name)):
        raise ModelFileError(f"{path}: not a readable skops file (a node without a loader, module or class name)")
    full = f"{module}.{name}"
    if loader == "JsonNode":
        return "builtins.str"  # plain JSON: skops parses it and imports nothing
    if loader == "MethodNode":
        content = node.get("content")
        return f"{full}.{content.get('func') if isinstance(content, dict) else '?'} (a method)"
    return full if loader in SKOPS_LOADERS else f"{full} (as {loader})"


def _load_skops(path: Path) -> Any:
    require("explain", "skops")
    from skops.io import loads

    data = path.read_bytes()  # read once: what is checked is what is loaded
    names = skops_types(path, data)
    refused = sorted(names - SKOPS_ALLOWED)
    if refused:
        raise ModelFileError(
            f"{path}: refusing to load types outside the supported scikit-learn and NumPy types: {', '.join(refused)}"
        )
    try:
        model = loads(data, trusted=sorted(names))
    except Exception as e:  # skops and the constructors it calls raise anything on a malformed file
        raise ModelFileError(f"{path}: not a loadable skops file ({type(e).__name__}: {e})") from None
    try:
        check_model(model)
    except FittedStateError as e:
        raise ModelFileError(f"{path}: {e}; refusing to load it") from None
    return model


def _load_trusted_pickle(path: Path, trust_pickle: bool, expected_digest: str | None) -> Any:
    if not trust_pickle:
        raise ModelFileError(
            f"{path}: refusing to unpickle (loading a pickle runs code). Save the model with "
            "skops, or pass --trust-pickle if you trust this file"
        )
    actual = file_digest(path)
    if expected_digest is None:
        raise ArtifactError(
            f"{path}: no artifact digest is recorded for this model version, so the file "
            "cannot be checked against lineage; record it (SDK run.model(path=...)) or use skops"
        )
    if actual != expected_digest:
        raise ArtifactError(f"{path}: digest {actual} differs from the recorded artifact {expected_digest}")
    require("explain", "joblib")
    import joblib  # trusted: the operator named this file and its digest matches lineage

    return joblib.load(path)


def load_data(path: Path, sep: str | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        if path.suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=sep or ",", skipinitialspace=True)
    except ImportError as e:
        raise ModelFileError(f"{path}: reading Parquet needs pyarrow ({e})") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ModelFileError(
            f"{path}: cannot read as {'Parquet' if path.suffix in ('.parquet', '.pq') else 'CSV'}: {e}"
        ) from None
