"""The lineage package's errors. Every error a user can cause is one of these.

Callers catch ``LineageError`` at one boundary each (the CLI's ``domain_errors``, the HTTP
app's exception handler) and show its message, which says what was wrong and where; the
class alone decides the exit code and the HTTP status (README "Exit codes"), never the text.
Governance's and reports' errors are these kinds too (``governance.errors``, ``reports.errors``).
"""


class LineageError(Exception):
    """Base class of every error raised by the lineage package.

    Each error says once how it is answered: ``http_status`` by the HTTP API and
    ``exit_code`` by the CLI (see ``EXIT_CODES``). Raise one of the six kinds below (or a
    subclass of one); a bare ``LineageError`` is answered as a server error.
    """

    http_status = 500
    exit_code = 70  # EX_SOFTWARE: a bug, not something the user did


class Invalid(LineageError, ValueError):
    """The input is wrong (a field, a value, a file's content); the message says what and where."""

    http_status = 422
    exit_code = 2


class NotFound(LineageError, LookupError):
    """What the input names does not exist (a node, an entry, a key, a file)."""

    http_status = 404
    exit_code = 4


class Conflict(LineageError):
    """The request is well formed but contradicts what is recorded (already exists, revoked, superseded)."""

    http_status = 409
    exit_code = 5


class Unauthorized(LineageError):
    """No credential, or one that does not verify."""

    http_status = 401
    exit_code = 6


class Forbidden(LineageError):
    """A verified credential that lacks the authority the request needs."""

    http_status = 403
    exit_code = 7


class Unavailable(LineageError):
    """Something the request needs cannot be reached or is not installed (a store, a server, an extra)."""

    http_status = 503
    exit_code = 3


# What the CLI's exit codes mean (README "Exit codes"); 1 is kept for a negative answer, not an error:
# a gate that blocks, a ledger or report that does not verify.
EXIT_CODES = {
    0: "success",
    1: "the answer is no (gate blocked, verification failed)",
    2: "invalid input or usage",
    3: "unavailable (store, server or extra)",
    4: "not found",
    5: "conflict",
    6: "unauthorized",
    7: "forbidden",
    70: "internal error",
}


class IdError(Invalid):
    """A node id cannot be parsed, is too long, or reads as more than one node."""


class NotFoundError(NotFound):
    """A well-formed id names no node in the store (or a dataset no such field)."""


class IdTooLongError(IdError):
    """An id handed to us is longer than ids may be (ids.MAX_ID_BYTES); nothing was looked up."""


class EventError(Invalid):
    """An OpenLineage event was rejected; the message names the field."""


class TimeRangeError(EventError):
    """A date-time is well formed but falls outside years 1-9999 once read in UTC."""


class InputError(Invalid):
    """An input file or stream could not be read as JSON events."""


class BodyError(Invalid):
    """An HTTP request body cannot be read as JSON at all: 400, as for a body that is not UTF-8 (422 is for
    JSON that reads but is wrong)."""

    http_status = 400


class TooLargeError(Invalid):
    """A request holds more than a limit allows (events in a batch): 413, as for a body over the size limit."""

    http_status = 413


class StoreUrlError(Invalid):
    """A store URL is malformed, names no known backend, or lacks what its backend needs (a password)."""


class StoreError(Unavailable):
    """The store cannot be opened or read, or a write failed; the message names the store (never its password)."""


class LedgerError(Conflict):
    """A ledger contradicts another or itself: a migration target holds a different ledger, or a source's chain
    is broken."""


class GraphError(Conflict):
    """The graph is not what its ledger projects (a node, edge, facet or column edge changed outside the write
    path); the message names what differs, ``auditgraph audit verify --graph`` lists all of it."""


class EntryError(Invalid):
    """A ledger entry's payload does not match its declared kind; the message names the field."""


class HookTargetError(Invalid):
    """A webhook URL was refused: its scheme, embedded credentials, or an address it resolves to."""
