"""``crmhub serve`` as an admin starts it: a hash for the config, refusals, a real server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher
from typer.testing import CliRunner

from hub.cli import app
from tests.dashboard.world import API_TOKEN, World

CRMHUB = Path(sys.executable).parent / "crmhub"
runner = CliRunner(env={"COLUMNS": "500"})


def test_hash_password_prints_a_hash_the_config_takes(tmp_path: Path):
    result = runner.invoke(app, ["serve", "--hash-password"], input="a-long-password\n")

    assert result.exit_code == 0, result.output
    stored = result.stdout.strip()
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, "a-long-password")
    assert "a-long-password" not in result.output


def test_hash_password_refuses_a_short_password():
    result = runner.invoke(app, ["serve", "--hash-password"], input="short\n")

    assert result.exit_code == 2
    assert "at least 8 characters" in result.stderr


def test_serve_without_a_password_exits_2_saying_what_to_set(world: World):
    result = runner.invoke(
        app,
        ["serve", "--config", str(world.config.source)],
        env={"CRMHUB_ADMIN_PASSWORD": None, "COLUMNS": "500"},
    )

    assert result.exit_code == 2
    assert "CRMHUB_ADMIN_PASSWORD" in result.stderr
    assert "crmhub serve --hash-password" in result.stderr


def test_serve_on_a_port_in_use_exits_2_naming_it(world: World):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(
            app,
            ["serve", "--config", str(world.config.source), "--port", str(port)],
            env={"CRMHUB_ADMIN_PASSWORD": "a-long-password", "COLUMNS": "500"},
        )

    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_listens_on_loopback_until_stopped(world: World, stop: signal.Signals):
    environ = {
        **os.environ,
        "CRMHUB_ADMIN_PASSWORD": "a-long-password",
        "CRMHUB_API_TOKEN": API_TOKEN,
    }
    server = subprocess.Popen(
        [str(CRMHUB), "serve", "--config", str(world.config.source), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        assert server.stderr is not None
        announced = server.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", announced)
        assert found, announced
        base = found.group(0)

        assert requests.get(f"{base}healthz", timeout=5).text == "ok"
        login = requests.get(f"{base}", timeout=5)
        assert login.url.endswith("/login?next=/")
        syncs = requests.get(
            f"{base}api/syncs", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=5
        )
        assert [row["sync"] for row in syncs.json()] == ["main"]
    finally:
        server.send_signal(stop)  # Ctrl-C, or a service manager
        assert server.wait(timeout=10) == 0
    assert "a-long-password" not in server.stderr.read()
