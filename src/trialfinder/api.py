"""The public library API: what ``import trialfinder`` offers, and what the CLI and the web app call.

Why one module: callers (our own shells, notebooks, other tools) get one small, typed surface whose
names stay stable while the modules behind it move. Every function takes an open
:class:`~trialfinder.store.base.Store` (from :func:`open_store`), so a script, a test and a web worker
use the same objects; every error it raises derives from :class:`~trialfinder.errors.TrialfinderError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from trialfinder.ingest import IngestResult
from trialfinder.ingest import ingest as _ingest
from trialfinder.matching.match import MatchResult
from trialfinder.matching.match import match as _match
from trialfinder.search.engine import SearchPage
from trialfinder.search.engine import search as _search
from trialfinder.search.request import SearchRequest, from_api_params
from trialfinder.store import open_store
from trialfinder.store.base import Store
from trialfinder.transfer import CopyResult, copy_database

__all__ = ["CopyResult", "IndexStatus", "copy_database", "get_study", "index_status", "ingest", "match", "open_store", "rebuild_index",
           "search"]


def search(store: Store, params: SearchRequest | Mapping[str, str | list[str]] | None = None, *,
           explain: bool = True, **kwargs: Any) -> SearchPage:
    """One page of studies for a search.

    ``params`` is a :class:`SearchRequest`, or ClinicalTrials.gov API v2 ``/studies`` parameters
    (``{"query.cond": "lupus", "filter.overallStatus": "RECRUITING", "countTotal": "true"}``);
    keyword arguments are :class:`SearchRequest` fields (``search(store, cond="asthma", page_size=5)``).
    Invalid parameters raise :class:`~trialfinder.search.request.SearchError` with the parameter named.
    ``explain=False`` skips working out which query terms each hit matched (``SearchHit.matched``), which
    the JSON API does not return.
    """
    if isinstance(params, SearchRequest):
        if kwargs:
            raise TypeError("give either a SearchRequest or keyword fields, not both")
        request = params
    elif params is not None:
        if kwargs:
            raise TypeError("give either API parameters or keyword fields, not both")
        request = from_api_params(params)
    else:
        request = SearchRequest(**kwargs)
    return _search(store, request, explain=explain)


def get_study(store: Store, nct_id: str) -> dict[str, Any] | None:
    """The stored API v2 record of a study, by NCT id or any secondary id (org study id, EudraCT...).

    None when the database has no such study.
    """
    resolved = store.resolve_id(nct_id.strip().upper())
    return store.get(resolved) if resolved else None


def ingest(store: Store, paths: Iterable[str | os.PathLike[str]], *, errors: IO[bytes] | None = None,
           progress: IO[str] | None = None, workers: int | None = None,
           on_rejection: Callable[[Any], None] | None = None, limits: Any = None) -> IngestResult:
    """Read every study under ``paths`` (files, directories, archives) and upsert it, index included.

    Malformed records are rejected with file, record and reason (``errors`` gets them as JSON lines)
    while the rest goes on; batches are committed as they go, so a killed run keeps its progress.
    ``limits`` (a :class:`trialfinder.sources.Limits`) caps record and archive-member sizes and the
    compression ratio (default: from ``TRIALFINDER_MAX_*`` variables, else 16 MB / 64 MB / 100:1).
    """
    return _ingest(store, paths, errors=errors, progress=progress, workers=workers, on_rejection=on_rejection,
                   limits=limits)


def match(store: Store, patient: str | dict[str, Any], **options: Any) -> MatchResult:
    """Studies that fit a patient (a free-text note or structured facts), each with its verdict.

    Options: ``near``, ``radius_km``, ``status`` ("open" by default: studies open for enrolment; "all";
    or a list of statuses), ``limit``, ``candidates``, ``evaluate`` (``recruiting`` is the older switch).
    """
    return _match(store, patient, **options)


@dataclass(frozen=True)
class IndexStatus:
    """How the derived text index stands against its database."""

    path: str
    documents: int
    index_seq: int
    database_seq: int

    @property
    def current(self) -> bool:
        return self.index_seq >= self.database_seq

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "documents": self.documents, "indexSeq": self.index_seq,
                "databaseSeq": self.database_seq, "current": self.current}


def index_status(store: Store) -> IndexStatus:
    """The text index's data version beside the database's (no catch-up is attempted)."""
    from trialfinder.index.follow import index_for

    snap = index_for(store).snapshot()
    return IndexStatus(str(store.index_path()), snap.num_docs, snap.seq, store.data_seq())


def rebuild_index(store: Store, *, progress: Callable[[int, int], None] | None = None,
                  workers: int | None = None) -> int:
    """Rebuild the text index from the stored records (beside the old one, swapped in at the end).

    Returns the number of studies indexed. Searches keep answering from the old index meanwhile.
    """
    from trialfinder.index.follow import rebuild

    return rebuild(store, progress=progress, workers=workers)
