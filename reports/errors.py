"""The reports package's errors."""

from governance.errors import GovernanceError


class ReportError(GovernanceError):
    """A report cannot be issued, rendered or read."""
