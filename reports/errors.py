"""The reports package's errors: each a ``ReportError`` and one of lineage's kinds (see governance.errors)."""

from governance.errors import GovernanceError
from lineage.errors import Invalid, NotFound, Unavailable


class ReportError(GovernanceError):
    """Base class of report errors: a report cannot be issued, rendered or read."""


class FormatError(ReportError, Invalid):
    """A report format that does not exist was asked for."""


class RenderError(ReportError, Invalid):
    """A template is refused by the sandbox, fails, or goes over its limits (time, memory, size)."""


class BundleError(ReportError, Invalid):
    """A report bundle cannot be read or rendered (not JSON, not an object, fields missing)."""


class BundleNotFoundError(ReportError, NotFound):
    """No bundle.json is where the report should be."""


class ChromiumError(ReportError, Unavailable):
    """Headless Chromium, which prints the PDF, is missing, timed out or failed."""
