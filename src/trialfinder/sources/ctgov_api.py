"""A polite, resumable client for ClinicalTrials.gov API v2 (or any server that speaks it).

Why a hand-written client on the standard library: sync runs unattended for hours against a registry
that throttles (429), blocks (403) and sometimes drops connections or cuts a body short.  Each of those
needs a different, deliberate answer -- wait as told, stop at once with advice, or retry with backoff --
and tests must drive every branch with an injected clock, so the policy lives here, small and explicit,
rather than inside a third-party retry layer.

What this module does *not* do: it never touches the store.  It yields pages; the caller commits each
page and remembers ``(page.number, page.next_page_token)`` so a killed sync resumes where it stopped.
Studies are requested sorted by ``LastUpdatePostDate`` **ascending**, so even without a saved token a
restart from :func:`watermark` (newest stored date minus one day) loses nothing: everything older than
the newest stored record was committed before it.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import importlib.metadata
import json
import random as _random
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PAGE_SIZE",
    "BLOCKED_ADVICE",
    "CtgovClient",
    "Page",
    "PageTokenRejected",
    "RateLimiter",
    "RetryPolicy",
    "SourceBlocked",
    "SourceResponseError",
    "SourceUnavailable",
    "SourceVersion",
    "SyncError",
    "parse_retry_after",
    "updated_since_filter",
    "user_agent",
    "watermark",
]

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
#: The API's maximum; a server may clamp it lower, which paging handles (it follows tokens, not sizes).
DEFAULT_PAGE_SIZE = 1000
#: Ascending, so progress is monotone in the last-update date (the API's default for dates is desc).
UPDATED_SORT = "LastUpdatePostDate:asc"
ID_FIELDS = "NCTId,LastUpdatePostDate"



def _package_version() -> str:
    try:
        return importlib.metadata.version("trialfinder")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


_VERSION = _package_version()
#: What a 403 means at ClinicalTrials.gov and what the user can do about it.
BLOCKED_ADVICE = (
    "ClinicalTrials.gov refuses clients this way when they send too many requests or look like an "
    "anonymous robot. Wait a while before trying again, slow down (for example --rate 0.5), set a "
    "User-Agent with a contact address, or load the bulk download instead (--bulk)."
)


# ---------------------------------------------------------------------------------------------- errors


class SyncError(Exception):
    """A sync cannot go on.  ``message`` is written for the person running the command (the CLI prints
    it as is), so every subclass says what happened, where, and what to do next."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status

    def __str__(self) -> str:
        return self.message


class SourceBlocked(SyncError):
    """HTTP 403: the registry is blocking us.  Never retried -- retrying is what gets a client blocked."""


class SourceUnavailable(SyncError):
    """Retries ran out (5xx, 429, timeouts, dropped connections, truncated or invalid bodies)."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 attempts: int = 0, reason: str = "") -> None:
        super().__init__(message, url=url, status=status)
        self.attempts = attempts
        self.reason = reason


class SourceResponseError(SyncError):
    """The server answered, definitively, with something we cannot use (4xx other than 403/429, a
    body that is not what the endpoint returns).  Not retried: asking again gets the same answer."""


class PageTokenRejected(SourceResponseError):
    """The server refused a saved ``pageToken`` (tokens can expire).  The caller restarts the same
    query from its :func:`watermark` instead of resuming, which the ascending sort makes lossless."""


# --------------------------------------------------------------------------------------- small values


@dataclass(frozen=True)
class SourceVersion:
    """``/version``: the API release and when the source's data was last refreshed (its own clock)."""

    api_version: str | None
    data_timestamp: str | None


@dataclass(frozen=True)
class Page:
    """One ``/studies`` page.  ``number`` is 1-based across a resumed walk; ``token`` is the token that
    fetched this page (None for the first), ``next_page_token`` the one to save after committing it."""

    number: int
    studies: list[dict[str, Any]]
    next_page_token: str | None
    token: str | None = None
    total_count: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.  ``max_attempts`` counts every request of one call, the first included.

    Backoff doubles from ``base_delay`` up to ``max_delay``; "equal jitter" keeps half of it fixed and
    randomises the other half, so many clients retrying together spread out yet still wait a while.
    A ``Retry-After`` longer than ``max_retry_after`` is not slept through: the run stops and says so.
    """

    max_attempts: int = 6
    base_delay: float = 2.0
    max_delay: float = 120.0
    max_retry_after: float = 900.0

    def backoff(self, failures: int, rand: float) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based); ``rand`` in [0, 1)."""
        full = min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))
        return full / 2 + full / 2 * rand


