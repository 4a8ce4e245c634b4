"""Structured logs: one event per line, tagged with its sync, run and system, secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hub.logs import carry_context, configure_logging, hide_secrets, mask, run_context, set_run_id
from tests.hub.test_cli import cli, seed, write_config

log = logging.getLogger("crmhub.test")


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    def captured() -> list[str]:
        return capsys.readouterr().err.splitlines()

    yield captured
    configure_logging(logging.WARNING)


def test_json_lines_carry_the_run_into_threads_the_engine_reads_and_writes_on(lines: Any) -> None:
    configure_logging(logging.INFO, "json")
    with run_context("nightly"):
        set_run_id(7)
        log.info("page read", extra={"system": "hubspot", "records": 100})
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(carry_context(log.info), "from a reader thread").result()
            pool.submit(log.info, "from a thread that was not told").result()
    log.info("after the run")

    events = [json.loads(line) for line in lines()]
    assert [e["message"] for e in events] == [
        "page read",
        "from a reader thread",
        "from a thread that was not told",
        "after the run",
    ]
    assert events[0] | {"time": None} == {
        "time": None,
        "level": "INFO",
        "logger": "crmhub.test",
        "message": "page read",
        "system": "hubspot",
        "records": 100,
        "sync": "nightly",
        "run": 7,
    }
    assert (events[1]["sync"], events[1]["run"]) == ("nightly", 7)
    assert "sync" not in events[2]
    assert "sync" not in events[3]


def test_text_lines_put_who_first_and_quote_values_with_spaces(lines: Any) -> None:
    configure_logging(logging.INFO, "text")
    with run_context("main"):
        log.info(
            "run ended",
            extra={"counts": {"contacts": 2}, "system": "zoho", "why": "two words"},
        )
    [line] = lines()
    assert line.endswith(
        ' INFO crmhub.test: run ended sync=main system=zoho counts={"contacts":2} why="two words"'
    )


def test_known_secrets_and_credential_shapes_are_masked_everywhere(lines: Any) -> None:
    hide_secrets(["s3cr3t-client-value", "abc"])  # too short to mask by value: it is a word
    configure_logging(logging.DEBUG, "json")
    log.debug("GET /rest?auth=4f1d2c8e9a&x=1 sent Authorization: Bearer eyJhbGci.e30.sig")
    log.debug("GET /app/dao/v6/contacts?a=getAll&apiKey=k-998877&accessKey=a-665544")
    log.warning("refused s3cr3t-client-value for abc", extra={"body": "refresh_token=r-123456"})
    try:
        raise ValueError("client_secret: s3cr3t-client-value")
    except ValueError:
        log.exception("token refresh failed")

    text = "\n".join(lines())
    for secret in ("4f1d2c8e9a", "eyJhbGci", "r-123456", "s3cr3t-client-value", "998877", "665544"):
        assert secret not in text
    for masked in ("auth=***", "Bearer ***", "refused *** for abc", "refresh_token=***"):
        assert masked in text
    assert mask("oauth=1 authority=x") == "oauth=1 authority=x"


def test_crmhub_log_format_json_keeps_stdout_the_report_and_stderr_json_events(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    seed(tmp_path)

    result = cli(config, "--log-level", "info", "--log-format", "json", "sync", "--json")

    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    events = [json.loads(line) for line in result.stderr.splitlines()]
    ours = [e for e in events if e["logger"].startswith("crmhub")]
    assert ours[0]["message"] == "run started"
    summary = ours[-1]
    assert (summary["sync"], summary["run"], summary["status"]) == (
        "main",
        report["run_id"],
        "succeeded",
    )
    assert summary["counts"] == report["counts"]
    assert not [e for e in events if e["logger"].startswith("alembic")]


def test_an_unknown_log_format_exits_2_naming_the_option(tmp_path: Path) -> None:
    result = cli(write_config(tmp_path), "--log-format", "xml", "status")
    assert result.exit_code == 2
    assert "--log-format: 'xml' is not one of text, json" in result.stderr
