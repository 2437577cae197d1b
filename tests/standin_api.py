"""A loopback stand-in for ClinicalTrials.gov API v2, for sync tests that never touch the internet.

Why a real HTTP server rather than a mocked client: the faults sync must survive -- a dropped
connection, a body cut short, a 429 with ``Retry-After``, an answer slower than the timeout -- happen in
the socket and the HTTP framing, so only a server on a real socket exercises the client's handling of
them.  The server is small and honest about the parts of v2 it implements: ``/version``, ``/studies``
(``pageSize`` clamped like the registry, opaque ``pageToken``, ``countTotal``, ``sort`` on
``LastUpdatePostDate``, ``filter.advanced`` with ``AREA[LastUpdatePostDate]RANGE[a,b]``, ``fields`` for
``NCTId``/``LastUpdatePostDate``) and ``/studies/{nctId}``.  Anything else answers 400, as the registry
does, so a test cannot pass by accident on an unsupported query.

Like the registry, a page that is exactly full carries a ``nextPageToken`` whose page is empty, and a
token is a cursor over the current data (records updated between pages may move), not a snapshot.

A test changes the data across "days" with :meth:`StandinRegistry.next_day` and the record helpers, and
injects faults with :meth:`StandinRegistry.inject`; every request is logged for assertions. The client
side is here too (:func:`standin_client`, on a :class:`FakeTime` clock), so the client's and the sync's
tests talk to the stand-in the same way.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from trialfinder.sources.ctgov_api import CtgovClient, RetryPolicy

DATA = Path(__file__).parent / "data"

#: The real records the stand-in starts from, and those a later "day" adds (studies never seen before).
SEED_FILES = sorted((DATA / "corpus-seed").glob("NCT*.json"))
NEW_STUDY_FILES = sorted((DATA / "standin").glob("NCT*.json"))

FAULT_KINDS = ("status", "drop", "truncate", "bad_json", "slow")

_RANGE = re.compile(r"^\s*AREA\[LastUpdatePostDate\]RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]\s*$")
_SORT = re.compile(r"^LastUpdatePostDate(?::(asc|desc))?$")
_FIELD_PATHS = {
    "NCTId": ("protocolSection", "identificationModule", "nctId"),
    "LastUpdatePostDate": ("protocolSection", "statusModule", "lastUpdatePostDateStruct"),
}


def load_record(path: Path) -> dict[str, Any]:
    """One stored v2 record (a test data file)."""
    return json.loads(path.read_text(encoding="utf-8"))


def nct_of(record: dict[str, Any]) -> str:
    return record["protocolSection"]["identificationModule"]["nctId"]


def last_update(record: dict[str, Any]) -> str | None:
    struct = record.get("protocolSection", {}).get("statusModule", {}).get("lastUpdatePostDateStruct") or {}
    return struct.get("date")


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` requests whose path starts with ``path``.

    kind: ``status`` (answer ``status`` with ``headers``, e.g. 429 + Retry-After, 503, 403), ``drop``
    (close the socket without a word), ``truncate`` (announce the full length, send half, close),
    ``bad_json`` (a complete 200 answer whose body is cut JSON), ``slow`` (sleep ``delay`` seconds, then
    answer normally -- or not at all if the client gave up).
    """

    kind: str
    path: str = "/"
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: matching requests to let through untouched before the fault starts (e.g. fail page 2, not page 1)
    after: int = 0


