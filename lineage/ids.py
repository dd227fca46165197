"""Stable, printable node ids, and the one parser for them.

Forms (DESIGN.md):

    dataset:<namespace>/<name>[@<version>]
    model:<namespace>/<name>[@<version>]
    job:<namespace>/<name>
    run:<run id>
    code:<repository url>@<revision>

OpenLineage namespaces and names contain ``/``, ``:``, ``.`` and ``@``
(``gs://bucket``, ``abfss://container@account.dfs.core.windows.net``,
``/tmp/cll_test/tbl1``), so the printed form escapes just enough to be
unambiguous, and every id round-trips: ``parse_id(str(x)) == x``.

* In a namespace, ``%``, ``@`` and every ``/`` are percent-encoded, except the
  ``//`` of a leading ``scheme://``, which stays readable. The namespace ends
  at the first ``/`` that is left.
* In a name, ``%`` and ``@`` are percent-encoded; ``/`` stays as it is.
* The version is everything after the first ``@`` that follows the namespace.
* A code id's url escapes ``%``; its revision escapes ``%`` and ``@``, so the
  revision is everything after the last ``@`` (``git@host:org/repo.git`` urls
  keep theirs readable).

Distinct (kind, namespace, name, version) give distinct ids, whatever the
characters (``@``, ``/``, ``%``, ``:``, NUL, newline).

An id a person or client hands us is at most ``MAX_ID_BYTES`` (4 KiB of
UTF-8); ``check_length`` refuses a longer one before any work is done on it.
Resolving an unescaped id tries at most ``MAX_READINGS`` readings, generated
lazily, so the work done for any id is bounded and linear in its length.

So ``gs://bucket`` + ``data/part.csv`` prints as ``dataset:gs://bucket/data/part.csv``
and ``file`` + ``/tmp/x`` as ``dataset:file//tmp/x``. A person who pastes a form
that is not canonical (``dataset:file:///tmp/x`` for namespace ``file:///tmp``)
is helped by ``Graph.resolve``, which tries the other readings against the store.

Pasted URIs: a dataset's location as a URI (``file:///tmp/x.csv``,
``s3://bucket/key``, ``hdfs://nn:8020/warehouse/t``), bare or after
``dataset:``/``model:``, is also read the way OpenLineage's naming spec splits
it: namespace ``scheme://authority`` (or ``file`` when the authority is empty)
and the path as the name, with and without its leading ``/``. These are a few
more readings among the bounded ones; they never add one the store does not
hold, and two that it holds are reported as ambiguous, never guessed between.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from lineage.errors import IdError, IdTooLongError


class NodeKind(StrEnum):
    """What a node is. The value is the label used by graph backends."""

    DATASET = "Dataset"
    DATASET_VERSION = "DatasetVersion"
    JOB = "Job"
    RUN = "Run"
    CODE = "CodeVersion"
    MODEL = "Model"
    MODEL_VERSION = "ModelVersion"


PREFIXES = ("dataset", "model", "job", "run", "code")
_ENTITY = {"dataset": NodeKind.DATASET, "model": NodeKind.MODEL}
_VERSION = {"dataset": NodeKind.DATASET_VERSION, "model": NodeKind.MODEL_VERSION}
_OTHER = {"job": NodeKind.JOB, "run": NodeKind.RUN, "code": NodeKind.CODE}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
MAX_ID_BYTES = 4096  # an id handed to us longer than this is refused (IdTooLongError)
MAX_READINGS = 64  # Graph.resolve tries at most this many unescaped readings of one id
_CACHED_LENGTH = 512  # longer names are escaped each time, so the caches' memory stays bounded


class NodeId(BaseModel):
    """A parsed node id. ``str()`` gives the canonical printed form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str
    namespace: str = ""
    name: str = ""
    version: str | None = None

    @property
    def kind(self) -> NodeKind:
        if self.prefix in _ENTITY:
            return _VERSION[self.prefix] if self.version is not None else _ENTITY[self.prefix]
        return _OTHER[self.prefix]

    def entity(self) -> NodeId:
        """The unversioned dataset or model this version belongs to."""
        return self.model_copy(update={"version": None})

    def __str__(self) -> str:
        if self.prefix == "run":
            return f"run:{self.name}"
        if self.prefix == "code":
            return code_id(self.namespace, self.version or "")
        return _format(self.prefix, self.namespace, self.name, self.version)


