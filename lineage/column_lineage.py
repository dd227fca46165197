"""Column lineage: the ``columnLineage`` facet (ColumnLineageDatasetFacet 1-2-0) as column edges.

A column edge says that field ``src_field`` of dataset ``src`` flowed into field
``dst_field`` of dataset ``dst``, and how (its transformations). Invariants:

* every transformation has the current shape ``{"type", "subtype", "description",
  "masking"}`` (absent values are None; other keys a producer sent are kept). The
  legacy per-field ``transformationType`` strings map onto it (``LEGACY``): IDENTITY
  is DIRECT/IDENTITY, MASKED is DIRECT/TRANSFORMATION with masking, AGGREGATION is
  DIRECT/AGGREGATION, JOIN is INDIRECT/JOIN, and so on;
* an input field that states no transformation is DIRECT (what ``inputFields`` meant
  before transformations existed); an entry of the facet's ``dataset`` list that
  states none is INDIRECT (the list holds dependencies of the whole output: join
  keys, filters, group-bys, sorts, windows);
* an edge from the ``dataset`` list has no output field: ``WHOLE_DATASET`` ('') in
  storage, None in answers. It is upstream of every field of its dataset;
* an edge's transformations are a set (sorted, no duplicates), merged by union, and
  its run is the one that stated it first (earliest event time, then run id), so the
  same events give the same edge in any arrival order and after a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

DIRECT, INDIRECT = "DIRECT", "INDIRECT"
SUBTYPES = {
    DIRECT: ("IDENTITY", "TRANSFORMATION", "AGGREGATION"),
    INDIRECT: ("JOIN", "GROUP_BY", "FILTER", "SORT", "WINDOW", "CONDITIONAL"),
}
# legacy transformationType -> (type, subtype, masking)
LEGACY: dict[str, tuple[str, str | None, bool | None]] = {
    "IDENTITY": (DIRECT, "IDENTITY", False),
    "MASKED": (DIRECT, "TRANSFORMATION", True),
    "TRANSFORMATION": (DIRECT, "TRANSFORMATION", None),
    "AGGREGATION": (DIRECT, "AGGREGATION", None),
    **{subtype: (INDIRECT, subtype, None) for subtype in SUBTYPES[INDIRECT]},
}
WHOLE_DATASET = ""
_SHAPE = ("type", "subtype", "description", "masking")


def shaped(t: dict) -> dict:
    """One transformation in the current shape; a legacy type name (as older stores hold) is mapped."""
    kind = str(t.get("type") or "").upper()
    subtype = t.get("subtype")
    masking = t.get("masking")
    if kind not in (DIRECT, INDIRECT) and kind in LEGACY:
        kind, mapped, legacy_masking = LEGACY[kind]
        subtype = subtype or mapped
        masking = legacy_masking if masking is None else masking
    extra = {k: v for k, v in t.items() if k not in _SHAPE}
    return {
        "type": kind,
        "subtype": subtype.upper() if isinstance(subtype, str) and subtype else None,
        "description": t.get("description"),
        "masking": masking,
        **extra,
    }


def legacy(kind: Any, description: Any) -> dict | None:
    """The transformation a field's legacy ``transformationType``/``transformationDescription`` states."""
    if not isinstance(kind, str) or not kind:
        return None
    name = kind.upper()
    if name in LEGACY or name in (DIRECT, INDIRECT):
        return shaped({"type": name, "description": description})
    # an unknown legacy name: still a direct derivation (all the legacy facet described), name kept
    return shaped({"type": DIRECT, "description": description, "legacyType": kind})


def transformations(stated: Any, default: dict) -> list[dict]:
    """The stated transformations in the current shape, or ``[default]`` if none are stated."""
    items = [shaped(t) for t in stated or () if isinstance(t, dict)]
    return merge(items or [default])


def merge(*lists: Iterable[dict]) -> list[dict]:
    """The union of transformation lists: each distinct one once, in a stable order."""
    unique = {json.dumps(s, sort_keys=True, separators=(",", ":")): s for ts in lists for s in map(shaped, ts)}
    return sorted(
        unique.values(),
        key=lambda s: (
            s["type"],
            s["subtype"] or "",
            s["description"] or "",
            str(s["masking"]),
            json.dumps(s, sort_keys=True),
        ),
    )


def is_direct(stated: Iterable[dict]) -> bool:
    return any(shaped(t)["type"] == DIRECT for t in stated)


def default_for(whole_dataset: bool) -> dict:
    return shaped({"type": INDIRECT if whole_dataset else DIRECT})


def schema_fields(facet: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Field names of a ``schema`` facet, nested ones as ``parent.child``."""
    if not isinstance(facet, dict) or not isinstance(facet.get("fields"), list) or depth > 32:
        return []
    out = []
    for f in facet["fields"]:
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            out.append(prefix + f["name"])
            out += schema_fields(f, f"{prefix}{f['name']}.", depth + 1)
    return out
