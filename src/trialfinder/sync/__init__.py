"""Live sync with a ClinicalTrials.gov API v2 source: incremental, resumable, polite (issue 12).

``sync(store, client)`` runs one pass (:mod:`trialfinder.sync.run`); ``SyncLock`` keeps two passes from
overlapping; ``freshness(store)`` says how current the mirror is.
"""

from __future__ import annotations

from trialfinder.sync.freshness import STALE_AFTER_HOURS, freshness
from trialfinder.sync.lock import SyncBusy, SyncLock
from trialfinder.sync.run import SyncResult, SyncStopped, sync

__all__ = ["STALE_AFTER_HOURS", "SyncBusy", "SyncLock", "SyncResult", "SyncStopped", "freshness", "sync"]
