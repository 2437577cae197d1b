"""Record history: every stored version of a study, and what changed between them.

:func:`study_history` is the shape ``trialfinder history --json`` and ``/api/v2/studies/{nctId}/history``
return: ``{"nctId", "versions": [{"lastUpdatePostDate", "storedAt", "changes": [...], "typed": [...]}]}``,
oldest first; the first version has no changes. Versions whose content is the same as the previous one
(for instance the same record loaded once from a zip and once from the API) are shown once.
"""

from __future__ import annotations

from typing import Any

from trialfinder.history.diff import Change, diff
from trialfinder.history.kinds import MATERIALITY, TypedChange, classify, describe, materiality
from trialfinder.store.base import Store, StoredVersion

__all__ = ["Change", "MATERIALITY", "TypedChange", "classify", "describe", "diff", "materiality",
           "study_history", "version_entries"]


def version_entries(versions: list[StoredVersion]) -> list[dict[str, Any]]:
    """History entries of stored versions (oldest first), each with its changes from the one before."""
    out: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for v in versions:
        changes = diff(previous, v.record) if previous is not None else []
        if previous is not None and not changes:
            out[-1]["current"] = out[-1]["current"] or v.current
            continue
        typed = classify(changes)
        out.append({
            "lastUpdatePostDate": v.last_update,
            "storedAt": v.stored_at,
            "contentHash": v.content_hash,
            "current": v.current,
            "materiality": materiality(typed) if previous is not None else None,
            "summary": describe(typed) if previous is not None else "First version stored",
            "changes": [c.to_dict() for c in changes],
            "typed": [t.to_dict() for t in typed],
        })
        previous = v.record
    return out


def study_history(store: Store, nct_id: str) -> dict[str, Any] | None:
    """The history of one study, or None when the store has no such study."""
    versions = store.versions(nct_id)
    if not versions:
        return None
    return {"nctId": nct_id, "versions": version_entries(versions)}
