"""trialfinder: a self-hostable clinical-trial finder.

The public API, for scripts, notebooks and our own CLI and web app::

    import trialfinder

    store = trialfinder.open_store("trials.sqlite")          # or a postgresql:// URL
    trialfinder.ingest(store, ["ctg-studies.json.zip"])
    page = trialfinder.search(store, {"query.cond": "lupus nephritis", "filter.overallStatus": "RECRUITING"})
    record = trialfinder.get_study(store, "NCT05631717")
    result = trialfinder.match(store, "34-year-old woman with lupus nephritis class IV", limit=10)

Every error the library raises derives from :class:`TrialfinderError`.

Note: ``trialfinder.search`` and ``trialfinder.ingest`` are the functions above; the modules of the same
names are reached with ``from trialfinder.search.engine import ...`` / ``importlib.import_module``.
"""

from __future__ import annotations

# The submodules named like the API's functions (trialfinder.search, trialfinder.ingest) are imported
# by trialfinder.api first, so the names bound below -- the functions -- are the package's attributes.
from trialfinder.api import (
    CopyResult,
    IndexStatus,
    copy_database,
    get_study,
    index_status,
    ingest,
    match,
    open_store,
    rebuild_index,
    search,
)
from trialfinder.errors import TrialfinderError
from trialfinder.index.text_index import IndexBusy, TextIndexError
from trialfinder.ingest import IngestResult
from trialfinder.matching.match import MatchError, MatchHit, MatchResult
from trialfinder.model.study import RecordError
from trialfinder.search.engine import SearchHit, SearchPage
from trialfinder.search.essie import EssieSyntaxError
from trialfinder.search.request import SearchError, SearchRequest, from_api_params
from trialfinder.sources import Rejection
from trialfinder.store.base import Store, StoreError, UpsertCounts

__version__ = "0.1.0"

__all__ = [
    "CopyResult", "EssieSyntaxError", "IndexBusy", "IndexStatus", "IngestResult", "MatchError", "MatchHit", "MatchResult",
    "RecordError", "Rejection", "SearchError", "SearchHit", "SearchPage", "SearchRequest", "Store", "StoreError",
    "TextIndexError", "TrialfinderError", "UpsertCounts", "__version__", "copy_database", "from_api_params", "get_study",
    "index_status", "ingest", "match", "open_store", "rebuild_index", "search",
]
