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
from governance.errors import ReleaseError
from governance.rules import Policy
from lineage.canonical import canonical_bytes, sha256_digest
from lineage.clock import utc_text
from lineage.ids import parse_id
from lineage.store import Store


def policy_digests(policy: Policy) -> dict[str, str]:
    """Each source of a policy (a pack or a rule file) with the digest of its rules."""
    out = {}
    for source in policy.sources:
        rules = [r.model_dump(exclude={"source"}) for r in policy.rules if _source_of(r.source) == source]
        out[source] = sha256_digest(canonical_bytes(rules))
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


def bind(store: Store, models: str, policy: Policy, actor: str, reason: str = "", replace: bool = False) -> int:
    """Record that every release of models matching ``models`` must pass ``policy``'s sources.

    A binding that drops a policy the glob's current binding holds is refused unless ``replace``;
    then it is recorded as replacing that binding, and reports show both.
    """
    digests = policy_digests(policy)
    policies = sorted(f"{name} {d}" for name, d in digests.items())
    current = None
    for record in k.POLICY_BINDING.valid(store):
        if record.value.models == models:
            current = record
    dropped = sorted(set(current.value.policies) - set(policies)) if current else []
    if current and dropped and not replace:
        names = ", ".join(p.rpartition(" ")[0] for p in dropped)
        raise ReleaseError(
            f"{models} is bound to {names} by ledger:{current.seq}; this binding would drop it. "
            "Pass --replace to replace the binding (it is recorded and reported)"
        )
    payload = {
        "models": models,
        "policies": policies,
        "reason": reason,
        "replaces": current.seq if current and dropped else None,
        "at": utc_text(),
    }
    return store.append(k.POLICY_BINDING.pending(payload, actor)).seq


def history(store: Store, model: str) -> list[dict]:
    """Every binding whose glob matches ``model``, oldest first, with who recorded it and what it replaced."""
    entity = str(parse_id(model).entity())
    return [
        {
            "seq": r.seq,
            "actor": r.actor,
            "models": r.value.models,
            "reason": r.value.reason,
            "policies": [p.rpartition(" ")[0] for p in r.value.policies],
            "replaces": r.value.replaces,
        }
        for r in k.POLICY_BINDING.valid(store)
        if fnmatchcase(model, r.value.models) or fnmatchcase(entity, r.value.models)
    ]


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
        lines += [
            f"{b.name}: its rules changed since ledger:{b.seq} bound them (bound {b.digest}, now "
            f"{offered[b.name]}); bind it again with 'auditgraph governance require'"
            for b in changed
        ]
        raise ReleaseError(f"{model} must be released under its bound policies; missing: " + "; ".join(lines))
    return bound
