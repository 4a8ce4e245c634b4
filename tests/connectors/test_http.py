"""HttpClient: retries, Retry-After, safety of non-idempotent requests, auth refresh, secrets."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers
from urllib3.exceptions import MaxRetryError, NameResolutionError

from connectors.errors import (
    AuthError,
    AuthExpired,
    ConnectorConfigError,
    ConnectorError,
    RateLimited,
    RecordRejected,
    TransientError,
    Unreachable,
    VendorError,
)
from connectors.http import (
    BasicAuth,
    BearerToken,
    HeaderBudget,
    HeaderToken,
    HttpClient,
    OAuthRefresher,
    Timeouts,
    body_excerpt,
    default_classifier,
    headroom_from_headers,
    make_session,
    parse_retry_after,
)
from connectors.ratelimit import RateLimiter
from tests.connectors.conftest import connection_refused, sample

BASE = "https://api.example.com"
CONTACTS = f"{BASE}/crm/v3/objects/contacts"


class Sleeps(list[float]):
    """An injected sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(**options: Any) -> tuple[HttpClient, Sleeps]:
    sleeps = Sleeps()
    options.setdefault("sleep", sleeps)
    return HttpClient("hubspot-main", BASE, **options), sleeps


# ---------------------------------------------------------------------------------------------
# Retries


def test_get_is_retried_on_503_then_succeeds(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=503, body="busy")
    rsps.get(CONTACTS, json={"results": []}, match=[matchers.query_param_matcher({"limit": "10"})])
    http, sleeps = client()

    response = http.get("/crm/v3/objects/contacts", params={"limit": 10})

    assert response.status == 200
    assert response.json == {"results": []}
    assert len(rsps.calls) == 2
    assert len(sleeps) == 1
    assert 0.5 <= sleeps[0] <= 1.0  # first backoff step: 0.5 s plus up to 0.5 s jitter
    assert http.stats.as_dict() == {
        "requests": 2,
        "retries": 1,
        "no_answer": 0,
        "by_status": {200: 1, 503: 1},
    }


def test_retry_after_seconds_is_honoured(rsps: responses.RequestsMock) -> None:
    rsps.get(
        CONTACTS, status=429, headers={"Retry-After": "7"}, json=sample("hubspot-error-429-daily")
    )
    rsps.get(CONTACTS, json={"results": []})
    http, sleeps = client()

    http.get("/crm/v3/objects/contacts")

    assert sleeps == [7.0]


def test_retry_after_is_capped_at_max_wait(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=429, headers={"Retry-After": "86400"})
    rsps.get(CONTACTS, json={})
    http, sleeps = client(max_wait=30.0)

    http.get("/crm/v3/objects/contacts")

    assert sleeps == [30.0]


def test_503_with_retry_after_backs_off_as_asked(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=503, headers={"Retry-After": "2"})
    rsps.get(CONTACTS, json={})
    http, sleeps = client()

    http.get("/crm/v3/objects/contacts")

    assert sleeps == [2.0]


def test_get_gives_up_after_max_attempts_with_the_last_error(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=502, body="bad gateway")
    http, sleeps = client(max_attempts=3)

    with pytest.raises(TransientError) as raised:
        http.get("/crm/v3/objects/contacts")

    assert len(rsps.calls) == 3
    assert len(sleeps) == 2
    assert raised.value.system == "hubspot-main"
    assert "HTTP 502" in str(raised.value)
    assert http.stats.retries == 2


def test_post_is_not_retried_on_500(rsps: responses.RequestsMock) -> None:
    rsps.post(CONTACTS, status=500, body="oops", match=[matchers.json_params_matcher({"a": 1})])
    http, sleeps = client()

    with pytest.raises(TransientError) as raised:
        http.post("/crm/v3/objects/contacts", json={"a": 1})

    assert type(raised.value) is TransientError
    assert len(rsps.calls) == 1
    assert sleeps == []
    assert raised.value.system == "hubspot-main"