def _format(prefix: str, namespace: str, name: str, version: str | None) -> str:
    # The hot path of ingestion: the same text as str(NodeId(...)), without building a model.
    if len(namespace) + len(name) <= _CACHED_LENGTH:
        text = _cached_entity_text(prefix, namespace, name)
    else:
        text = _entity_text(prefix, namespace, name)
    return text if version is None else f"{text}@{version}"


def _entity_text(prefix: str, namespace: str, name: str) -> str:
    return f"{prefix}:{_escape_namespace(namespace, name)}/{_escape_name(name)}"


@lru_cache(maxsize=1 << 17)
def _cached_entity_text(prefix: str, namespace: str, name: str) -> str:
    """Datasets, models and jobs recur in event after event: each id is escaped once."""
    return _entity_text(prefix, namespace, name)


def dataset_id(namespace: str, name: str, version: str | None = None) -> str:
    return _format("dataset", namespace, name, version)


def model_id(namespace: str, name: str, version: str | None = None) -> str:
    return _format("model", namespace, name, version)


def job_id(namespace: str, name: str) -> str:
    return _format("job", namespace, name, None)


def run_id(run: str) -> str:
    return f"run:{run}"


def code_id(url: str, revision: str) -> str:
    return f"code:{url.replace('%', '%25')}@{_escape_name(revision)}"


def check_length(text: str) -> None:
    """Refuse an id longer than MAX_ID_BYTES of UTF-8, before any other work is done on it."""
    if len(text) > MAX_ID_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise IdTooLongError(f"{shown(text)}: an id is at most {MAX_ID_BYTES} bytes (UTF-8)")


def shown(text: str, limit: int = 120) -> str:
    """An id quoted for a message, cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def kind_of(node_id: str) -> NodeKind:
    """The kind of a well-formed id, from its text alone (as ``parse_id(node_id).kind``, much faster).

    Namespaces and names escape '@' (%40), so an '@' after a dataset or model
    prefix can only start a version.
    """
    prefix, _, rest = node_id.partition(":")
    if prefix in _ENTITY:
        return _VERSION[prefix] if "@" in rest else _ENTITY[prefix]
    return _OTHER[prefix]


def parse_id(text: str) -> NodeId:
    """Parse a printed id; raise ``IdError`` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise IdError("empty id: expected one of " + ", ".join(f"'{p}:...'" for p in PREFIXES))
    prefix, sep, rest = text.partition(":")
    if not sep or prefix not in PREFIXES:
        raise IdError(
            f"{text!r}: unknown id kind {prefix!r}; expected one of " + ", ".join(f"'{p}:'" for p in PREFIXES)
        )
    if not rest:
        raise IdError(f"{text!r}: nothing after '{prefix}:'")
    if prefix == "run":
        return NodeId(prefix="run", name=rest)
    if prefix == "code":
        url, at, revision = rest.rpartition("@")
        if not at or not url or not revision:
            raise IdError(f"{text!r}: a code id is 'code:<repository url>@<revision>'")
        return NodeId(prefix="code", namespace=unquote(url), version=unquote(revision))
    return _parse_namespaced(text, prefix, rest)


def _parse_namespaced(text: str, prefix: str, rest: str) -> NodeId:
    start = len(m.group(0)) if (m := _SCHEME.match(rest)) else 0
    slash = rest.find("/", start)
    if slash <= 0:
        raise IdError(f"{text!r}: expected '{prefix}:<namespace>/<name>' (no '/' after the namespace)")
    namespace, tail = rest[:slash], rest[slash + 1 :]
    name, at, version = tail.partition("@")
    if not name:
        raise IdError(f"{text!r}: the name after '{namespace}/' is empty")
    if prefix == "job" and at:
        raise IdError(f"{text!r}: a job id has no version; '@' in a job name is written %40")
    if at and not version:
        raise IdError(f"{text!r}: '@' must be followed by a version")
    return NodeId(
        prefix=prefix,
        namespace=unquote(namespace),
        name=unquote(name),
        version=version if at else None,
    )


