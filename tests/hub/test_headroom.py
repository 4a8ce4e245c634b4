"""Rate-limit headroom: what vendors said of their limits, kept per system, shown by status.

What a user of ``crmhub status`` would notice: after a sync, each system whose vendor reports
its rate limits shows the figures the vendor last gave (the same ones the vendor itself
counted), and a system whose vendor reports none says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from connectors.sampledata import sample_account
from connectors.sandbox import Sandbox, SandboxOptions, load_sandbox
from hub import store
from hub.cli import app
from hub.demo import seed_sandbox
from mappings.fieldmap import load_default_map

SEED = 7
runner = CliRunner(env={"COLUMNS": "500"})


# --------------------------------------------------------------------------- the store


def test_a_run_replaces_a_systems_figures_and_one_that_heard_nothing_keeps_them(
    db: Engine,
) -> None:
    first = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    later = datetime(2026, 11, 28, 9, 5, tzinfo=UTC)
    with db.begin() as conn:
        store.save_rate_limits(
            conn,
            {"hs": {"10s": {"remaining": 90, "limit": 100}}, "b24": {"operating": {"used": 3.5}}},
            first,
        )
    with db.begin() as conn:
        # hs answered again; b24 was not reached this time, and the memory system never says.
        store.save_rate_limits(conn, {"hs": {"daily": {"remaining": 5}}, "b24": {}}, later)

    with db.connect() as conn:
        stored = store.stored_rate_limits(conn, ["hs", "b24", "archive"])
    assert stored == {
        "hs": (later, {"daily": {"remaining": 5}}),
        "b24": (first, {"operating": {"used": 3.5}}),
    }


# --------------------------------------------------------------------------- end to end


def cli(config: Path, *args: str) -> Result:
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result


def configure(tmp_path: Path, system: dict[str, Any]) -> Path:
    """A sync between ``system`` (as ``crm``) and a memory system (as ``archive``)."""
    config = {
        "database": f"sqlite:///{tmp_path}/state.db",
        "systems": {"crm": system, "archive": {"connector": "memory", "path": "archive.json"}},
        "syncs": {"main": {"systems": ["crm", "archive"], "objects": ["companies", "contacts"]}},
    }
    path = tmp_path / "crmhub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def seeded(vendor: str) -> Iterator[Sandbox]:
    box = load_sandbox(vendor, SandboxOptions(seed=SEED))
    seed_sandbox(box.api, load_default_map(vendor), sample_account(12, SEED))
    with box:
        yield box


@pytest.fixture
def hubspot() -> Iterator[Sandbox]:
    yield from seeded("hubspot")


@pytest.fixture
def bitrix24() -> Iterator[Sandbox]:
    yield from seeded("bitrix24")


def calls_counted(box: Sandbox, *, search: bool) -> int:
    return sum(n for route, n in box.calls.by_route.items() if route.endswith("/search") == search)


def test_status_shows_hubspots_budgets_as_the_vendor_counted_them(
    tmp_path: Path, hubspot: Sandbox
) -> None:
    api: Any = hubspot.api
    # A private-app token: OAuth calls get no daily figures from HubSpot.
    config = configure(
        tmp_path,
        {"connector": "hubspot", "base_url": hubspot.url, "token": api.private_app_token},
    )

    cli(config, "sync")
    [row] = json.loads(cli(config, "status", "--json").stdout)
    table = cli(config, "status").stdout

    counted = calls_counted(hubspot, search=False)
    assert counted > 0
    assert row["headroom"]["archive"] is None  # the memory connector's vendor reports nothing
    seen = row["headroom"]["crm"]
    assert seen["observed_at"] == row["last_run"]["finished_at"]
    daily, burst = seen["budgets"]["daily"], seen["budgets"]["10s"]
    # Search calls have a budget of their own: HubSpot's daily counter counted every other call.
    assert daily == {
        "remaining": api.daily.limit - counted,
        "limit": api.daily.limit,
        "window": "day",
    }
    assert daily["remaining"] == api.daily.remaining()
    assert (burst["limit"], burst["window"]) == (api.burst.limit, "10s")
    # The ten-second window only drains after the last answer, and held at most every call.
    assert api.burst.limit - counted <= burst["remaining"] <= api.burst.remaining()

    lines = table.splitlines()
    assert lines[lines.index("# rate-limit headroom") + 1] == (
        "system\tbudget\tremaining / limit\twindow\tas of"
    )
    as_of = seen["observed_at"][:19].replace("T", " ")
    remaining = f"{daily['remaining']:,} / {daily['limit']:,}"
    assert f"crm\tdaily\t{remaining}\tday\t{as_of}" in lines
    assert "archive\t\tnot reported by the vendor\t\t" in lines


def test_status_shows_the_bitrix24_method_nearest_its_operating_limit(
    tmp_path: Path, bitrix24: Sandbox
) -> None:
    api: Any = bitrix24.api
    # Another integration on the portal spent most of a method's budget (per application).
    api.operating.charge("application", "crm.contact.list", 400.0)
    config = configure(tmp_path, bitrix24.connector_settings())

    cli(config, "sync")
    [row] = json.loads(cli(config, "status", "--json").stdout)
    table = cli(config, "status").stdout

    used, reset_at = api.operating.report("application", "crm.contact.list")
    operating = row["headroom"]["crm"]["budgets"]["operating"]
    assert operating == {
        "used": used,
        "limit": 480,
        "unit": "seconds",
        "window": "10min",
        "scope": "crm.contact.list",
        "resets_at": datetime.fromtimestamp(reset_at, UTC).isoformat(),
    }
    assert f"crm\toperating (crm.contact.list)\t{used:,.1f} s used / 480 s\t10min, frees" in table


def test_status_says_when_no_run_has_heard_from_a_vendor_that_reports(tmp_path: Path) -> None:
    config = configure(
        tmp_path, {"connector": "hubspot", "base_url": "http://127.0.0.1:9", "token": "pat-x"}
    )

    [row] = json.loads(cli(config, "status", "--json").stdout)
    lines = cli(config, "status").stdout.splitlines()

    assert row["headroom"] == {"crm": None, "archive": None}
    assert "crm\t\tnone reported yet\t\t" in lines
    assert "archive\t\tnot reported by the vendor\t\t" in lines
