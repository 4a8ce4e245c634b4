"""The dashboard's parts on their own: filters, diffs, the chart, health, metrics, config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hub import admin, store
from hub.config import ConfigError, Schedule, load_config
from hub.dashboard.charts import run_chart
from hub.dashboard.diff import EMPTY, Segment, field_diffs
from hub.dashboard.filters import FilterError, audit_filter
from hub.dashboard.metrics import _OutcomeTotals
from hub.db import open_database
from tests.dashboard.world import write_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- filters


def test_a_query_string_becomes_the_filter_crmhub_log_would_use():
    wanted = audit_filter(
        {
            "sync": "main",
            "system": " b ",
            "object": "contacts",
            "record": "42",
            "action": "update",
            "since": "2h",
            "until": "2026-03-01T11:30",
            "run": "7",
            "limit": "50",
        },
        default_limit=200,
        max_limit=1000,
        now=NOW,
    )

    assert wanted == admin.AuditFilter(
        sync="main",
        system="b",
        object_type="contacts",
        record="42",
        action="update",
        since=NOW - timedelta(hours=2),
        until=datetime(2026, 3, 1, 11, 30, tzinfo=UTC),
        run_id=7,
        limit=50,
    )


def test_empty_fields_are_no_filter_and_the_limit_has_a_default_and_a_ceiling():
    blank = audit_filter(
        {"sync": "", "since": " ", "run": ""}, default_limit=200, max_limit=1000, now=NOW
    )
    huge = audit_filter({"limit": "99999"}, default_limit=200, max_limit=1000, now=NOW)

    assert blank == admin.AuditFilter(limit=200)
    assert huge.limit == 1000


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"since": "last week"}, "since"), ({"run": "1.5"}, "run"), ({"limit": "²"}, "limit")],
)
def test_a_bad_filter_value_names_its_parameter(params: dict[str, str], parameter: str):
    with pytest.raises(FilterError) as caught:
        audit_filter(params, default_limit=10, max_limit=10, now=NOW)

    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: ")


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-02-01", datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-01T10:00+02:00", datetime(2026, 2, 1, 8, tzinfo=UTC)),
    ],
)
def test_moments_are_ages_or_iso_times_in_utc_unless_zoned(text: str, moment: datetime):
    assert admin.parse_moment(text, NOW) == moment


# --------------------------------------------------------------------------- diff


def test_a_changed_word_is_marked_and_the_rest_kept():
    [diff] = field_diffs({"title": ["Head of Sales", "Head of Marketing"]})

    assert diff.before == (Segment("same", "Head of "), Segment("removed", "Sales"))
    assert diff.after == (Segment("same", "Head of "), Segment("added", "Marketing"))


def test_values_that_are_not_both_text_are_replaced_whole_and_empty_is_not_a_change():
    phone, cleared, tags = field_diffs(
        {"phone": [None, "+14155550100"], "fax": ["123", None], "tags": [["a"], ["a", "b"]]}
    )

    assert (phone.before, phone.after) == (
        (Segment("same", EMPTY),),
        (Segment("added", "+14155550100"),),
    )
    assert (cleared.before, cleared.after) == (
        (Segment("removed", "123"),),
        (Segment("same", EMPTY),),
    )
    assert tags.after == (Segment("added", '["a", "b"]'),)


def test_an_entry_without_changes_has_no_diff():
    assert field_diffs(None) == []


# --------------------------------------------------------------------------- chart


def _run(run_id: int, created: int, updated: int, failed: int) -> dict[str, object]:
    return {
        "id": run_id,
        "status": "succeeded",
        "started_at": f"2026-03-01T12:{run_id:02d}:00+00:00",
        "counts": {"created": created, "updated": updated, "failed": failed},
    }


def test_the_chart_draws_runs_oldest_first_with_bars_to_scale():
    chart = run_chart([_run(2, 0, 40, 4), _run(1, 100, 0, 0)])  # newest first, as listed

    older, newer = chart.groups
    assert (older.run_id, newer.run_id) == (1, 2)
    assert older.x < newer.x
    bars = {bar.series: bar for bar in newer.bars}
    full = chart.plot_bottom - chart.plot_top
    assert [tick.value for tick in chart.ticks] == [0, 20, 40, 60, 80, 100]
    assert bars["updated"].height == pytest.approx(full * 0.4)
    assert bars["failed"].height == pytest.approx(full * 0.04)
    assert bars["updated"].y + bars["updated"].height == pytest.approx(chart.plot_bottom)
    assert "created 0, updated 40, failed 4" in newer.tooltip


def test_a_chart_of_runs_that_changed_nothing_still_has_an_axis():
    chart = run_chart([_run(1, 0, 0, 0)])

    assert [tick.value for tick in chart.ticks] == [0, 1]
    assert all(bar.height == 0 for bar in chart.groups[0].bars)
    assert run_chart([]).groups == ()


# --------------------------------------------------------------------------- health, schedule


def test_the_next_run_is_due_now_after_its_time_and_none_without_a_schedule():
    every_5m = Schedule.parse("5m")

    assert admin.next_run_at(None, NOW, NOW) is None
    assert admin.next_run_at(every_5m, None, NOW) == NOW
    assert admin.next_run_at(every_5m, NOW - timedelta(minutes=2), NOW) == NOW + timedelta(
        minutes=3
    )
    assert admin.next_run_at(every_5m, NOW - timedelta(hours=1), NOW) == NOW


def _finished_run(db: Engine, sync: str, started: datetime, status: str) -> int:
    with db.begin() as conn:
        run_id = store.start_run(conn, sync, started)
        store.finish_run(conn, run_id, status, {}, None, started + timedelta(seconds=5))
    return run_id


def test_health_says_what_needs_a_person(tmp_path: Path):
    config = load_config(write_config(tmp_path, b_knows_priority=False))
    db = open_database(config.database)
    syncs = config.syncs

    def health(now: datetime) -> str:
        [row] = admin.sync_overview(db, syncs, now)
        return str(row["health"])

    assert health(NOW) == "never run"
    _finished_run(db, "main", NOW - timedelta(minutes=1), "succeeded")
    assert health(NOW) == "healthy"
    assert health(NOW + timedelta(minutes=9)) == "healthy"  # due 4 minutes ago: not yet late
    assert health(NOW + timedelta(minutes=11)) == "overdue"
    _finished_run(db, "main", NOW, "interrupted")
    assert health(NOW) == "attention"
    _finished_run(db, "main", NOW, "partial")
    assert health(NOW) == "failing"
    with db.begin() as conn:
        store.start_run(conn, "main", NOW)
    assert health(NOW) == "running"


# --------------------------------------------------------------------------- metrics


def test_records_per_outcome_wait_for_a_run_that_is_still_going(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path}/state.db")
    counts = {"contacts": {"a": {"created": 5}}}
    with db.begin() as conn:
        first = store.start_run(conn, "main", NOW)
        second = store.start_run(conn, "other", NOW)
        store.finish_run(conn, second, "succeeded", counts, None, NOW)
    totals = _OutcomeTotals()

    assert totals.read(db, NOW) == {("other", "created"): 5}
    with db.begin() as conn:
        store.finish_run(conn, first, "succeeded", counts, None, NOW)
    assert totals.read(db, NOW) == {("other", "created"): 5, ("main", "created"): 5}
    assert totals.read(db, NOW) == {("other", "created"): 5, ("main", "created"): 5}


def test_a_run_abandoned_for_a_day_stops_holding_the_totals_back(tmp_path: Path):
    db = open_database(f"sqlite:///{tmp_path}/state.db")
    with db.begin() as conn:
        store.start_run(conn, "main", NOW - timedelta(days=2))  # its process was killed
    later = _finished_run(db, "main", NOW, "succeeded")
    totals = _OutcomeTotals()

    totals.read(db, NOW)

    assert totals._settled_through == later


# --------------------------------------------------------------------------- config


def test_the_dashboard_key_takes_an_argon2_hash(tmp_path: Path):
    from hub.dashboard.auth import hash_password

    stored = hash_password("the-admin-password")
    path = write_config(
        tmp_path, b_knows_priority=False, extra=f"dashboard:\n  admin_password_hash: {stored}\n"
    )

    config = load_config(path)

    assert config.dashboard.admin_password_hash == stored
    assert stored not in repr(config)
    assert config.redacted_dict()["dashboard"] == {"admin_password_hash": "***"}


@pytest.mark.parametrize(
    ("dashboard", "message"),
    [
        (
            "dashboard:\n  admin_password_hash: my-plain-password\n",
            "dashboard.admin_password_hash: is not an Argon2 hash",
        ),
        ("dashboard:\n  password: x\n", "dashboard.password: unknown key"),
        ("dashboard: yes\n", "dashboard: must be a mapping"),
    ],
)
def test_a_wrong_dashboard_key_is_named_and_never_echoed(
    tmp_path: Path, dashboard: str, message: str
):
    path = write_config(tmp_path, b_knows_priority=False, extra=dashboard)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert message in str(caught.value)
    assert "my-plain-password" not in str(caught.value)
