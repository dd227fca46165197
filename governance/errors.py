"""The governance package's errors.

Every one is a ``GovernanceError`` and also one of lineage's kinds (``Invalid``, ``NotFound``,
``Conflict``, ``Forbidden``, ``Unavailable``), which says how the HTTP API and the CLI answer it.
"""

from lineage.errors import Conflict, Forbidden, Invalid, LineageError, NotFound, Unavailable


class GovernanceError(LineageError):
    """Base class of governance errors; raise one of the classes below."""


class RuleFileError(GovernanceError, Invalid):
    """A rule file is not valid; the message gives file, line and field."""


class PolicyError(GovernanceError, Invalid):
    """A policy cannot judge what it was asked to: no rule applies, or over HTTP it names files, not packs."""


class RecordError(GovernanceError, Invalid):
    """A governance fact cannot be recorded as given (a tag, owners, a metric, a key's roles, a decision)."""


class NodeKindError(GovernanceError, Invalid):
    """The node named is of the wrong kind (a dataset where a model version is needed)."""


class DataError(GovernanceError, Invalid):
    """Data or arguments handed to a fairness or explanation assessment cannot be judged honestly."""


class ModelFileError(GovernanceError, Invalid):
    """A model or data file cannot be loaded safely or at all."""


class FittedStateError(GovernanceError, Invalid):
    """A loaded model's fitted state disagrees with itself; ``where`` names the attribute."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


class SignatureError(GovernanceError, Invalid):
    """A signature, private key file or signed statement does not verify."""


class NotRecordedError(GovernanceError, NotFound):
    """No registered key, or no approval, is recorded where the input says."""


class MissingFileError(GovernanceError, NotFound):
    """A model or data file named on the command line does not exist."""


class RevokedError(GovernanceError, Conflict):
    """A signed statement the request relies on was revoked; sign a new one."""


class ReleaseError(GovernanceError, Conflict):
    """A release, rollback or binding contradicts the recorded releases and policy bindings."""


class ArtifactError(GovernanceError, Conflict):
    """A model file is not the artifact recorded for its model version, or no single artifact is recorded."""


class KeyFileError(GovernanceError, Conflict):
    """A new private key would overwrite an existing file."""


class AuthorityError(GovernanceError, Forbidden):
    """A signing key acts beyond what it is registered for: a role it lacks, a statement it did not sign."""


class IncompleteError(GovernanceError, Unavailable):
    """A check could not see everything it must (a truncated walk); its rule is not evaluated."""