@dataclass(frozen=True)
class LoggedRequest:
    """A request as the server saw it (faulted ones included)."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    fault: str | None


class StandinRegistry:
    """The mutable data and behaviour behind the server.  Thread-safe; tests call it directly."""

    def __init__(self, records: Iterable[dict[str, Any]] = (), *, data_timestamp: str = "2024-06-28T09:00:06",
                 max_page_size: int = 1000, default_page_size: int = 10, api_version: str = "2.0.5",
                 gzip_responses: bool = True) -> None:
        self._lock = threading.RLock()
        self.records: dict[str, dict[str, Any]] = {}
        for rec in records:
            self.records[nct_of(rec)] = copy.deepcopy(rec)
        self.data_timestamp = data_timestamp
        self.max_page_size = max_page_size
        self.default_page_size = default_page_size
        self.api_version = api_version
        self.gzip_responses = gzip_responses
        self.faults: list[Fault] = []
        self.log: list[LoggedRequest] = []

    # ------------------------------------------------------------------ data across days

    @property
    def today(self) -> date:
        """The source's current day: the date part of ``data_timestamp``."""
        return date.fromisoformat(self.data_timestamp[:10])

    def next_day(self, days: int = 1) -> str:
        """Move the source's clock forward (``dataTimestamp``); returns the new day (ISO)."""
        with self._lock:
            day = self.today + timedelta(days=days)
            self.data_timestamp = f"{day.isoformat()}T09:00:06"
            return day.isoformat()

    def _touch(self, record: dict[str, Any], day: str | None) -> None:
        status = record.setdefault("protocolSection", {}).setdefault("statusModule", {})
        status["lastUpdatePostDateStruct"] = {"date": day or self.today.isoformat(), "type": "ACTUAL"}
        status["lastUpdateSubmitDate"] = day or self.today.isoformat()

    def update(self, nct_id: str, change: Callable[[dict[str, Any]], None], *, day: str | None = None) -> dict:
        """Apply ``change`` to a record in place and post it as updated on ``day`` (default: today)."""
        with self._lock:
            record = self.records[nct_id]
            change(record)
            self._touch(record, day)
            return copy.deepcopy(record)

    def add(self, record: dict[str, Any], *, day: str | None = None, touch: bool = True) -> str:
        """Add a study (a study "never seen before"); posted today unless ``touch`` is False."""
        with self._lock:
            rec = copy.deepcopy(record)
            if touch:
                self._touch(rec, day)
            self.records[nct_of(rec)] = rec
            return nct_of(rec)

    def remove(self, nct_id: str) -> None:
        """Withdraw a study from the source entirely (date queries will never mention it again)."""
        with self._lock:
            del self.records[nct_id]

    def set_status(self, nct_id: str, status: str, *, day: str | None = None) -> dict:
        """Change the overall status (e.g. RECRUITING -> ACTIVE_NOT_RECRUITING)."""
        return self.update(nct_id, lambda r: r["protocolSection"]["statusModule"].__setitem__("overallStatus",
                                                                                             status), day=day)

    def add_site(self, nct_id: str, facility: str, city: str, country: str, *, state: str | None = None,
                 status: str = "RECRUITING", day: str | None = None) -> dict:
        """Open a new site."""
        site: dict[str, Any] = {"facility": facility, "status": status, "city": city, "country": country}
        if state:
            site["state"] = state

        def change(rec: dict[str, Any]) -> None:
            cl = rec["protocolSection"].setdefault("contactsLocationsModule", {})
            cl.setdefault("locations", []).append(site)

        return self.update(nct_id, change, day=day)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A deep copy of every record, for "the mirror equals the source" assertions."""
        with self._lock:
            return copy.deepcopy(self.records)

    # ------------------------------------------------------------------ faults and the request log

    def inject(self, kind: str, *, path: str = "/", times: int = 1, status: int = 503,
               headers: dict[str, str] | None = None, delay: float = 0.0, after: int = 0) -> Fault:
        """Queue a fault (see :class:`Fault`); faults apply in the order injected."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, path=path, times=times, status=status, headers=dict(headers or {}), delay=delay,
                      after=after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.times > 0:
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def requests(self, path_prefix: str = "/") -> list[LoggedRequest]:
        """Logged requests whose path starts with ``path_prefix`` (relative to the API root)."""
        with self._lock:
            return [r for r in self.log if r.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # ------------------------------------------------------------------ the API

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """(status, JSON body) for a request under the API root: the v2 semantics, no faults."""
        with self._lock:
            if path in ("/version", "/version/"):
                return 200, {"apiVersion": self.api_version, "dataTimestamp": self.data_timestamp}
            if path in ("/studies", "/studies/"):
                return self._studies(params)
            m = re.fullmatch(r"/studies/(NCT\d{8})", path)
            if m:
                rec = self.records.get(m.group(1))
                if rec is None:
                    return 404, {"message": f"Study {m.group(1)} not found"}
                return 200, copy.deepcopy(rec)
            return 404, {"message": f"Unknown path {path}"}

    def _studies(self, params: dict[str, str]) -> tuple[int, Any]:
        known = {"pageSize", "pageToken", "filter.advanced", "sort", "fields", "countTotal", "format"}
        unknown = sorted(set(params) - known)
        if unknown:
            return 400, {"message": f"unsupported parameter(s) in the stand-in: {', '.join(unknown)}"}
        if params.get("format", "json") != "json":
            return 400, {"message": "only format=json is supported"}
        try:
            size = int(params.get("pageSize") or 0)
        except ValueError:
            return 400, {"message": "pageSize must be an integer"}
        if size < 0:
            return 400, {"message": "pageSize must be >= 0"}
        size = min(size or self.default_page_size, self.max_page_size)

        rows = list(self.records.values())
        adv = params.get("filter.advanced")
        if adv is not None:
            m = _RANGE.match(adv)
            if not m:
                return 400, {"message": f"unsupported filter.advanced in the stand-in: {adv}"}
            lo, hi = m.group(1), m.group(2)
            rows = [r for r in rows if last_update(r) and (lo == "MIN" or last_update(r) >= lo)
                    and (hi == "MAX" or last_update(r) <= hi)]
        sort = params.get("sort")
        if sort:
            m = _SORT.match(sort)
            if not m:
                return 400, {"message": f"unsupported sort in the stand-in: {sort}"}
            descending = m.group(1) != "asc"  # the API's default for a date field is descending
            with_date = sorted((r for r in rows if last_update(r)), key=lambda r: (last_update(r), nct_of(r)),
                               reverse=descending)
            rows = with_date + sorted((r for r in rows if not last_update(r)), key=nct_of)  # missing: last
        else:
            rows.sort(key=nct_of)

        query_key = json.dumps([adv, sort, params.get("fields")])
        offset = 0
        token = params.get("pageToken")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
                offset = int(state["o"])
                if state["q"] != query_key:
                    raise ValueError("token from another query")
            except (ValueError, KeyError, TypeError):
                return 400, {"message": f"invalid pageToken: {token}"}

        page = rows[offset:offset + size]
        fields = params.get("fields")
        if fields:
            names = [f.strip() for f in re.split(r"[,|]", fields) if f.strip()]
            bad = [n for n in names if n not in _FIELD_PATHS]
            if bad:
                return 400, {"message": f"unsupported fields in the stand-in: {', '.join(bad)}"}
            page = [_project(r, names) for r in page]
        else:
            page = [copy.deepcopy(r) for r in page]
        body: dict[str, Any] = {"studies": page}
        if len(page) == size:  # like the registry: a token after an exactly full page too
            nxt = json.dumps({"o": offset + size, "q": query_key}).encode()
            body["nextPageToken"] = base64.urlsafe_b64encode(nxt).decode().rstrip("=")
        if params.get("countTotal", "").lower() == "true" and not token:
            body["totalCount"] = len(rows)
        return 200, body


def _project(record: dict[str, Any], names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        path = _FIELD_PATHS[name]
        value: Any = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = copy.deepcopy(value)
    return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        registry = self.server.registry
        parts = urlsplit(self.path)
        path = parts.path
        if not path.startswith(self.server.root):
            self._send(404, json.dumps({"message": "not under the API root"}).encode(), {})
            return
        path = path[len(self.server.root):] or "/"
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        fault = registry._take_fault(path)
        with registry._lock:
            registry.log.append(LoggedRequest(path, params, dict(self.headers.items()),
                                              fault.kind if fault else None))
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status":
            self._send(fault.status, json.dumps({"message": f"injected {fault.status}"}).encode(), fault.headers)
            return
        status, body = registry.answer(path, params)
        raw = json.dumps(body).encode()
        if fault is not None and fault.kind == "bad_json":
            self._send(200, raw[: max(1, len(raw) // 2)], {}, compress=False)
            return
        if fault is not None and fault.kind == "truncate":
            self._send(status, raw, {}, cut=True)
            return
        self._send(status, raw, {})

    def _send(self, status: int, raw: bytes, headers: dict[str, str], *, cut: bool = False,
              compress: bool = True) -> None:
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
        gz = compress and self.server.registry.gzip_responses and accepts_gzip and len(raw) > 200
        payload = gzip.compress(raw) if gz else raw
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if gz:
                self.send_header("Content-Encoding", "gzip")
            for k, v in headers.items():
                self.send_header(k, v)
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2] if cut else payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. after a slow answer)
            pass
        if cut:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, registry: StandinRegistry, root: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.registry = registry
        self.root = root


class StandinAPI:
    """The running server: ``base_url`` is what a client takes as its API root (``.../api/v2``)."""

    def __init__(self, registry: StandinRegistry, root: str = "/api/v2") -> None:
        self.registry = registry
        self._server = _Server(registry, root)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}{root}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._stopped = False

    def start(self) -> StandinAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent, so a test may stop it early to simulate an unreachable source)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StandinAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def apply_day_of_changes(registry: StandinRegistry) -> dict[str, Any]:
    """One "day" at the registry, the kinds of change a sync must carry: a status change, a new site,
    an enrollment change, eligibility edited, studies never seen before, and a study withdrawn entirely.
    Returns what was done, for assertions."""
    day = registry.next_day()
    registry.set_status("NCT06470217", "ACTIVE_NOT_RECRUITING")
    registry.add_site("NCT06470256", "Lyon Sud Hospital", "Lyon", "France")

    def enrollment(rec: dict[str, Any]) -> None:
        rec["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = 321

    registry.update("NCT06470230", enrollment)

    def eligibility(rec: dict[str, Any]) -> None:
        rec["protocolSection"]["eligibilityModule"]["minimumAge"] = "21 Years"

    registry.update("NCT06470191", eligibility)
    new = [registry.add(r) for r in new_study_records()]
    registry.remove("NCT06470100")
    return {"day": day, "changed": ["NCT06470191", "NCT06470217", "NCT06470230", "NCT06470256"], "new": new,
            "removed": ["NCT06470100"]}


def seed_records() -> list[dict[str, Any]]:
    """The day-0 source: the real records of ``tests/data/corpus-seed``."""
    return [load_record(p) for p in SEED_FILES]


def new_study_records() -> list[dict[str, Any]]:
    """Real records absent from the seed, for "a study never seen before" on a later day."""
    return [load_record(p) for p in NEW_STUDY_FILES]


def running_standin(**kwargs: Any) -> Iterator[StandinAPI]:
    """A started stand-in over the seed records (a generator, for fixtures and ``contextlib``)."""
    with StandinAPI(StandinRegistry(seed_records(), **kwargs)) as api:
        yield api


class FakeTime:
    """A monotonic clock that moves only when slept on; records every sleep, so backoff and
    ``Retry-After`` waits are asserted exactly and cost no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def standin_client(api: StandinAPI, fake: FakeTime | None = None, **kwargs: Any) -> CtgovClient:
    """A client of ``api`` on a fake clock (a new one unless given): no rate limit, no jitter, 4 attempts
    per request and a 5 s timeout, unless ``kwargs`` say otherwise."""
    fake = fake or FakeTime()
    options: dict[str, Any] = {"rate": 0, "timeout": 5.0, "random": lambda: 0.0,
                               "retry": RetryPolicy(max_attempts=4)}
    options.update(kwargs)
    return CtgovClient(api.base_url, clock=fake.clock, sleep=fake.sleep, **options)