def test_post_is_not_retried_on_read_timeout(rsps: responses.RequestsMock) -> None:
    rsps.post(CONTACTS, body=requests.exceptions.ReadTimeout("read timed out"))
    http, sleeps = client(timeouts=Timeouts(connect=1, read=5))

    with pytest.raises(TransientError) as raised:
        http.post("/crm/v3/objects/contacts", json={"a": 1})

    assert len(rsps.calls) == 1
    assert sleeps == []
    assert "5 s read timeout" in str(raised.value)
    assert "may have processed" in str(raised.value)


def test_post_marked_idempotent_is_retried_on_500(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{CONTACTS}/search", status=500)
    rsps.post(f"{CONTACTS}/search", json={"results": []})
    http, sleeps = client()

    http.post("/crm/v3/objects/contacts/search", json={}, idempotent=True)

    assert len(rsps.calls) == 2
    assert len(sleeps) == 1


def test_get_marked_not_idempotent_is_not_retried(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=500)
    http, _ = client()

    with pytest.raises(TransientError):
        http.get("/crm/v3/objects/contacts", idempotent=False)

    assert len(rsps.calls) == 1


def test_post_is_retried_on_429(rsps: responses.RequestsMock) -> None:
    body = {"properties": {"email": "a@example.com"}}
    rsps.post(CONTACTS, status=429, match=[matchers.json_params_matcher(body)])
    rsps.post(CONTACTS, status=201, json={"id": "1"}, match=[matchers.json_params_matcher(body)])
    http, sleeps = client()

    response = http.post("/crm/v3/objects/contacts", json=body)

    assert response.status == 201
    assert response.json == {"id": "1"}
    assert len(sleeps) == 1


def test_post_is_retried_when_the_connection_was_refused(rsps: responses.RequestsMock) -> None:
    rsps.post(CONTACTS, body=connection_refused())
    rsps.post(CONTACTS, status=201, json={"id": "1"})
    http, sleeps = client()

    response = http.post("/crm/v3/objects/contacts", json={"properties": {}})

    assert response.json == {"id": "1"}
    assert len(sleeps) == 1
    assert http.stats.no_answer == 1


def test_post_is_retried_on_connect_timeout(rsps: responses.RequestsMock) -> None:
    rsps.post(CONTACTS, body=requests.exceptions.ConnectTimeout("connect timed out"))
    rsps.post(CONTACTS, status=201, json={"id": "1"})
    http, _ = client()

    assert http.post("/crm/v3/objects/contacts", json={}).status == 201


def test_post_is_not_retried_on_connection_reset(rsps: responses.RequestsMock) -> None:
    reset = requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    rsps.post(CONTACTS, body=reset)
    http, _ = client()

    with pytest.raises(TransientError) as raised:
        http.post("/crm/v3/objects/contacts", json={})

    assert "Connection reset by peer" in str(raised.value)
    assert len(rsps.calls) == 1


def test_refused_every_time_is_unreachable_naming_the_host(rsps: responses.RequestsMock) -> None:
    url = f"{CONTACTS}?hapikey=very-secret-key-123"
    rsps.get(url, body=connection_refused())
    http, sleeps = client(max_attempts=3)

    with pytest.raises(Unreachable) as raised:
        http.get(url)

    message = str(raised.value)
    assert "api.example.com" in message
    assert "very-secret-key-123" not in message
    assert "hapikey" not in message
    assert "3 attempts" in message
    assert raised.value.system == "hubspot-main"
    assert len(sleeps) == 2


def test_dns_failure_is_unreachable(rsps: responses.RequestsMock) -> None:
    failure = NameResolutionError("api.example.com", None, socket.gaierror(-2, "Name unknown"))  # type: ignore[arg-type]
    rsps.get(CONTACTS, body=requests.ConnectionError(MaxRetryError(None, "/", failure)))  # type: ignore[arg-type]
    http, _ = client(max_attempts=1)

    with pytest.raises(Unreachable, match="DNS lookup failed"):
        http.get("/crm/v3/objects/contacts")


def test_tls_failure_is_unreachable_without_retry(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, body=requests.exceptions.SSLError("certificate verify failed"))
    http, sleeps = client()

    with pytest.raises(Unreachable, match="CA bundle"):
        http.get("/crm/v3/objects/contacts")

    assert sleeps == []


def test_malformed_json_on_get_is_retried_then_raised(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, body="<html><body>Gateway error</body></html>", content_type="text/html")
    http, sleeps = client(max_attempts=3)

    with pytest.raises(TransientError, match="malformed body") as raised:
        http.get("/crm/v3/objects/contacts")

    assert len(rsps.calls) == 3
    assert len(sleeps) == 2
    assert "text/html" in str(raised.value)


def test_truncated_json_is_retried_and_can_recover(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, body='{"results": [{"id": "1"', content_type="application/json")
    rsps.get(CONTACTS, json={"results": [{"id": "1"}]})
    http, _ = client()

    assert http.get("/crm/v3/objects/contacts").json == {"results": [{"id": "1"}]}


def test_malformed_json_on_post_is_not_retried(rsps: responses.RequestsMock) -> None:
    rsps.post(CONTACTS, status=201, body="<html>", content_type="text/html")
    http, _ = client()

    with pytest.raises(TransientError, match="malformed body"):
        http.post("/crm/v3/objects/contacts", json={})

    assert len(rsps.calls) == 1


def test_empty_204_and_text_bodies(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/crm/v8/Contacts", status=204)
    rsps.get(f"{BASE}/health", body="OK", content_type="text/plain")
    http, _ = client()

    empty = http.get("/crm/v8/Contacts")
    text = http.get("/health", expect_json=False)

    assert (empty.status, empty.json) == (204, None)
    assert (text.json, text.text) == (None, "OK")


# ---------------------------------------------------------------------------------------------
# Auth


class CountingFetcher:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    def __call__(self) -> tuple[str, float]:
        token = self.tokens[min(self.calls, len(self.tokens) - 1)]
        self.calls += 1
        return token, 3600.0


def test_401_refreshes_once_and_repeats(rsps: responses.RequestsMock) -> None:
    expired = sample("hubspot-error-401-expired-token")
    rsps.get(
        CONTACTS,
        status=401,
        json=expired,
        match=[matchers.header_matcher({"Authorization": "Bearer old-token-1"})],
    )
    rsps.get(
        CONTACTS,
        json={"results": []},
        match=[matchers.header_matcher({"Authorization": "Bearer new-token-2"})],
    )
    fetch = CountingFetcher("old-token-1", "new-token-2")
    http, sleeps = client(auth=OAuthRefresher(fetch))

    response = http.get("/crm/v3/objects/contacts")

    assert response.status == 200
    assert fetch.calls == 2  # the first token, then one refresh
    assert sleeps == []


def test_401_twice_is_auth_error_naming_the_system(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=401, json=sample("hubspot-error-401-expired-token"))
    fetch = CountingFetcher("token-a-123", "token-b-456")
    http, _ = client(auth=OAuthRefresher(fetch))

    with pytest.raises(AuthError) as raised:
        http.get("/crm/v3/objects/contacts")

    assert type(raised.value) is AuthError
    assert raised.value.system == "hubspot-main"
    assert "hubspot-main" in raised.value.message
    assert "check the credentials" in raised.value.message
    assert fetch.calls == 2
    assert len(rsps.calls) == 2


def test_static_token_refused_says_create_a_new_one(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=401, json={"message": "Authentication credentials not found."})
    http, _ = client(auth=BearerToken("pat-test-static-token"))

    with pytest.raises(AuthError, match="create a new one") as raised:
        http.get("/crm/v3/objects/contacts")

    assert raised.value.system == "hubspot-main"
    assert len(rsps.calls) == 1


def test_403_is_auth_error_without_refresh(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=403, json={"message": "missing scope crm.objects.contacts.read"})
    fetch = CountingFetcher("token-a-123")
    http, _ = client(auth=OAuthRefresher(fetch))

    with pytest.raises(AuthError, match="missing scope"):
        http.get("/crm/v3/objects/contacts")

    assert fetch.calls == 1


def test_refresh_refused_propagates_with_system(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=401)
    calls = []

    def fetch() -> tuple[str, float]:
        calls.append(1)
        if len(calls) > 1:
            raise AuthError("the refresh token was revoked")
        return "first-token-1", 3600.0

    http, _ = client(auth=OAuthRefresher(fetch))

    with pytest.raises(AuthError, match="revoked") as raised:
        http.get("/crm/v3/objects/contacts")

    assert raised.value.system == "hubspot-main"


def test_oauth_refresher_renews_before_expiry() -> None:
    now = [0.0]
    fetch = CountingFetcher("t1-abcdef", "t2-abcdef")
    auth = OAuthRefresher(fetch, skew=60.0, clock=lambda: now[0])
    headers: dict[str, str] = {}

    auth.apply(headers)
    now[0] = 3539.0
    auth.apply(headers)
    assert (fetch.calls, headers["Authorization"]) == (1, "Bearer t1-abcdef")

    now[0] = 3541.0
    auth.apply(headers)
    assert (fetch.calls, headers["Authorization"]) == (2, "Bearer t2-abcdef")


def test_oauth_refresher_parameterized_for_zoho() -> None:
    auth = OAuthRefresher(CountingFetcher("1000.zoho-token"), prefix="Zoho-oauthtoken")
    headers: dict[str, str] = {}
    auth.apply(headers)
    assert headers == {"Authorization": "Zoho-oauthtoken 1000.zoho-token"}
    assert "1000.zoho-token" not in repr(auth)


def test_oauth_refresh_limiter_stops_eager_refreshing() -> None:
    limiter = RateLimiter("2/10 minutes", key="test-zoho-refresh-limit")
    fetch = CountingFetcher("t1-abcdef", "t2-abcdef", "t3-abcdef")
    auth = OAuthRefresher(fetch, refresh_limiter=limiter)

    auth.refresh()
    auth.refresh()
    with pytest.raises(RateLimited) as raised:
        auth.refresh()

    assert fetch.calls == 2
    assert raised.value.retry_after is not None
    assert 500 < raised.value.retry_after <= 600


def test_concurrent_401s_refresh_only_once() -> None:
    import threading

    fetch = CountingFetcher("stale-token", "fresh-token")
    auth = OAuthRefresher(fetch)
    applied = threading.Barrier(2)

    def worker() -> None:
        auth.apply({})  # both threads send with the stale token...
        applied.wait()
        auth.refresh()  # ...and both get a 401

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 2  # the first token and a single refresh


def test_header_token_and_basic_auth() -> None:
    headers: dict[str, str] = {}
    HeaderToken("X-Api-Key", "", "key-123456").apply(headers)
    BasicAuth("insightly-api-key").apply(headers)
    assert headers["X-Api-Key"] == "key-123456"
    assert headers["Authorization"] == "Basic aW5zaWdodGx5LWFwaS1rZXk6"  # "insightly-api-key:"
    with pytest.raises(ConnectorConfigError):
        BearerToken("")  # an unset ${VAR}


# ---------------------------------------------------------------------------------------------
# Secrets never leak


def test_credentials_never_appear_in_messages_or_logs(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "pat-test-0123456789abcdef-SECRET"
    webhook = "wh0oksecretcode"
    base = f"https://portal.example.com/rest/1/{webhook}"
    echo = {"message": f"token {token} refused for auth=query-secret-999 via {webhook}"}
    url = f"{base}/crm.contact.list"
    rsps.post(url, status=503, body="busy")
    rsps.post(
        url,
        status=400,
        json=echo,
        match=[matchers.query_param_matcher({"auth": "query-secret-999"})],
    )
    sleeps = Sleeps()
    http = HttpClient("bitrix", base, auth=BearerToken(token), sleep=sleeps, secrets=[webhook])

    with pytest.raises(VendorError) as raised:
        http.post("crm.contact.list", params={"auth": "query-secret-999"}, json={}, idempotent=True)

    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {token}"
    texts = [str(raised.value), repr(raised.value), *(r.getMessage() for r in caplog.records)]
    texts.append(repr(http.auth))
    assert any("crm.contact.list" in text for text in texts)  # the log did say something
    for text in texts:
        assert token not in text
        assert "query-secret-999" not in text
        assert webhook not in text
    assert "***" in str(raised.value)
    assert any(r.levelno == logging.WARNING for r in caplog.records)  # the retry was logged


def test_debug_log_line_per_request(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="crmhub.http")
    rsps.get(CONTACTS, json={})
    http, _ = client()

    http.get("/crm/v3/objects/contacts", params={"after": "394", "limit": 100})

    lines = [r.getMessage() for r in caplog.records if r.name == "crmhub.http"]
    assert len(lines) == 1
    assert "GET /crm/v3/objects/contacts [after, limit] -> 200" in lines[0]
    assert "394" not in lines[0]


# ---------------------------------------------------------------------------------------------
# Hooks: classifier, headroom, rate limiter


def bitrix_classifier(response: requests.Response) -> ConnectorError | None:
    """What a Bitrix24 connector would supply: its throttling code is a 503."""
    if response.status_code in (429, 503):
        try:
            code = response.json().get("error")
        except ValueError:
            code = None
        if code in ("QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT"):
            return RateLimited(f"{code}: {body_excerpt(response)}", retry_after=1.0)
    return default_classifier(response)


def test_vendor_classifier_turns_bitrix_throttle_into_a_safe_retry(
    rsps: responses.RequestsMock,
) -> None:
    url = "https://portal.example.com/rest/crm.contact.add"
    rsps.post(url, status=503, json=sample("bitrix24-error-query-limit-exceeded"))
    rsps.post(url, json={"result": 42}, match=[matchers.json_params_matcher({"fields": {}})])
    sleeps = Sleeps()
    http = HttpClient(
        "b24", "https://portal.example.com/rest", classifier=bitrix_classifier, sleep=sleeps
    )

    assert http.post("crm.contact.add", json={"fields": {}}).json == {"result": 42}
    assert sleeps == [1.0]


def test_headroom_is_recorded(rsps: responses.RequestsMock) -> None:
    rsps.get(
        CONTACTS,
        json={},
        headers={
            "X-HubSpot-RateLimit-Remaining": "98",
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        },
    )
    rsps.post(f"{CONTACTS}/search", json={})  # search answers carry no headers
    parser = headroom_from_headers(
        {
            "10s": HeaderBudget(
                remaining="X-HubSpot-RateLimit-Remaining",
                limit="X-HubSpot-RateLimit-Max",
                window_ms="X-HubSpot-RateLimit-Interval-Milliseconds",
            )
        }
    )
    http, _ = client(headroom_parser=parser)

    http.get("/crm/v3/objects/contacts")
    http.post("/crm/v3/objects/contacts/search", json={}, idempotent=True)

    assert http.last_headroom == {"10s": {"remaining": 98, "limit": 100, "window": "10s"}}


def test_rate_limiter_is_asked_before_every_attempt(rsps: responses.RequestsMock) -> None:
    rsps.get(CONTACTS, status=503)
    rsps.get(CONTACTS, json={})
    limiter = RateLimiter("2/minute", key="test-http-limiter-every-attempt")
    http, _ = client(rate_limiter=limiter)

    http.get("/crm/v3/objects/contacts")

    assert not limiter.try_acquire()  # both attempts took from the budget


# ---------------------------------------------------------------------------------------------
# URLs, sessions, classifier table


def test_next_link_on_the_same_host_is_followed(rsps: responses.RequestsMock) -> None:
    link = "https://suite.example.com/Api/V8/module/Accounts?page[number]=4&page[size]=1"
    rsps.get(link, json={"data": []})
    http = HttpClient("suite", "https://suite.example.com/Api")

    assert http.get(link).json == {"data": []}


def test_link_to_another_host_is_refused() -> None:
    http = HttpClient("hubspot", BASE, auth=BearerToken("token-abcdef"))

    with pytest.raises(VendorError, match="refusing to send credentials") as raised:
        http.get("https://evil.example.net/steal?x=1")

    assert raised.value.system == "hubspot"


def test_redirect_is_reported_not_followed(rsps: responses.RequestsMock) -> None:
    url = "https://old.bitrix24.example/rest/crm.contact.list"
    rsps.get(
        url,
        status=302,
        headers={"Location": "https://new.bitrix24.example/rest/crm.contact.list?x=1"},
    )
    http = HttpClient("b24", "https://old.bitrix24.example/rest")

    with pytest.raises(
        VendorError, match=re.escape("new.bitrix24.example/rest/crm.contact.list;")
    ) as raised:
        http.get("crm.contact.list")

    assert "x=1" not in str(raised.value)
    assert len(rsps.calls) == 1


def test_make_session_never_retries_and_verifies_tls(tmp_path: Any) -> None:
    session = make_session(user_agent="crmhub-test/1")
    adapter = session.get_adapter("https://api.example.com")
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
    assert session.verify is True
    assert session.headers["User-Agent"] == "crmhub-test/1"

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert make_session(user_agent="x", ca_bundle=str(bundle)).verify == str(bundle)
    with pytest.raises(ConnectorConfigError, match="CA bundle not found"):
        make_session(user_agent="x", ca_bundle=str(tmp_path / "missing.pem"))


def test_session_without_tls_verification_is_refused() -> None:
    session = requests.Session()
    session.verify = False
    with pytest.raises(ConnectorConfigError, match="TLS verification"):
        HttpClient("s", BASE, session=session)


def test_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConnectorConfigError):
        HttpClient("s", "api.example.com/no-scheme")


def _response(
    status: int, body: str = "", headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers or {})
    request = requests.Request(
        "GET", f"{CONTACTS}?token=abc", headers={"Authorization": "Bearer xyz-secret"}
    )
    response.request = request.prepare()
    return response


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (201, None),
        (207, None),
        (304, None),
        (401, AuthExpired),
        (403, AuthError),
        (404, RecordRejected),
        (408, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (429, RateLimited),
        (400, VendorError),
        (409, VendorError),
        (422, VendorError),
        (302, VendorError),
    ],
)
def test_default_classifier_table(status: int, expected: type[ConnectorError] | None) -> None:
    error = default_classifier(_response(status, '{"message": "vendor says no"}'))
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected


def test_default_classifier_quotes_the_vendor_not_the_request() -> None:
    body = '{"errors": {"status": 400, "title": null, "detail": "' + "x" * 400 + '"}}'
    error = default_classifier(_response(400, body))
    assert isinstance(error, VendorError)
    assert '"detail": "xxx' in error.message
    assert error.message.endswith("...")
    assert len(error.message) < 340
    assert "xyz-secret" not in error.message
    assert "token=abc" not in error.message


def test_default_classifier_404_and_429_details() -> None:
    not_found = default_classifier(_response(404, "gone"))
    assert isinstance(not_found, RecordRejected)
    assert not_found.code == "NOT_FOUND"
    limited = default_classifier(_response(429, "", {"Retry-After": "12"}))
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 12.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == expected


def test_explicit_default_port_is_the_same_host(rsps: responses.RequestsMock) -> None:
    rsps.get(re.compile(r"https://api\.example\.com(:443)?/crm/v3/objects/contacts", re.I), json={})
    http, _ = client()

    assert http.get("https://API.example.com:443/crm/v3/objects/contacts").status == 200
