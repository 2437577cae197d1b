"""The API v2 client against the loopback stand-in: paging, resume, incremental queries, reconcile ids,
and every fault the registry throws at a sync (429, 5xx, drops, truncation, slowness, 403).

Time is fake: the client's clock and sleep are injected, so backoff and ``Retry-After`` are asserted
exactly and cost nothing; only the "slow answer" test waits (a fraction of a second) for a real timeout.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from standin_api import (
    FakeTime,
    StandinAPI,
    StandinRegistry,
    last_update,
    nct_of,
    new_study_records,
    seed_records,
    standin_client,
)

from trialfinder.sources.ctgov_api import (
    BLOCKED_ADVICE,
    CtgovClient,
    PageTokenRejected,
    RateLimiter,
    RetryPolicy,
    SourceBlocked,
    SourceResponseError,
    SourceUnavailable,
    SyncError,
    parse_retry_after,
    updated_since_filter,
    user_agent,
    watermark,
)

pytest_plugins = ["conftest_standin"]  # the stand-in fixtures: standin, standin_registry

SEED_IDS = sorted(nct_of(r) for r in seed_records())


def ids(pages) -> list[str]:
    return [nct_of(s) for p in pages for s in p.studies]


# ------------------------------------------------------------------------------------- pure helpers


def test_watermark_is_the_newest_date_minus_one_day_never_the_clock():
    assert watermark("2024-06-27") == date(2024, 6, 26)
    assert watermark(None, "2025-11-28T09:00:06") == date(2025, 11, 27)
    assert watermark(date(2024, 3, 1)) == date(2024, 2, 29)
    assert watermark("2024-06") == date(2024, 5, 31)  # a month-granular date counts from its first day
    assert watermark("2024-06-27", "2024-06-20T00:00:00") == date(2024, 6, 19)  # the earlier one wins
    assert watermark() is None
    assert watermark("", None) is None
    with pytest.raises(ValueError, match="not a date: 'yesterday'"):
        watermark("yesterday")


def test_updated_since_filter_and_user_agent():
    assert updated_since_filter("2024-06-26") == "AREA[LastUpdatePostDate]RANGE[2024-06-26,MAX]"
    assert updated_since_filter(date(2024, 1, 2)) == "AREA[LastUpdatePostDate]RANGE[2024-01-02,MAX]"
    assert user_agent().startswith("trialfinder/")
    assert user_agent("ops@example.org").endswith(" contact: ops@example.org")


def test_parse_retry_after_seconds_and_http_dates():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    now = datetime(2024, 6, 28, 12, 0, 0, tzinfo=UTC)
    later = email.utils.format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, now=now) == 90.0
    earlier = email.utils.format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


def test_backoff_doubles_with_equal_jitter_and_a_cap():
    policy = RetryPolicy(base_delay=2.0, max_delay=10.0)
    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert [policy.backoff(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([2.0, 4.0, 8.0], abs=1e-4)


def test_rate_limiter_spaces_request_starts():
    fake = FakeTime()
    limiter = RateLimiter(2.0, clock=fake.clock, sleep=fake.sleep)
    assert [limiter.wait() for _ in range(3)] == [0.0, 0.5, 0.5]
    fake.now += 10  # an idle spell earns no burst
    assert limiter.wait() == 0.0
    assert limiter.wait() == 0.5
    unlimited = RateLimiter(0, clock=fake.clock, sleep=fake.sleep)
    assert [unlimited.wait() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_sync_error_carries_a_user_facing_message():
    err = SourceBlocked("blocked, slow down", url="http://x", status=403)
    assert isinstance(err, SyncError)
    assert str(err) == err.message == "blocked, slow down"
    assert (err.url, err.status) == ("http://x", 403)


# ------------------------------------------------------------------------------------------- paging


def test_version_reports_the_source_timestamp(standin: StandinAPI):
    client = standin_client(standin)
    v = client.version()
    assert (v.api_version, v.data_timestamp) == ("2.0.5", "2024-06-28T09:00:06")
    standin.registry.next_day()
    assert client.version().data_timestamp == "2024-06-29T09:00:06"


def test_full_walk_pages_oldest_first_with_total_count(standin: StandinAPI):
    client = standin_client(standin)
    pages = list(client.iter_updated(None, page_size=4))
    assert [len(p.studies) for p in pages] == [4, 4, 3]
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[0].total_count == 11 and pages[1].total_count is None
    assert pages[0].token is None and pages[1].token == pages[0].next_page_token
    assert pages[-1].next_page_token is None
    assert sorted(ids(pages)) == SEED_IDS
    dates = [last_update(s) for p in pages for s in p.studies]
    assert dates == sorted(dates)  # ascending: a restart from the watermark loses nothing
    sent = standin.registry.requests("/studies")
    assert [r.params.get("sort") for r in sent] == ["LastUpdatePostDate:asc"] * 3
    assert [r.params.get("countTotal") for r in sent] == ["true", None, None]
    assert all(r.params["pageSize"] == "4" for r in sent)
    assert "filter.advanced" not in sent[0].params
    assert client.requests == 3


def test_paging_ends_on_an_empty_page_after_an_exactly_full_one(standin: StandinAPI):
    client = standin_client(standin)
    pages = list(client.iter_updated(None, page_size=11))
    assert [len(p.studies) for p in pages] == [11, 0]
    assert pages[0].next_page_token is not None  # the registry's quirk, reproduced by the stand-in
    assert pages[1].next_page_token is None
    assert len(standin.registry.requests("/studies")) == 2


def test_server_clamped_page_size_is_followed_by_tokens(standin: StandinAPI):
    standin.registry.max_page_size = 3
    client = standin_client(standin)
    pages = list(client.iter_updated(None))
    assert [len(p.studies) for p in pages] == [3, 3, 3, 2]
    assert sorted(ids(pages)) == SEED_IDS
    assert standin.registry.requests("/studies")[0].params["pageSize"] == "1000"


def test_resume_from_a_saved_token_fetches_the_rest_once(standin: StandinAPI):
    first = standin_client(standin)
    committed = []
    saved = None
    for page in first.iter_updated(None, page_size=4):
        committed.extend(nct_of(s) for s in page.studies)
        saved = (page.number, page.next_page_token)
        if page.number == 2:
            break  # "killed" after committing page 2
    assert len(committed) == 8
    second = standin_client(standin)
    rest = list(second.iter_updated(None, page_size=4, page_token=saved[1], start_page=saved[0] + 1))
    assert [p.number for p in rest] == [3]
    assert sorted(committed + ids(rest)) == SEED_IDS


def test_a_rejected_saved_token_says_to_restart_from_the_watermark(standin: StandinAPI):
    client = standin_client(standin)
    with pytest.raises(PageTokenRejected) as info:
        list(client.iter_updated(None, page_token="bm90LWEtdG9rZW4"))
    assert info.value.status == 400
    assert info.value.message.endswith("rejected the saved page token (HTTP 400 Bad Request); start this query "
                                       "again from the watermark instead of resuming.")
    assert len(standin.registry.requests("/studies")) == 1  # never retried


def test_second_day_fetches_only_the_changes(standin: StandinAPI):
    reg = standin.registry
    since = watermark(max(last_update(r) for r in seed_records()))
    assert since == date(2024, 6, 26)
    day = reg.next_day()
    reg.set_status("NCT06470217", "ACTIVE_NOT_RECRUITING")
    reg.add_site("NCT06470256", "Lyon Sud Hospital", "Lyon", "France")
    new = [reg.add(r) for r in new_study_records()]
    reg.remove("NCT06470100")
    client = standin_client(standin)
    pages = list(client.iter_updated(since))
    got = ids(pages)
    # NCT06470230 was last updated on 2024-06-27: inside the deliberate one-day overlap
    assert sorted(got) == sorted(["NCT06470230", "NCT06470217", "NCT06470256", *new])
    assert got[0] == "NCT06470230"
    assert all(last_update(s) == day for p in pages for s in p.studies if nct_of(s) != "NCT06470230")
    sent = reg.requests("/studies")
    assert len(sent) == 1 and client.requests == 1
    assert sent[0].params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-06-26,MAX]"
    changed = {nct_of(s): s for s in pages[0].studies}
    assert changed["NCT06470217"]["protocolSection"]["statusModule"]["overallStatus"] == "ACTIVE_NOT_RECRUITING"
    sites = changed["NCT06470256"]["protocolSection"]["contactsLocationsModule"]["locations"]
    assert sites[-1]["city"] == "Lyon"


def test_id_walk_for_reconcile(standin: StandinAPI):
    standin.registry.remove("NCT06470100")
    client = standin_client(standin)
    pairs = list(client.iter_ids(page_size=4))
    assert [n for n, _ in pairs] == sorted(set(SEED_IDS) - {"NCT06470100"})
    assert dict(pairs)["NCT00777179"] == "2016-10-10"
    sent = standin.registry.requests("/studies")
    assert {r.params["fields"] for r in sent} == {"NCTId,LastUpdatePostDate"}
    assert len(sent) == 3


def test_single_study_and_missing_study(standin: StandinAPI):
    client = standin_client(standin)
    rec = client.study("NCT06470230")
    assert nct_of(rec) == "NCT06470230"
    assert client.study("NCT99999999") is None


def test_requests_name_trialfinder_and_the_contact(standin: StandinAPI):
    client = standin_client(standin, contact="ops@example.org")
    client.version()
    ua = standin.registry.requests("/version")[0].headers["User-Agent"]
    assert ua.startswith("trialfinder/") and ua.endswith("contact: ops@example.org")


def test_rate_limit_applies_between_requests(standin: StandinAPI):
    fake = FakeTime()
    client = standin_client(standin, fake, rate=1.0)
    list(client.iter_updated(None, page_size=4))
    assert fake.sleeps == [1.0, 1.0]  # three requests, spaced one second apart on the client's clock


# ------------------------------------------------------------------------------------------- faults


def test_429_honours_retry_after_seconds(standin: StandinAPI):
    standin.registry.inject("status", path="/studies", status=429, headers={"Retry-After": "7"})
    fake = FakeTime()
    events: list[str] = []
    client = standin_client(standin, fake, on_event=events.append)
    pages = list(client.iter_updated(None, page_size=100))
    assert sorted(ids(pages)) == SEED_IDS
    assert fake.sleeps == [7.0]
    assert events == ["HTTP 429 Too Many Requests; retrying in 7.0 s (attempt 2 of 4)"]
    assert [r.fault for r in standin.registry.requests("/studies")] == ["status", None]


def test_429_honours_retry_after_as_an_http_date(standin: StandinAPI):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    standin.registry.inject("status", path="/version", status=429, headers={"Retry-After": when})
    fake = FakeTime()
    client = standin_client(standin, fake)
    client.version()
    assert len(fake.sleeps) == 1 and 28.0 <= fake.sleeps[0] <= 31.0  # read against the server's Date


def test_a_retry_after_longer_than_the_limit_stops_the_run(standin: StandinAPI):
    standin.registry.inject("status", path="/version", status=429, headers={"Retry-After": "3600"})
    fake = FakeTime()
    client = standin_client(standin, fake, retry=RetryPolicy(max_retry_after=600))
    with pytest.raises(SourceUnavailable) as info:
        client.version()
    assert info.value.message == (
        f"{standin.base_url}/version asked us to wait 3600 s before retrying (HTTP 429 Too Many Requests), "
        "longer than the 600 s this sync waits. Everything committed so far is kept; run the sync again "
        "later to continue."
    )
    assert fake.sleeps == []


def test_5xx_is_retried_with_exponential_backoff(standin: StandinAPI):
    standin.registry.inject("status", path="/studies", status=503, times=2)
    fake = FakeTime()
    client = standin_client(standin, fake, retry=RetryPolicy(max_attempts=4, base_delay=2.0))
    pages = list(client.iter_updated(None, page_size=100))
    assert sorted(ids(pages)) == SEED_IDS
    assert fake.sleeps == [1.0, 2.0]  # random() == 0: half of 2 s, then half of 4 s
    assert client.requests == 3


def test_jitter_uses_the_injected_random(standin: StandinAPI):
    standin.registry.inject("status", path="/version", status=500, times=1)
    fake = FakeTime()
    client = standin_client(standin, fake, random=lambda: 0.5, retry=RetryPolicy(base_delay=4.0))
    client.version()
    assert fake.sleeps == [3.0]  # 4/2 + 4/2 * 0.5


def test_retries_run_out_with_a_clear_error(standin: StandinAPI):
    standin.registry.inject("status", path="/studies", status=502, times=10)
    fake = FakeTime()
    client = standin_client(standin, fake, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(SourceUnavailable) as info:
        list(client.iter_updated("2024-06-26"))
    err = info.value
    assert err.attempts == 3 and err.status == 502
    assert err.message == (
        f"Giving up on {err.url} after 3 attempts; the last one failed with: HTTP 502 Bad Gateway. "
        "Everything committed so far is kept; run the sync again later to continue."
    )
    assert err.url.startswith(standin.base_url + "/studies?")
    assert len(standin.registry.requests("/studies")) == 3
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize("kind, reason", [
    ("drop", "connection dropped (RemoteDisconnected)"),
    ("truncate", "connection dropped (IncompleteRead)"),
    ("bad_json", "truncated or invalid JSON body (JSONDecodeError)"),
])
def test_dropped_and_truncated_answers_are_retried(standin: StandinAPI, kind: str, reason: str):
    standin.registry.inject(kind, path="/studies")
    events: list[str] = []
    client = standin_client(standin, on_event=events.append)
    pages = list(client.iter_updated(None, page_size=100))
    assert sorted(ids(pages)) == SEED_IDS
    assert events == [f"{reason}; retrying in 1.0 s (attempt 2 of 4)"]
    assert [r.fault for r in standin.registry.requests("/studies")] == [kind, None]


def test_truncated_uncompressed_body_is_retried(standin: StandinAPI):
    standin.registry.gzip_responses = False
    standin.registry.inject("truncate", path="/studies")
    events: list[str] = []
    client = standin_client(standin, on_event=events.append)
    assert sorted(ids(client.iter_updated(None, page_size=100))) == SEED_IDS
    assert events == ["connection dropped (IncompleteRead); retrying in 1.0 s (attempt 2 of 4)"]


def test_a_slow_answer_times_out_and_is_retried(standin: StandinAPI):
    standin.registry.inject("slow", path="/version", delay=1.0)
    events: list[str] = []
    client = standin_client(standin, timeout=0.25, on_event=events.append)
    started = time.monotonic()
    assert client.version().data_timestamp == "2024-06-28T09:00:06"
    assert time.monotonic() - started < 1.0  # did not wait for the slow answer
    assert events == ["no answer within 0.25 s; retrying in 1.0 s (attempt 2 of 4)"]


def test_a_refused_connection_is_retried_then_reported(standin: StandinAPI):
    url = standin.base_url
    standin.stop()
    client = CtgovClient(url, rate=0, timeout=1.0, clock=FakeTime().clock, sleep=lambda s: None,
                         retry=RetryPolicy(max_attempts=2))
    with pytest.raises(SourceUnavailable) as info:
        client.version()
    assert info.value.attempts == 2
    assert "the last one failed with: connection failed (" in info.value.message


def test_403_stops_at_once_with_advice(standin: StandinAPI):
    standin.registry.inject("status", path="/studies", status=403, times=5)
    fake = FakeTime()
    client = standin_client(standin, fake)
    with pytest.raises(SourceBlocked) as info:
        list(client.iter_updated(None))
    assert info.value.status == 403
    assert info.value.message == f"{info.value.url} refused the request (HTTP 403 Forbidden). {BLOCKED_ADVICE}"
    assert "--bulk" in BLOCKED_ADVICE and "User-Agent" in BLOCKED_ADVICE and "slow down" in BLOCKED_ADVICE
    assert len(standin.registry.requests("/studies")) == 1
    assert fake.sleeps == []


def test_other_client_errors_are_not_retried(standin: StandinAPI):
    client = standin_client(standin)
    with pytest.raises(SourceResponseError) as info:
        list(client.iter_pages({"query.cond": "lupus"}))
    assert not isinstance(info.value, PageTokenRejected)
    assert info.value.status == 400
    assert info.value.message == (
        f"{info.value.url} answered HTTP 400 Bad Request: "
        '{"message": "unsupported parameter(s) in the stand-in: query.cond"}'
    )
    assert len(standin.registry.requests("/studies")) == 1


def test_a_repeated_token_stops_paging(standin: StandinAPI):
    rec = seed_records()[0]
    standin.registry.answer = lambda path, params: (200, {"studies": [rec], "nextPageToken": "same"})
    client = standin_client(standin)
    with pytest.raises(SourceResponseError, match="returned the same nextPageToken again"):
        list(client.iter_pages({}))
    assert len(standin.registry.requests("/studies")) == 2


def test_an_answer_that_is_not_a_page_is_an_error(standin_registry: StandinRegistry, standin: StandinAPI):
    standin_registry.answer = lambda path, params: (200, [1, 2, 3])
    client = standin_client(standin)
    with pytest.raises(SourceResponseError) as info:
        list(client.iter_pages({}))
    assert info.value.message.endswith('did not answer with an API v2 studies page (a JSON object with a '
                                       '"studies" list).')
    with pytest.raises(SourceResponseError, match="did not answer with a JSON object"):
        client.version()


def test_an_empty_page_ends_paging_even_with_a_token(standin: StandinAPI):
    standin.registry.answer = lambda path, params: (200, {"studies": [], "nextPageToken": "more"})
    client = standin_client(standin)
    pages = list(client.iter_pages({}))
    assert [(len(p.studies), p.next_page_token) for p in pages] == [(0, "more")]
    assert len(standin.registry.requests("/studies")) == 1