def is_bare_uri(text: str) -> bool:
    """A location pasted without an id prefix (``s3://bucket/key``, ``file:///tmp/x.csv``)."""
    return isinstance(text, str) and text.partition(":")[0] not in PREFIXES and _SCHEME.match(text) is not None


def alternative_readings(text: str) -> Iterator[NodeId]:
    """Each literal reading of an unescaped id, splitting namespace, name and version elsewhere.

    Used by ``Graph.resolve`` to accept ids pasted without escaping, such as
    ``dataset:file:///tmp/x`` for namespace ``file:///tmp`` and name ``x``,
    and pasted URIs (``file:///tmp/x.csv`` is namespace ``file``, name
    ``/tmp/x.csv``; a bare URI is read as a dataset, then as a model).
    Nothing is percent-decoded: the text is taken as the user typed it.
    Readings come lazily, split by split (namespace at the first ``/``, then
    the next...), so a caller that takes k of them does O(k * len(text)) work,
    however many ``/`` and ``@`` the text holds.
    """
    if is_bare_uri(text):
        for prefix in ("dataset", "model"):
            yield from _uri_readings(prefix, text)
            yield from _split_readings(prefix, text)
        return
    prefix, _, rest = text.partition(":")
    if prefix in ("dataset", "model"):
        yield from _uri_readings(prefix, rest)
    if prefix in ("dataset", "model", "job"):
        yield from _split_readings(prefix, rest)


_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://([^/]*)(/.+)$", re.DOTALL)


def _uri_readings(prefix: str, rest: str) -> Iterator[NodeId]:
    """OpenLineage's naming of a location URI: ``scheme://authority`` + path, ``file`` + path."""
    m = _URI.match(rest)
    if not m:
        return
    scheme, authority, path = m.groups()
    namespace = f"{scheme}://{authority}" if authority else scheme
    for name in (path, path[1:]) if authority else (path,):
        if name:
            yield NodeId(prefix=prefix, namespace=namespace, name=name)
        at = name.rfind("@")
        if at > 0 and at + 1 < len(name):
            yield NodeId(prefix=prefix, namespace=namespace, name=name[:at], version=name[at + 1 :])


def _split_readings(prefix: str, rest: str) -> Iterator[NodeId]:
    slash = rest.find("/", 1)
    while slash > 0:
        namespace, tail = rest[:slash], rest[slash + 1 :]
        if tail:
            yield NodeId(prefix=prefix, namespace=namespace, name=tail)
        at = tail.find("@", 1) if prefix != "job" else -1
        while at > 0:
            if at + 1 < len(tail):
                yield NodeId(prefix=prefix, namespace=namespace, name=tail[:at], version=tail[at + 1 :])
            at = tail.find("@", at + 1)
        slash = rest.find("/", slash + 1)


def _escape_name(name: str) -> str:
    if "%" not in name and "@" not in name:
        return name
    return name.replace("%", "%25").replace("@", "%40")


def _escape_namespace(namespace: str, name: str) -> str:
    if namespace.endswith(":") and name.startswith("/"):
        return _escape_scheme_like(namespace)
    return _escaped_namespace(namespace)


def _escape_scheme_like(namespace: str) -> str:
    # ``a:`` + ``/b`` would print as ``a://b`` and read back as a scheme.
    return _escaped_namespace(namespace)[:-1] + "%3A"


def _escaped_namespace(namespace: str) -> str:
    if len(namespace) <= _CACHED_LENGTH:
        return _cached_escaped_namespace(namespace)
    return _escape_namespace_text(namespace)


@lru_cache(maxsize=65536)
def _cached_escaped_namespace(namespace: str) -> str:
    """Namespaces repeat across millions of ids; escaping each once is enough."""
    return _escape_namespace_text(namespace)


def _escape_namespace_text(namespace: str) -> str:
    if not any(c in namespace for c in "%@/"):
        return namespace
    text = namespace.replace("%", "%25").replace("@", "%40")
    m = _SCHEME.match(text)
    head, tail = (m.group(0), text[m.end() :]) if m else ("", text)
    return head + tail.replace("/", "%2F")
