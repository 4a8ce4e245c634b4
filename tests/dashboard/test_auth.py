"""Who gets in: sign-in, sessions, CSRF, the API token, and where the password comes from."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub import admin
from hub.config import ConfigError, load_config
from hub.dashboard.app import create_app
from hub.dashboard.auth import LoginThrottle, load_credentials
from hub.dashboard.login import safe_next
from tests.dashboard.conftest import csrf_of, login_token, sign_in
from tests.dashboard.world import API_TOKEN, CREDENTIALS, PASSWORD, World, write_config

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("page", ["/", "/runs", "/audit?sync=main", "/conflicts", "/records/x"])
def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
    client: TestClient, page: str
):
    response = client.get(page)

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    sign_in(client, next_path=page)
    assert client.get(page).status_code in (200, 404)  # /records/x: signed in, but no such record


def test_signing_in_goes_to_the_page_asked_for(client: TestClient):
    token = login_token(client)

    response = client.post(
        "/login", data={"password": PASSWORD, "csrf_token": token, "next": "/failed"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/failed"
    assert "Failed records" in client.get("/failed").text


def test_a_wrong_password_is_refused_and_lets_nobody_in(client: TestClient):
    token = login_token(client)

    response = client.post("/login", data={"password": "correct-horse", "csrf_token": token})

    assert response.status_code == 401
    assert "Wrong password." in response.text
    assert client.get("/").status_code == 303


def test_the_session_cookie_is_httponly_and_samesite_lax_and_secure_only_over_https(
    app: FastAPI,
):
    with TestClient(app, follow_redirects=False) as plain:
        plain.get("/login")
        cookie = plain.get("/login").headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "secure" not in cookie
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as tls:
        token = login_token(tls)
        signed_in = tls.post("/login", data={"password": PASSWORD, "csrf_token": token})
        cookie = signed_in.headers["set-cookie"].lower()
        assert "secure" in cookie
        assert "httponly" in cookie
        assert tls.get("/").status_code == 200


def test_signing_in_issues_a_new_csrf_token(client: TestClient):
    before = login_token(client)
    sign_in(client)

    assert csrf_of(client) != before


def test_a_login_form_without_its_csrf_token_is_refused(client: TestClient):
    client.get("/login")

    response = client.post("/login", data={"password": PASSWORD})

    assert response.status_code == 403
    assert client.get("/").status_code == 303


def test_a_tampered_or_foreign_session_cookie_signs_nobody_in(app: FastAPI, world: World):
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client)
        cookie = client.cookies["crmhub_session"]
    other = create_app(world.config, world.db, CREDENTIALS)  # another process: another key
    with TestClient(other, follow_redirects=False) as client:
        client.cookies.set("crmhub_session", cookie)
        assert client.get("/").status_code == 303
        client.cookies.set("crmhub_session", cookie[:-2] + "xx")
        assert client.get("/").status_code == 303


def test_signing_out_ends_the_session(browser: TestClient):
    token = csrf_of(browser)

    response = browser.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303
    assert browser.get("/").status_code == 303


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ("/conflicts/1/resolve", {"system": "b"}),
        ("/failed/1/retry", {}),
        ("/failed/1/discard", {}),
        ("/failed/retry-all", {}),
        ("/logout", {}),
    ],
)
def test_a_form_posted_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: TestClient, world: World, action: str, field: dict[str, str]
):
    before = (admin.list_conflicts(world.db), admin.list_failed(world.db))

    missing = browser.post(action, data=field)
    forged = browser.post(action, data={**field, "csrf_token": "not-the-token"})

    assert missing.status_code == 403
    assert forged.status_code == 403
    assert "CSRF" in missing.text
    assert (admin.list_conflicts(world.db), admin.list_failed(world.db)) == before
    assert browser.get("/").status_code == 200  # still signed in


def test_too_many_wrong_passwords_make_a_client_wait(client: TestClient):
    for _ in range(5):
        token = login_token(client)
        client.post("/login", data={"password": "guess", "csrf_token": token})
    token = login_token(client)

    response = client.post("/login", data={"password": PASSWORD, "csrf_token": token})

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert client.get("/").status_code == 303


def test_the_throttle_forgets_failures_once_they_age_out_of_the_window():
    throttle = LoginThrottle(failures=2, window=60)
    throttle.failed("1.2.3.4", now=0)
    throttle.failed("1.2.3.4", now=10)

    assert throttle.wait_seconds("1.2.3.4", now=20) == pytest.approx(40)
    assert throttle.wait_seconds("5.6.7.8", now=20) == 0
    assert throttle.wait_seconds("1.2.3.4", now=61) == 0


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/conflicts?sync=main", "/conflicts?sync=main"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("", "/"),
    ],
)
def test_after_signing_in_the_browser_stays_on_this_site(target: str, safe: str):
    assert safe_next(target) == safe


# --------------------------------------------------------------------------- API


def test_the_api_takes_the_bearer_token(client: TestClient):
    response = client.get("/api/syncs", headers=BEARER)

    assert response.status_code == 200
    assert [row["sync"] for row in response.json()] == ["main"]


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": "Bearer"},
    ],
)
def test_the_api_without_the_token_or_a_session_answers_401(client: TestClient, header: dict):
    response = client.get("/api/conflicts", headers=header)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "detail" in response.json()


def test_a_wrong_token_is_refused_even_from_a_signed_in_browser(browser: TestClient):
    response = browser.get("/api/syncs", headers={"Authorization": "Bearer nope-0123456789abcdef"})

    assert response.status_code == 401


def test_a_signed_in_browser_reads_the_api_but_changes_data_only_with_its_csrf_header(
    browser: TestClient, world: World
):
    assert browser.get("/api/conflicts").status_code == 200
    [conflict] = admin.list_conflicts(world.db)

    refused = browser.post(f"/api/conflicts/{conflict['id']}/resolve", json={"system": "b"})
    assert refused.status_code == 403
    assert admin.list_conflicts(world.db) == [conflict]

    accepted = browser.post(
        f"/api/conflicts/{conflict['id']}/resolve",
        json={"system": "b"},
        headers={"X-CSRF-Token": csrf_of(browser)},
    )
    assert accepted.status_code == 200
    assert admin.list_conflicts(world.db) == []


def test_the_token_needs_no_csrf_header(client: TestClient, world: World):
    [failed] = admin.list_failed(world.db)

    response = client.post("/api/failed/retry", json={"ids": [failed["id"]]}, headers=BEARER)

    assert response.status_code == 200
    assert response.json() == {"retried": 1}


def test_metrics_need_the_token_or_a_session(client: TestClient):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=BEARER).status_code == 200
    sign_in(client)
    assert client.get("/metrics").status_code == 200


def test_the_liveness_check_needs_nothing_and_tells_nothing(client: TestClient):
    response = client.get("/healthz")

    assert (response.status_code, response.text) == (200, "ok")


def test_pages_forbid_framing_scripts_and_caching(browser: TestClient):
    response = browser.get("/")

    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


# --------------------------------------------------------------------------- credentials


def _config(folder: Path, dashboard: str = ""):
    return load_config(write_config(folder, b_knows_priority=False, extra=dashboard))


def test_the_password_comes_from_the_environment(tmp_path: Path):
    credentials = load_credentials(
        _config(tmp_path), {"CRMHUB_ADMIN_PASSWORD": "from-the-environment"}
    )

    assert credentials.password_matches("from-the-environment")
    assert not credentials.password_matches("from-the-environmen")
    assert credentials.api_token is None
    assert "from-the-environment" not in repr(credentials)


def test_the_password_comes_from_a_hash_in_the_config(tmp_path: Path):
    from hub.dashboard.auth import hash_password

    stored = hash_password("kept-as-a-hash")
    config = _config(tmp_path, f"dashboard:\n  admin_password_hash: '{stored}'\n")

    credentials = load_credentials(config, {"CRMHUB_API_TOKEN": API_TOKEN})

    assert credentials.password_matches("kept-as-a-hash")
    assert credentials.token_matches(API_TOKEN)
    assert not credentials.token_matches(API_TOKEN[:-1])


@pytest.mark.parametrize(
    ("environ", "dashboard", "expected"),
    [
        ({}, "", "the dashboard needs an admin password: set CRMHUB_ADMIN_PASSWORD"),
        (
            {"CRMHUB_ADMIN_PASSWORD": "long-enough-password"},
            "hash",
            "both dashboard.admin_password_hash and CRMHUB_ADMIN_PASSWORD are set",
        ),
        ({"CRMHUB_ADMIN_PASSWORD": "short"}, "", "CRMHUB_ADMIN_PASSWORD is shorter than 8"),
        (
            {"CRMHUB_ADMIN_PASSWORD": "long-enough-password", "CRMHUB_API_TOKEN": "abc"},
            "",
            "CRMHUB_API_TOKEN is shorter than 16",
        ),
    ],
)
def test_credentials_that_cannot_work_stop_the_dashboard_saying_what_to_set(
    tmp_path: Path, environ: dict[str, str], dashboard: str, expected: str
):
    from hub.dashboard.auth import hash_password

    extra = f"dashboard:\n  admin_password_hash: '{hash_password('some-password')}'\n"
    config = _config(tmp_path, extra if dashboard else "")

    with pytest.raises(ConfigError) as caught:
        load_credentials(config, environ)

    assert expected in str(caught.value)
    assert "long-enough-password" not in str(caught.value)
