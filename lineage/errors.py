"""The lineage package's errors. Every error a user can cause is one of these.

Callers catch ``LineageError`` at one boundary (the CLI, the HTTP app) and show
its message; the message says what was wrong and where.
"""


class LineageError(Exception):
    """Base class of every error raised by the lineage package."""


class IdError(LineageError, ValueError):
    """A node id could not be parsed or does not name a known node."""


class NotFoundError(IdError):
    """A well-formed id names no node in the store."""


class IdTooLongError(IdError):
    """An id handed to us is longer than ids may be (ids.MAX_ID_BYTES); nothing was looked up."""


class EventError(LineageError, ValueError):
    """An OpenLineage event was rejected; the message names the field."""


class TimeRangeError(EventError):
    """A date-time is well formed but falls outside years 1-9999 once read in UTC."""


class InputError(LineageError):
    """An input file or stream could not be read as JSON events."""


class StoreError(LineageError):
    """The store could not be opened or a backend operation failed."""


class LedgerError(LineageError):
    """The ledger is inconsistent or an entry could not be recorded."""


class EntryError(LineageError, ValueError):
    """A ledger entry's payload does not match its declared kind; the message names the field."""


class HookTargetError(LineageError, ValueError):
    """A webhook URL was refused: its scheme, embedded credentials, or an address it resolves to."""
