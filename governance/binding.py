"""Policy binding: which policies every release of a model must pass.

``governance require MODELS --policy P [--policy Q]`` records a
``governance.policy_binding`` entry (scope ``admin``). ``MODELS`` is a model
id or a glob over ids (``model:credit/*``), matched against both the model
and the model version being released. A binding names each policy by its
content: the SHA-256 of its rules, so that editing a rule file after binding,
or an upgrade that changes a built-in pack, is noticed rather than trusted.

Invariants:

* for each glob the latest binding holds; every glob that matches a model
  adds its policies, so a release must pass all of them;
* ``release`` refuses a policy set that does not include every bound policy
  (a policy added on top is allowed: it can only block more);
* a model that matches no binding may be released under any policy; the
  report then says that no binding applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from governance import kinds as k
from governance.errors import GovernanceError
from governance.records import now
from governance.rules import Policy
from lineage.canonical import digest
from lineage.ids import parse_id
from lineage.store import Store


def policy_digests(policy: Policy) -> dict[str, str]:
    """Each source of a policy (a pack or a rule file) with the digest of its rules."""
    out = {}
    for source in policy.sources:
        rules = [r.model_dump(exclude={"source"}) for r in policy.rules if _source_of(r.source) == source]
        out[source] = "sha256:" + digest(rules)
    return out


def _source_of(where: str) -> str:
    """A rule's ``source`` is ``<file or pack:name>:<line>``; the part before the line number."""
    head, _, line = where.rpartition(":")
    return head if line.isdigit() else where


@dataclass(frozen=True)
class Bound:
    name: str
    digest: str
    glob: str
    seq: int


def bind(store: Store, models: str, policy: Policy, actor: str, reason: str = "") -> int:
    """Record that every release of models matching ``models`` must pass ``policy``'s sources."""
    digests = policy_digests(policy)
    payload = {"models": models, "policies": sorted(f"{name} {d}" for name, d in digests.items()),
               "reason": reason, "at": now()}
    return store.append(k.POLICY_BINDING.pending(payload, actor)).seq


def required(store: Store, model: str) -> list[Bound]:
    """The policies a release of ``model`` must pass: the latest binding of every glob that matches it."""
    latest: dict[str, tuple[int, list[str]]] = {}
    for record in k.POLICY_BINDING.valid(store):
        latest[record.value.models] = (record.seq, record.value.policies)
    entity = str(parse_id(model).entity())
    out = []
    for glob, (seq, policies) in sorted(latest.items()):
        if fnmatchcase(model, glob) or fnmatchcase(entity, glob):
            for item in policies:
                name, _, d = item.rpartition(" ")
                out.append(Bound(name, d, glob, seq))
    return out


def check_release_policy(store: Store, model: str, policy: Policy) -> list[Bound]:
    """Raise ``GovernanceError`` unless ``policy`` includes every policy bound to ``model``."""
    bound = required(store, model)
    offered = policy_digests(policy)
    by_digest = set(offered.values())
    missing = [b for b in bound if b.digest not in by_digest]
    if missing:
        changed = [b for b in missing if b.name in offered]
        lines = [f"{b.name} (bound by ledger:{b.seq} for {b.glob})" for b in missing if b not in changed]
        lines += [f"{b.name}: its rules changed since ledger:{b.seq} bound them (bound {b.digest}, now "
                  f"{offered[b.name]}); bind it again with 'auditgraph governance require'" for b in changed]
        raise GovernanceError(f"{model} must be released under its bound policies; missing: " + "; ".join(lines))
    return bound
