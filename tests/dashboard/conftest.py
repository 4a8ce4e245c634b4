"""Fixtures for the dashboard's tests: a world with runs, a conflict and a failed record, and
the dashboard over it, signed in or not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.dashboard.app import create_app
from tests.dashboard.world import CREDENTIALS, PASSWORD, World, build_world, copy_world

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def built_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture
def world(built_world: World, tmp_path: Path) -> Iterator[World]:
    copied = copy_world(built_world, tmp_path / "world")
    yield copied
    copied.db.dispose()


@pytest.fixture
def app(world: World) -> FastAPI:
    return create_app(world.config, world.db, CREDENTIALS)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as anonymous:
        yield anonymous


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    """A client signed in as a browser is: through the login form."""
    sign_in(client)
    return client


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = _CSRF_FIELD.search(page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: TestClient, password: str = PASSWORD, next_path: str = "/") -> None:
    token = login_token(client)
    response = client.post(
        "/login", data={"password": password, "csrf_token": token, "next": next_path}
    )
    assert response.status_code == 303, response.text


def csrf_of(client: TestClient, page: str = "/") -> str:
    """The CSRF token a signed-in page gives its forms."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = _CSRF_META.search(response.text)
    assert match
    return match.group(1)
