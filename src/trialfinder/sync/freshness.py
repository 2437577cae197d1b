"""How fresh the mirror is: the source's timestamp at the last sync, when that sync ran, and whether it
is stale (older than :data:`STALE_AFTER_HOURS`), for ``stats``, study pages and the version endpoint.

Why the sync time uses our clock while everything else uses the source's: "the last sync ran two days
ago" is a fact about this server (a stopped cron job), which only its own clock can tell.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from trialfinder.store.base import Store

#: A mirror not synced for this long gets a visible badge.
STALE_AFTER_HOURS = 48.0


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def freshness(store: Store, *, now: datetime | None = None) -> dict[str, Any]:
    """``{"dataTimestamp", "lastSync", "syncedAt", "ageHours", "stale"}`` (the last three None/False when
    the database was never synced, e.g. filled from files only)."""
    raw = store.meta("last_sync")
    last: dict[str, Any] | None = None
    if raw:
        try:
            last = orjson.loads(raw)
        except orjson.JSONDecodeError:
            last = None
    synced = _parse(last.get("finishedAt")) if isinstance(last, dict) else None
    age = None
    if synced is not None:
        age = ((now or datetime.now(UTC)) - synced).total_seconds() / 3600.0
    return {"dataTimestamp": store.meta("data_timestamp"), "lastSync": last,
            "syncedAt": last.get("finishedAt") if isinstance(last, dict) else None,
            "ageHours": round(age, 1) if age is not None else None,
            "stale": bool(age is not None and age > STALE_AFTER_HOURS)}
