"""Record a training run's provenance in a few lines.

    from lineage.sdk import TrainingRun

    with TrainingRun("train_churn", namespace="ml") as run:
        run.input("s3://lake", "features/churn.parquet")
        run.params(n_estimators=200, max_depth=6)
        model = fit(...)
        run.metrics(auc=0.91)
        run.model("ml", "churn-classifier", path="model.skops", framework="sklearn")

START is emitted on entry and COMPLETE (or FAIL, with the error) on exit,
through the openlineage-python client, so every OpenLineage transport works:
HTTP to ``auditgraph serve``, file, console, Kafka. Without a client argument
the client is configured the OpenLineage way (``OPENLINEAGE_URL`` and
``OPENLINEAGE_API_KEY``, ``OPENLINEAGE_CONFIG``, ``openlineage.yml``).

What is recorded: inputs and outputs (with versions when given), the code
version (git commit of the working tree, its remote, and whether the tree was
dirty), parameters and metrics (run facet ``auditgraph_training``) and the
model artifact (output marked ``datasetType: MODEL``, versioned, with facet
``auditgraph_model``: framework, task, SHA-256 of the file, metrics).

Failures inside the SDK (no server, a bad path) are logged and never break the
training job, unless ``strict=True``. The user's own exceptions always propagate.
"""

from __future__ import annotations

import functools
import inspect
import logging
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    RunFacet,
    dataset_type_dataset,
    dataset_version_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
    source_code_location_job,
)

from lineage.canonical import file_digest
from lineage.clock import utc_now
from lineage.ids import model_id

log = logging.getLogger(__name__)
PRODUCER = "https://github.com/auditgraph/auditgraph/tree/0.1.0/lineage/sdk.py"
SCHEMA_BASE = "https://auditgraph.dev/spec/facets/1-0-0"


@attr.define
class TrainingFacet(RunFacet):
    """auditgraph_training: the run's parameters and metrics."""

    params: dict = attr.field(factory=dict)
    metrics: dict = attr.field(factory=dict)
    codeDirty: bool | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/TrainingRunFacet.json#/$defs/TrainingRunFacet"


@attr.define
class ModelFacet(DatasetFacet):
    """auditgraph_model: what the model artifact is."""

    version: str = attr.field()
    artifactDigest: str | None = attr.field(default=None)  # noqa: N815
    artifactUri: str | None = attr.field(default=None)  # noqa: N815
    framework: str | None = attr.field(default=None)
    task: str | None = attr.field(default=None)
    metrics: dict = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/ModelDatasetFacet.json#/$defs/ModelDatasetFacet"