class RateLimiter:
    """At most ``rate`` request starts per second (0 or less: no limit).

    Why spacing rather than a token bucket: the registry asks for steady, sequential traffic; a bucket
    would allow bursts after an idle spell (for instance while a large page is being committed).
    """

    def __init__(self, rate: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> float:
        """Block until the next request may start; returns the seconds slept."""
        now = self._clock()
        slept = 0.0
        if self._next is not None and self._next > now:
            slept = self._next - now
            self._sleep(slept)
            now = self._clock()
        self._next = max(now, self._next or now) + self.interval
        return slept


# ------------------------------------------------------------------------------------------- helpers


def user_agent(contact: str | None = None) -> str:
    """The ``User-Agent`` header: names trialfinder, and the operator's contact when given, which is
    what registries ask of automated clients before they consider blocking them."""
    base = f"trialfinder/{_VERSION} (clinical-trial finder; sync)"
    return f"{base} contact: {contact}" if contact else base


def _as_date(value: str | date | datetime | None) -> date | None:
    """A v2 date ("2024-06-24", "2024-06", "2024"), a dataTimestamp ("2025-11-28T09:00:06"), or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()[:10]
    parts = text.split("-")
    try:
        if len(parts) == 3:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        if len(parts) == 2:
            return date(int(parts[0]), int(parts[1]), 1)
        if len(parts) == 1 and len(parts[0]) == 4:
            return date(int(parts[0]), 1, 1)
    except ValueError:
        pass
    raise ValueError(f"not a date: {value!r}")


def watermark(newest_stored: str | date | None = None, data_timestamp: str | date | None = None) -> date | None:
    """The date to ask for changes from: the newest last-update date already stored (or, failing that,
    the ``dataTimestamp`` saved at the last successful sync), minus one day.  None means "fetch all".

    Why never the local clock: the source's dates are the source's; a skewed or differently zoned local
    clock would silently skip a day.  Why minus one day: the filter is day-granular and the source may
    still be posting records dated on that day, so the overlap is deliberate (upserts make it harmless).
    Given both, the earlier one wins, since fetching a little too much is safe and too little is not.
    """
    dates = [d for d in (_as_date(newest_stored), _as_date(data_timestamp)) if d is not None]
    if not dates:
        return None
    return min(dates) - timedelta(days=1)


def updated_since_filter(since: str | date) -> str:
    """``filter.advanced`` for "last updated on or after ``since``": ``AREA[LastUpdatePostDate]RANGE[d,MAX]``."""
    day = _as_date(since)
    if day is None:
        raise ValueError("since: a date is required")
    return f"AREA[LastUpdatePostDate]RANGE[{day.isoformat()},MAX]"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds ("120") or an HTTP date.

    ``now`` should be the response's own ``Date`` header when it has one, so a date is read against the
    server's clock, not ours.  None when absent or unreadable (the caller then backs off as usual).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    reference = now or datetime.now(tz=when.tzinfo)
    if reference.tzinfo is None and when.tzinfo is not None:
        reference = reference.replace(tzinfo=when.tzinfo)
    return max(0.0, (when - reference).total_seconds())


def _header_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


# -------------------------------------------------------------------------------------------- client


class _Retryable(Exception):
    """Internal: one failed attempt that may succeed if repeated (``wait`` overrides the backoff)."""

    def __init__(self, reason: str, *, status: int | None = None, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait


_DROPPED = (http.client.IncompleteRead, http.client.RemoteDisconnected, http.client.BadStatusLine,
            ConnectionError, EOFError, zlib.error, gzip.BadGzipFile)


@dataclass
class CtgovClient:
    """Sequential, rate-limited, retrying access to a v2 server.

    ``clock``/``sleep``/``random`` are injectable so tests run the whole retry policy in milliseconds;
    ``on_event`` receives one human line per wait or retry (the CLI shows them as progress).
    ``requests`` counts HTTP requests sent, retries included, for the "requests per day of changes" figure.
    """

    base_url: str = DEFAULT_BASE_URL
    rate: float = 1.0
    timeout: float = 60.0
    contact: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = _random.random
    on_event: Callable[[str], None] | None = None
    requests: int = field(default=0, init=False)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.limiter = RateLimiter(self.rate, clock=self.clock, sleep=self.sleep)
        self._opener = urllib.request.build_opener()

    # ------------------------------------------------------------------ endpoints

    def version(self) -> SourceVersion:
        """``/version``: the source's ``dataTimestamp`` is what freshness and watermarks are judged by."""
        url, body = self.get_json("/version")
        if not isinstance(body, dict):
            raise SourceResponseError(f"{url} did not answer with a JSON object, so it is not an API v2 server.",
                                      url=url)
        ts = body.get("dataTimestamp")
        api = body.get("apiVersion")
        return SourceVersion(str(api) if api is not None else None, str(ts) if ts is not None else None)

    def study(self, nct_id: str) -> dict[str, Any] | None:
        """``/studies/{nctId}``; None when the source does not have it (404)."""
        url, body = self.get_json(f"/studies/{urllib.parse.quote(nct_id)}", allow_404=True)
        if body is None:
            return None
        if not isinstance(body, dict):
            raise SourceResponseError(f"{url} did not answer with a study record (a JSON object).", url=url)
        return body

    def iter_pages(self, params: Mapping[str, str | int] | None = None, *, page_token: str | None = None,
                   start_page: int = 1, page_size: int = DEFAULT_PAGE_SIZE,
                   count_total: bool = True) -> Iterator[Page]:
        """Walk ``/studies`` page by page with ``params``, starting at ``page_token`` (a saved resume point).

        Ends on a missing/empty ``nextPageToken`` **or** an empty page: the registry hands out a token
        after a page that is exactly full, and the page it leads to is empty.  A token that comes back
        unchanged would loop forever, so it is an error.
        """
        base = {k: str(v) for k, v in (params or {}).items()}
        base["pageSize"] = str(page_size)
        base.setdefault("format", "json")
        token = page_token
        number = start_page
        first = True
        while True:
            query = dict(base)
            if token:
                query["pageToken"] = token
            if count_total and first and not token:
                query["countTotal"] = "true"
            url, body = self.get_json("/studies", query, token_sent=bool(token))
            studies, next_token, total = _page_parts(url, body)
            yield Page(number=number, studies=studies, next_page_token=next_token or None, token=token,
                       total_count=total)
            if not studies or not next_token:
                return
            if next_token == token:
                raise SourceResponseError(f"{url} returned the same nextPageToken again; paging stopped "
                                          "so it does not loop forever.", url=url)
            token = next_token
            number += 1
            first = False

    def iter_updated(self, since: str | date | None, *, page_token: str | None = None, start_page: int = 1,
                     page_size: int = DEFAULT_PAGE_SIZE, params: Mapping[str, str | int] | None = None,
                     ) -> Iterator[Page]:
        """Pages of studies last updated on or after ``since`` (all studies when None), oldest first.

        ``since`` is normally :func:`watermark`'s answer.  Extra ``params`` (say ``query.cond``) narrow the
        mirror; they are passed through unchanged.
        """
        query: dict[str, str | int] = dict(params or {})
        if since is not None:
            query["filter.advanced"] = updated_since_filter(since)
        query["sort"] = UPDATED_SORT
        return self.iter_pages(query, page_token=page_token, start_page=start_page, page_size=page_size)

    def iter_ids(self, *, page_size: int = DEFAULT_PAGE_SIZE,
                 params: Mapping[str, str | int] | None = None) -> Iterator[tuple[str, str | None]]:
        """Every ``(nctId, lastUpdatePostDate)`` the source has, for reconcile: a stored study absent
        here was removed upstream, which date queries can never tell.  Records without an id are skipped."""
        query: dict[str, str | int] = dict(params or {})
        query["fields"] = ID_FIELDS
        for page in self.iter_pages(query, page_size=page_size):
            for study in page.studies:
                ps = study.get("protocolSection") if isinstance(study, dict) else None
                ps = ps if isinstance(ps, dict) else {}
                nct = (ps.get("identificationModule") or {}).get("nctId")
                if not nct:
                    continue
                updated = ((ps.get("statusModule") or {}).get("lastUpdatePostDateStruct") or {}).get("date")
                yield str(nct), (str(updated) if updated else None)

    # ------------------------------------------------------------------ transport

    def url_for(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The full URL of ``path`` (relative to ``base_url``) with ``params`` encoded."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(list(params.items()), safe=",[]:")
        return url

    def get_json(self, path: str, params: Mapping[str, str] | None = None, *, allow_404: bool = False,
                 token_sent: bool = False) -> tuple[str, Any]:
        """GET ``path`` and decode JSON, under the rate limit and the retry policy; returns (url, body).

        A 404 gives body None when ``allow_404``.  Raises :class:`SourceBlocked` on 403,
        :class:`SourceUnavailable` when retries run out, :class:`SourceResponseError` on other 4xx.
        """
        url = self.url_for(path, params)
        failures = 0
        while True:
            self.limiter.wait()
            self.requests += 1
            try:
                return url, self._attempt(url, allow_404=allow_404, token_sent=token_sent)
            except _Retryable as exc:
                failures += 1
                if failures >= self.retry.max_attempts:
                    raise SourceUnavailable(
                        f"Giving up on {url} after {failures} attempts; the last one failed with: "
                        f"{exc.reason}. Everything committed so far is kept; run the sync again later to "
                        "continue.", url=url, status=exc.status, attempts=failures, reason=exc.reason,
                    ) from None
                if exc.wait is not None:
                    if exc.wait > self.retry.max_retry_after:
                        raise SourceUnavailable(
                            f"{url} asked us to wait {exc.wait:.0f} s before retrying ({exc.reason}), longer "
                            f"than the {self.retry.max_retry_after:.0f} s this sync waits. Everything "
                            "committed so far is kept; run the sync again later to continue.",
                            url=url, status=exc.status, attempts=failures, reason=exc.reason,
                        ) from None
                    delay = exc.wait
                else:
                    delay = self.retry.backoff(failures, self.random())
                self._event(f"{exc.reason}; retrying in {delay:.1f} s (attempt {failures + 1} of "
                            f"{self.retry.max_attempts})")
                self.sleep(delay)

    def _event(self, text: str) -> None:
        if self.on_event is not None:
            self.on_event(text)

    def _attempt(self, url: str, *, allow_404: bool, token_sent: bool) -> Any:
        request = urllib.request.Request(url, headers={
            "User-Agent": user_agent(self.contact),
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
        })
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                raw = resp.read()
                encoding = (resp.headers.get("Content-Encoding") or "").lower()
        except urllib.error.HTTPError as exc:
            return self._http_error(url, exc, allow_404=allow_404, token_sent=token_sent)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"no answer within {self.timeout:g} s") from None
            raise _Retryable(f"connection failed ({reason})") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout:g} s") from None
        except _DROPPED as exc:
            raise _Retryable(f"connection dropped ({type(exc).__name__})") from None
        except OSError as exc:
            raise _Retryable(f"connection failed ({exc})") from None
        try:
            if encoding == "gzip":
                raw = gzip.decompress(raw)
            return json.loads(raw)
        except (_DROPPED + (ValueError,)) as exc:
            raise _Retryable(f"truncated or invalid JSON body ({type(exc).__name__})") from None

    def _http_error(self, url: str, exc: urllib.error.HTTPError, *, allow_404: bool, token_sent: bool) -> Any:
        status = exc.code
        try:
            detail = exc.read()[:300].decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            exc.close()
        phrase = f"HTTP {status} {exc.reason}".strip()
        if status == 403:
            raise SourceBlocked(f"{url} refused the request ({phrase}). {BLOCKED_ADVICE}", url=url, status=status)
        if status == 404 and allow_404:
            return None
        if status == 429 or status >= 500:
            wait = parse_retry_after(exc.headers.get("Retry-After"), now=_header_date(exc.headers.get("Date")))
            raise _Retryable(phrase, status=status, wait=wait)
        if status in (400, 404, 410) and token_sent:
            raise PageTokenRejected(f"{url} rejected the saved page token ({phrase}); start this query again "
                                    "from the watermark instead of resuming.", url=url, status=status)
        suffix = f": {detail}" if detail else ""
        raise SourceResponseError(f"{url} answered {phrase}{suffix}", url=url, status=status)


def _page_parts(url: str, body: Any) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """Studies, next token and total count of a ``/studies`` answer, or a clear error if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("studies", []), list):
        raise SourceResponseError(f"{url} did not answer with an API v2 studies page "
                                  '(a JSON object with a "studies" list).', url=url)
    studies = [s for s in body.get("studies") or [] if isinstance(s, dict)]
    token = body.get("nextPageToken")
    total = body.get("totalCount")
    return studies, (str(token) if token else None), (int(total) if isinstance(total, int) else None)
