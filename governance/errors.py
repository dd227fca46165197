"""The governance package's errors."""

from lineage.errors import LineageError


class GovernanceError(LineageError):
    """Base class of governance errors."""


class RuleFileError(GovernanceError):
    """A rule file is not valid; the message gives file, line and field."""


class SignatureError(GovernanceError):
    """A signature, key or approval statement does not verify."""


class IncompleteError(GovernanceError):
    """A check could not see everything it must (a truncated walk); its rule is not evaluated."""