def git_state(path: str | Path = ".") -> dict[str, Any] | None:
    """The commit, remote url and dirty flag of the git work tree at ``path``, or None."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=path, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        remote = git("remote", "get-url", "origin")
    except subprocess.SubprocessError:
        remote = Path(git("rev-parse", "--show-toplevel")).as_uri()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "url": remote, "dirty": dirty}


class TrainingRun:
    """A context manager that records one training run as OpenLineage events."""

    def __init__(
        self,
        job: str,
        namespace: str = "default",
        *,
        client: OpenLineageClient | None = None,
        strict: bool = False,
        code_path: str | Path = ".",
        run_id: str | None = None,
        parent: tuple[str, str, str] | None = None,
    ):
        self.job, self.namespace, self.strict = job, namespace, strict
        self.run_id = run_id or str(uuid.uuid4())
        self.parent = parent  # (namespace, job name, run id) of an orchestrating run
        self.code_path = code_path
        self._client = client
        self._inputs: list[InputDataset] = []
        self._outputs: list[OutputDataset] = []
        self._params: dict[str, Any] = {}
        self._metrics: dict[str, Any] = {}
        self._code: dict[str, Any] | None = None

    # --- recording -----------------------------------------------------------

    def input(
        self, namespace: str, name: str, *, version: str | None = None, schema: dict[str, str] | None = None
    ) -> TrainingRun:
        self._inputs.append(InputDataset(namespace=namespace, name=name, facets=_dataset_facets(version, schema)))
        return self

    def output(
        self, namespace: str, name: str, *, version: str | None = None, schema: dict[str, str] | None = None
    ) -> TrainingRun:
        self._outputs.append(OutputDataset(namespace=namespace, name=name, facets=_dataset_facets(version, schema)))
        return self

    def params(self, **values: Any) -> TrainingRun:
        self._params.update(values)
        return self

    def metrics(self, **values: Any) -> TrainingRun:
        self._metrics.update(values)
        return self

    def model(
        self,
        namespace: str,
        name: str,
        *,
        path: str | Path | None = None,
        version: str | None = None,
        framework: str | None = None,
        task: str | None = None,
        uri: str | None = None,
    ) -> str:
        """Mark the run's model artifact; return its model id (``model:ns/name@version``)."""
        digest = self._guard(file_digest, path) if path is not None else None
        version = version or (digest.split(":")[1][:12] if digest else self.run_id)
        facets = {
            "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="MODEL"),
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version),
            "auditgraph_model": ModelFacet(
                version=version,
                artifactDigest=digest,
                artifactUri=uri or (Path(path).resolve().as_uri() if path else None),
                framework=framework,
                task=task,
                metrics=self._metrics,
            ),
        }
        self._outputs.append(OutputDataset(namespace=namespace, name=name, facets=facets))
        return model_id(namespace, name, version)

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> TrainingRun:
        self._code = self._guard(git_state, self.code_path)
        self._emit(RunState.START)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is None:
            self._emit(RunState.COMPLETE)
        else:
            self._emit(RunState.FAIL, error=exc)
        return False  # the user's exception, if any, goes on

    @property
    def client(self) -> OpenLineageClient:
        if self._client is None:
            self._client = OpenLineageClient()
        return self._client

    def event(self, state: RunState, error: BaseException | None = None) -> RunEvent:
        run_facets: dict[str, RunFacet] = {
            "auditgraph_training": TrainingFacet(
                params=self._params, metrics=self._metrics, codeDirty=self._code["dirty"] if self._code else None
            )
        }
        if self.parent:
            ns, name, rid = self.parent
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=rid), job=parent_run.Job(namespace=ns, name=name)
            )
        if error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {error}", programmingLanguage="PYTHON"
            )
        job_facets: dict[str, JobFacet] = {}
        if self._code:
            job_facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
                type="git", url=self._code["url"], repoUrl=self._code["url"], version=self._code["commit"]
            )
        return RunEvent(
            eventType=state,
            eventTime=utc_now().isoformat(),
            run=Run(runId=self.run_id, facets=run_facets),
            job=Job(namespace=self.namespace, name=self.job, facets=job_facets),
            producer=PRODUCER,
            inputs=list(self._inputs),
            outputs=list(self._outputs),
        )

    def _emit(self, state: RunState, error: BaseException | None = None) -> None:
        self._guard(lambda: self.client.emit(self.event(state, error)))

    def _guard(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as e:
            if self.strict:
                raise
            log.warning(
                "auditgraph SDK: %s failed: %s (the training job goes on; strict=True to fail)",
                getattr(fn, "__name__", "emit"),
                e,
            )
            return None


def _dataset_facets(version: str | None, schema: dict[str, str] | None) -> dict[str, DatasetFacet]:
    facets: dict[str, DatasetFacet] = {}
    if version:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
    if schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=k, type=v) for k, v in schema.items()]
        )
    return facets


def training_run(job: str, namespace: str = "default", **options: Any) -> Callable:
    """Decorator form of ``TrainingRun``; the function gets the run as ``run=`` if it takes one.

    @training_run("train_churn", namespace="ml")
    def train(run):
        run.input("s3://lake", "features")
    """

    def decorate(fn: Callable) -> Callable:
        wants_run = "run" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with TrainingRun(job, namespace, **options) as run:
                return fn(*args, **({"run": run} if wants_run else {}), **kwargs)

        return wrapper

    return decorate
