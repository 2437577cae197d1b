"""Settings of the web application: everything :func:`trialfinder.web.app.create_app` needs, explicitly.

Why a dataclass instead of module globals: the app is built by a factory from these values, so tests
create as many independent apps as they like, and several uvicorn workers (or machines) build identical
apps from the same environment (:meth:`Settings.from_env`) with nothing shared in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

#: Environment variables that :meth:`Settings.from_env` reads (the ``serve`` command sets them for
#: uvicorn's worker processes).
ENV_PREFIX = "TRIALFINDER_WEB_"


@dataclass(frozen=True)
class Settings:
    """How one trialfinder web app runs."""

    #: database path or URL; None means ``$TRIALFINDER_DB`` or the per-user default
    db: str | None = None
    #: fill an empty database from the bundled sample at start-up, so a newcomer sees a working finder
    auto_load_sample: bool = True
    #: longest accepted text of any one request parameter (also enforced by the search request parser)
    max_query_chars: int = 1000
    #: largest API page (ClinicalTrials.gov coerces larger values down to 1,000; so do we)
    max_page_size: int = 1000
    #: results per HTML result page unless the user picks another size
    html_page_size: int = 20
    #: most studies one export (CSV, JSON, RIS) or feed may contain
    export_limit: int = 1000
    #: RSS items per feed
    feed_items: int = 50
    #: study sites listed on a study page before "show all sites" (all of them are still on the map)
    max_sites_listed: int = 100
    #: wall-clock budget of the database work of one request, in seconds; beyond it the query is
    #: interrupted and the client gets 503 instead of a worker being held hostage
    request_budget_s: float = 10.0
    #: database connections kept open per process (one request uses one)
    pool_size: int = 8
    #: requests one process works on at once (threads). Search is CPU-bound Python that shares one GIL,
    #: so a few threads keep tail latency low; more only interleave the same work
    threads: int = 8
    #: map tiles, fetched by the browser (never by the server). Empty (the default): no request leaves
    #: the machine; maps draw the bundled country outlines instead. Set a tile server you trust (your
    #: own, ideally) with ``TRIALFINDER_TILES_URL``, e.g. ``https://tiles.example.org/{z}/{x}/{y}.png``
    tile_url: str = ""
    tile_attribution: str = ""
    #: the public address of the site (``--base-url`` / ``TRIALFINDER_BASE_URL``), used for absolute
    #: links (RSS, the API page). The request's ``Host`` header is never used for them; without a base
    #: URL, links use the address the server accepted the connection on
    base_url: str = ""
    #: ``Host`` header values served, comma-separated (``*.example.org`` matches subdomains; ``*``: any;
    #: empty: any, or only the host of ``base_url`` when that is set). Others get 400 without their value
    #: echoed (DNS-rebinding protection for a server on loopback); the ``base_url`` host is always allowed
    allowed_hosts: str = ""
    #: longest request line plus headers (bytes); beyond it the server answers 431 (see web.server)
    max_header_bytes: int = 65_536
    #: prepare the database (load the sample, catch the index up) after the server has started, with a
    #: "loading" page meanwhile, instead of before (what ``serve`` does with one worker)
    prepare_in_background: bool = False
    site_name: str = "trialfinder"
    #: seconds between two checks of the database's data sequence by a background thread, which
    #: brings the text index up to writes made by other processes or machines (0: only on requests)
    follow_s: float = 5.0
    #: run one place search at start-up so the offline gazetteer (about a second to load) is ready
    #: before the first "near" request
    warm_up: bool = True

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from ``TRIALFINDER_WEB_<FIELD>`` variables (plus ``TRIALFINDER_DB`` for the database),
        for uvicorn workers, which can only be handed an import string, not objects."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            default = getattr(cls, f.name)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        if "db" not in values and env.get("TRIALFINDER_DB"):
            values["db"] = env["TRIALFINDER_DB"]
        # the documented short names (the prefixed ones win when both are set)
        for name, var in (("base_url", "TRIALFINDER_BASE_URL"), ("tile_url", "TRIALFINDER_TILES_URL"),
                          ("tile_attribution", "TRIALFINDER_TILES_ATTRIBUTION"),
                          ("allowed_hosts", "TRIALFINDER_ALLOWED_HOSTS")):
            if name not in values and env.get(var):
                values[name] = env[var]
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The inverse of :meth:`from_env` (only values that differ from the defaults)."""
        out: dict[str, str] = {}
        default = Settings()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == getattr(default, f.name):
                continue
            out[ENV_PREFIX + f.name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    def host_allowed(self, host: str) -> bool:
        """Whether a ``Host`` header value (with or without port) is served."""
        patterns = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        if "*" in patterns or not (patterns or self.base_url):
            return True
        if self.base_url:
            patterns.append((urlsplit(self.base_url).hostname or "").lower())
        name = host.strip().lower()
        name = name[1:name.index("]")] if name.startswith("[") and "]" in name else name.rsplit(":", 1)[0] \
            if name.count(":") == 1 else name
        for pattern in patterns:
            pattern = pattern.strip("[]")
            if pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
                return True
        return False

    def with_(self, **changes: object) -> Settings:
        """A copy with some values changed (tests use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]
