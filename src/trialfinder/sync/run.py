"""``trialfinder sync``: keep a database equal to a v2 source (ClinicalTrials.gov or another trialfinder).

Design (see also :mod:`trialfinder.sources.ctgov_api`, which owns the HTTP policy):

* **What to fetch.** An empty database gets every study (``/studies`` sorted by ``LastUpdatePostDate``
  ascending); later runs only what changed since the *watermark* -- the newest last-update date stored,
  minus one day -- as ``filter.advanced=AREA[LastUpdatePostDate]RANGE[watermark,MAX]``. The source's dates
  decide, never our clock. The overlap of a day is deliberate and harmless: the upsert skips versions
  it already has.
* **One write path.** Every page goes through :func:`trialfinder.ingest.ingest_records` (validation,
  rejections with reasons, upsert rules, history) as one transaction.
* **Resumable.** After each committed page the cursor (watermark, next page token, page number) is
  stored in the database (``meta.sync_state``). A run killed at any moment -- even ``kill -9`` between
  the commit and the cursor -- starts again from the saved cursor; the page it may fetch twice is a
  no-op. A token the source no longer accepts restarts the query from the watermark, which the
  ascending sort makes lossless.
* **Freshness.** Only a run that completes stores the source's ``dataTimestamp`` (``meta.data_timestamp``,
  what ``/api/v2/version`` serves) and ``meta.last_sync``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from trialfinder.errors import TrialfinderError
from trialfinder.index.follow import catch_up, index_for, recheck
from trialfinder.ingest import WRITER_WAIT_S, IngestResult, ingest_records
from trialfinder.sources.ctgov_api import (
    DEFAULT_PAGE_SIZE,
    CtgovClient,
    Page,
    PageTokenRejected,
    SyncError,
    watermark,
)
from trialfinder.store.base import Store, UpsertCounts

__all__ = ["STATE_KEY", "LAST_SYNC_KEY", "SOURCE_TS_KEY", "SyncResult", "SyncStopped", "sync"]

#: ``meta`` keys this module owns.
STATE_KEY = "sync_state"
LAST_SYNC_KEY = "last_sync"
SOURCE_TS_KEY = "source_data_timestamp"
#: Studies reconcile fetches one request each, at most (a database far behind should sync or load --bulk).
RECONCILE_FETCH_MAX = 1000


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class SyncResult:
    """What one sync run did (``to_dict`` is the ``--json`` output)."""

    source: str
    mode: str = "changes"  # "full" (empty database), "changes" (since the watermark)
    since: str | None = None
    resumed: bool = False
    pages: int = 0
    requests: int = 0
    seconds: float = 0.0
    data_timestamp: str | None = None
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    ingest: IngestResult = field(default_factory=IngestResult)
    reconcile: dict[str, Any] | None = None
    bulk: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    #: seconds spent writing pages (validation, upsert, history, text index); the rest is the source
    write_seconds: float = 0.0

    def summary(self) -> str:
        """The one line every sync ends with: ``added N, updated N, unchanged N, rejected N`` (versions older
        than the stored one count as unchanged)."""
        c = self.counts
        return f"added {c.added}, updated {c.updated}, unchanged {c.unchanged + c.older}, rejected {c.rejected}"

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {"source": self.source, "mode": self.mode, "since": self.since, "resumed": self.resumed,
                "pages": self.pages, "requests": self.requests, "seconds": round(self.seconds, 3),
                "writeSeconds": round(self.write_seconds, 3),
                "dataTimestamp": self.data_timestamp, "added": c.added, "updated": c.updated,
                "unchanged": c.unchanged + c.older, "rejected": c.rejected,
                "rejections": [r.to_dict() for r in self.ingest.rejections[:100]],
                "reconcile": self.reconcile, "bulk": self.bulk, "alerts": self.alerts, "error": self.error,
                "summary": self.summary()}


class SyncStopped(TrialfinderError):
    """The source failed in a way retries could not fix; ``result`` holds what was committed."""

    def __init__(self, message: str, result: SyncResult) -> None:
        super().__init__(message)
        self.result = result


def _load_state(store: Store) -> dict[str, Any] | None:
    raw = store.meta(STATE_KEY)
    if not raw:
        return None
    try:
        state = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return state if isinstance(state, dict) else None


def _save_state(store: Store, state: dict[str, Any] | None) -> None:
    store.set_meta(STATE_KEY, orjson.dumps(state).decode() if state is not None else None)


def sync(store: Store, client: CtgovClient, *, page_size: int = DEFAULT_PAGE_SIZE, reconcile: bool = False,
         progress: Callable[[str], None] | None = None) -> SyncResult:
    """Bring ``store`` up to date with ``client``'s source; see the module docstring for the rules.

    Raises :class:`SyncStopped` (with the partial result) when the source blocks us or keeps failing;
    everything committed before that is kept and the next run resumes from it.
    """
    say = progress or (lambda _text: None)
    result = SyncResult(source=client.base_url)
    start = time.monotonic()
    ingest_id = store.begin_ingest(f"sync {client.base_url}")
    writer = index_for(store).writer(wait_s=WRITER_WAIT_S)
    try:
        catch_up(store, writer)
        try:
            _walk(store, client, writer, result, page_size, say)
            if reconcile:
                result.reconcile = _reconcile(store, client, writer, result, page_size, say)
        except SyncError as exc:
            result.error = exc.message
            result.requests = client.requests
            result.seconds = time.monotonic() - start
            previous = store.meta("data_timestamp")
            store.finish_ingest(ingest_id, result.counts)
            if store.meta(LAST_SYNC_KEY) and previous:  # an unfinished run is not "as of" anything new
                store.set_meta("data_timestamp", previous)
            raise SyncStopped(exc.message, result) from exc
    finally:
        writer.close()
        recheck(store)  # this process's next search sees what it just wrote
    store.finish_ingest(ingest_id, result.counts)
    # freshness: the source's own clock at the start of this (possibly resumed) run
    if result.data_timestamp:
        store.set_meta("data_timestamp", result.data_timestamp)
        store.set_meta(SOURCE_TS_KEY, result.data_timestamp)
    result.requests = client.requests
    result.seconds = time.monotonic() - start
    store.set_meta(LAST_SYNC_KEY, orjson.dumps({
        "finishedAt": _now(), "source": client.base_url, "dataTimestamp": result.data_timestamp,
        "mode": result.mode, "since": result.since, "pages": result.pages, "requests": result.requests,
        "seconds": round(result.seconds, 3), "added": result.counts.added, "updated": result.counts.updated,
        "unchanged": result.counts.unchanged + result.counts.older, "rejected": result.counts.rejected,
    }).decode())
    _save_state(store, None)
    return result


def _prefetched(pages: Iterator[Page]) -> Iterator[Page]:
    """Fetch the next page while this one is being written.

    Why: at the registry a 1,000-study page takes seconds to answer, and writing it takes seconds too;
    overlapping them nearly halves a full sync. Requests stay sequential (the thread is the only one
    asking, under the client's rate limit), pages are handed over in order, and an error reaches the
    caller after the pages before it, so commits and the resume cursor are exactly as without it.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=fetch, name="sync-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "page":
                yield value
            elif kind == "end":
                return
            else:
                raise value
    finally:
        stop.set()


def _walk(store: Store, client: CtgovClient, writer: Any, result: SyncResult, page_size: int,
          say: Callable[[str], None]) -> None:
    state = _load_state(store)
    if state is not None and state.get("source") == client.base_url and state.get("mode") in ("full", "changes"):
        result.resumed = True
        say(f"resuming the interrupted sync at page {state.get('page', 1)}")
    else:
        version = client.version()
        newest = store.newest_update()
        since = watermark(newest, store.meta(SOURCE_TS_KEY)) if (newest or store.count()) else None
        state = {"source": client.base_url, "mode": "full" if since is None else "changes",
                 "since": since.isoformat() if isinstance(since, date) else None, "token": None, "page": 1,
                 "dataTimestamp": version.data_timestamp, "startedAt": _now()}
        _save_state(store, state)
    result.mode = str(state["mode"])
    result.since = state.get("since")
    result.data_timestamp = state.get("dataTimestamp")
    say(f"{'fetching every study' if result.mode == 'full' else 'fetching changes since ' + str(result.since)}"
        f" from {client.base_url}")
    if result.resumed and int(state.get("page") or 1) > 1 and not state.get("token"):
        say("the interrupted sync had already committed its last page")
        return
    restarted = False
    while True:
        try:
            for page in _prefetched(client.iter_updated(state.get("since"), page_token=state.get("token"),
                                                        start_page=int(state.get("page") or 1), page_size=page_size)):
                t0 = time.monotonic()
                counts = ingest_records(store, page.studies, source=f"{client.base_url}/studies#page{page.number}",
                                        writer=writer, result=result.ingest)
                result.write_seconds += time.monotonic() - t0
                result.counts += counts
                result.pages += 1
                state = {**state, "token": page.next_page_token, "page": page.number + 1}
                _save_state(store, state)  # after the commit: a kill in between re-fetches one page, harmlessly
                total = f" of {page.total_count:,}" if page.total_count is not None and page.number == 1 else ""
                say(f"page {page.number}: {len(page.studies)} studies{total}; {result.summary()}")
            return
        except PageTokenRejected:
            if restarted:
                raise
            restarted = True
            since = watermark(store.newest_update(), store.meta(SOURCE_TS_KEY))
            say(f"the source refused the saved page token; restarting from {since}")
            state = {**state, "mode": "changes" if since else "full",
                     "since": since.isoformat() if since else None, "token": None, "page": 1}
            result.mode, result.since = str(state["mode"]), state["since"]
            _save_state(store, state)


def _reconcile(store: Store, client: CtgovClient, writer: Any, result: SyncResult, page_size: int,
               say: Callable[[str], None]) -> dict[str, Any]:
    """Walk the source's id list: flag stored studies it no longer has (kept, marked), clear the flag of
    those it has again, and fetch any study the source has in a newer version or that we never stored
    (date queries miss a record whose date went backwards, or one that was briefly withdrawn)."""
    say("reconcile: reading the source's list of studies")
    upstream: dict[str, str | None] = dict(client.iter_ids(page_size=page_size))
    stored = {n: d for n, (d, _h) in store.version_keys().items()}
    gone = sorted(set(stored) - set(upstream))
    back = sorted(set(store.absent()) & set(upstream))
    missing = sorted(n for n, d in upstream.items() if n not in stored or (d and (stored.get(n) or "") < d))
    if len(missing) > RECONCILE_FETCH_MAX:
        say(f"reconcile: {len(missing):,} studies are missing or older here; fetching the first "
            f"{RECONCILE_FETCH_MAX:,} one by one (run 'sync' again for the rest, or load --bulk)")
    fetched: list[dict[str, Any]] = []
    for nct in missing[:RECONCILE_FETCH_MAX]:
        rec = client.study(nct)
        if rec is not None:
            fetched.append(rec)
    if fetched:
        result.counts += ingest_records(store, fetched, source=f"{client.base_url}/studies/{{nctId}}",
                                        writer=writer, result=result.ingest)
    marked = store.set_absent(gone, _now()[:10]) if gone else 0
    cleared = store.set_absent(back, None) if back else 0
    say(f"reconcile: {len(upstream):,} studies at the source; {len(gone)} stored studies absent there "
        f"({marked} newly marked), {cleared} back again, {len(fetched)} fetched")
    return {"source_studies": len(upstream), "absent": gone, "newly_marked": marked, "cleared": back,
            "fetched": [str(r.get("protocolSection", {}).get("identificationModule", {}).get("nctId")) for r in fetched]}
