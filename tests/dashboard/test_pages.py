"""The pages a signed-in admin uses, and every action their forms take."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.base import Connector
from connectors.errors import Unreachable
from connectors.memory.connector import MemoryConnector
from hub import admin
from hub.config import SystemConfig, load_config
from hub.dashboard.app import create_app
from hub.runtime import run_sync
from tests.dashboard.conftest import csrf_of, sign_in
from tests.dashboard.world import CREDENTIALS, World, write_config


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and spaces collapsed, for phrase checks."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def entry_ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="entry-(\d+)">', page)]


def log_ids(world: World, **filters: object) -> list[int]:
    wanted = admin.AuditFilter(**filters)
    return [entry["id"] for entry in admin.audit_entries(world.db, wanted)]


# --------------------------------------------------------------------------- overview, runs


def test_the_overview_shows_each_sync_with_its_health_runs_and_records(browser: TestClient):
    page = text_of(browser.get("/").text)

    # Acme, Ann, Bob and Rockets are canonical records; Bob waits in conflict, b refused Rockets.
    assert "main attention a, b every 5m" in page
    assert re.search(r"succeeded [\d.]+ s", page)
    assert "4 2 1 1" in page  # records, in sync, in conflict, failing
    assert "Conflicts 1" in page
    assert "Failed records 1" in page


def test_the_overview_says_a_sync_is_failing_when_a_system_could_not_be_reached(
    browser: TestClient, world: World
):
    def unreachable(system: SystemConfig) -> Connector | None:
        if system.name != "b":
            return None
        connector = MemoryConnector("b", store=world.store("b"))

        def refuse(operation: str, object_type: str) -> None:
            raise Unreachable("connection refused by b.example", system="b")

        connector.before_call = refuse
        return connector

    run_sync(world.db, world.config, connectors=unreachable)

    page = text_of(browser.get("/").text)

    assert "main failing" in page
    assert "connection refused by b.example" in page  # the run's error, where one looks first


def test_the_overview_says_a_scheduled_sync_nobody_ran_for_an_hour_is_overdue(world: World):
    an_hour_later = datetime.now(UTC) + timedelta(hours=1)
    app = create_app(world.config, world.db, CREDENTIALS, clock=lambda: an_hour_later)
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client)
        page = text_of(client.get("/").text)

    assert "main overdue" in page
    assert "due now" in page


def test_the_runs_page_charts_created_updated_and_failed_per_run(browser: TestClient):
    page = browser.get("/runs").text

    assert page.count('<g class="run">') == 2
    # Run 1 created Acme, Ann and Bob in b and failed Rockets: its bars have that ratio.
    first = page.index('<g class="run">')
    bars = re.findall(
        r'class="bar bar-(\w+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"',
        page[first : page.index("</g>", first)],
    )
    heights = {series: float(height) for series, height in bars}
    assert heights["created"] == pytest.approx(3 * heights["failed"])
    assert heights["updated"] == 0
    assert 'href="/runs/1"' in page
    assert 'id="run-2"' in page


def test_the_runs_page_filters_by_sync_and_says_when_there_is_none(browser: TestClient):
    assert 'id="run-1"' in browser.get("/runs?sync=main").text
    assert "No run yet of other" in text_of(browser.get("/runs?sync=other").text)


def test_a_run_page_shows_its_counts_by_object_and_system(browser: TestClient):
    page = text_of(browser.get("/runs/1").text)

    assert "Sync main" in page
    assert "companies b · · · 1 · · · · ·" in page  # created Acme
    assert "contacts b · · · 2 · · · · ·" in page  # created Ann and Bob
    assert "deals b · · · · · · · 1 ·" in page  # failed Rockets
    assert "Every audit entry of this run" in page


def test_an_unknown_run_is_a_404_page(browser: TestClient):
    response = browser.get("/runs/999")

    assert response.status_code == 404
    assert "no run with id 999" in response.text


# --------------------------------------------------------------------------- audit


def test_the_audit_explorer_lists_entries_newest_first(browser: TestClient, world: World):
    page = browser.get("/audit").text

    assert entry_ids(page) == list(reversed(log_ids(world)))
    assert "entries, newest first" in page


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("sync=main", {"sync": "main"}),
        ("system=b", {"system": "b"}),
        ("object=companies", {"object_type": "companies"}),
        ("action=conflict", {"action": "conflict"}),
        ("run=2", {"run_id": 2}),
        ("limit=3", {"limit": 3}),
        (
            "system=b&action=create&object=contacts",
            {"system": "b", "action": "create", "object_type": "contacts"},
        ),
    ],
)
def test_each_audit_filter_shows_what_crmhub_log_shows(
    browser: TestClient, world: World, query: str, filters: dict[str, object]
):
    expected = log_ids(world, **filters)
    assert expected

    shown = entry_ids(browser.get(f"/audit?{query}").text)

    assert shown == list(reversed(expected))


def test_the_record_filter_takes_a_remote_or_a_canonical_id(browser: TestClient, world: World):
    [bob] = admin.find_records(world.db, world.ids["bob"], "a")
    history = log_ids(world, record=bob["canonical_id"])

    by_remote = entry_ids(browser.get(f"/audit?record={world.ids['bob']}&system=a").text)
    by_canonical = entry_ids(browser.get(f"/audit?record={bob['canonical_id']}").text)

    assert len(history) >= 3  # linked in a, created in b, conflict
    assert by_canonical == list(reversed(history))
    assert by_remote == list(reversed(log_ids(world, record=world.ids["bob"], system="a")))


def test_the_time_filters_take_ages_and_dates(browser: TestClient, world: World):
    everything = list(reversed(log_ids(world)))
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")

    assert entry_ids(browser.get("/audit?since=1h").text) == everything
    assert entry_ids(browser.get("/audit", params={"until": future}).text) == everything
    assert entry_ids(browser.get("/audit?until=1h").text) == []
    assert "No entry matches." in browser.get("/audit", params={"since": future}).text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since: 'yesterday' is neither a date/time"),
        ("run=two", "run: 'two' is not a whole number"),
        ("limit=0", "limit: '0' is not a whole number of at least 1"),
    ],
)
def test_a_bad_filter_is_named_on_the_page(browser: TestClient, query: str, message: str):
    response = browser.get(f"/audit?{query}")

    assert response.status_code == 422
    assert message in html.unescape(response.text)


def test_an_audit_entry_shows_its_before_and_after_word_by_word(browser: TestClient, world: World):
    world.edit_company("a", "acme.com", {"name": "Acme Rockets"})
    world.sync()
    [update] = admin.audit_entries(world.db, admin.AuditFilter(action="update", system="b"))

    page = browser.get(f"/audit/{update['id']}").text

    assert "Before and after" in page
    assert '<th scope="row">name</th>' in page
    assert '<td class="before">Acme</td>' in page
    assert '<td class="after">Acme<ins> Rockets</ins></td>' in page


def test_an_entry_that_created_a_record_shows_every_field_as_new(browser: TestClient, world: World):
    [created] = [
        e
        for e in admin.audit_entries(world.db, admin.AuditFilter(action="create", system="b"))
        if (e["changes"] or {}).get("email", [None, None])[1] == "bob@acme.com"
    ]

    page = browser.get(f"/audit/{created['id']}").text

    assert '<td class="before">∅</td>' in page
    assert "<ins>bob@acme.com</ins>" in page


# --------------------------------------------------------------------------- conflicts


def test_a_conflict_shows_both_values_with_their_systems_and_times(
    browser: TestClient, world: World
):
    [conflict] = admin.list_conflicts(world.db)

    page = text_of(browser.get("/conflicts").text)

    assert "contacts · job_title open" in page
    assert "Before the edits it was Engineer" in page
    for system, side in conflict["candidates"].items():
        when = side["modified_at"][:19].replace("T", " ")
        assert f"{system} {side['value']} {when} Keep {system}'s value" in page


def test_choosing_a_side_resolves_the_conflict_and_the_next_run_writes_it(
    browser: TestClient, world: World
):
    [conflict] = admin.list_conflicts(world.db)

    response = browser.post(
        f"/conflicts/{conflict['id']}/resolve",
        data={"system": "b", "csrf_token": csrf_of(browser)},
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/conflicts?resolved={conflict['id']}"
    assert "the next run writes the chosen value" in browser.get(response.headers["location"]).text
    assert admin.list_conflicts(world.db) == []
    world.sync()
    assert world.contact("a", "bob@acme.com")["jobtitle"] == "CEO"
    [resolved] = admin.audit_entries(world.db, admin.AuditFilter(action="resolve"))
    assert resolved["changes"]["job_title"][1] == "CEO"


def test_a_typed_value_resolves_the_conflict(browser: TestClient, world: World):
    [conflict] = admin.list_conflicts(world.db)

    browser.post(
        f"/conflicts/{conflict['id']}/resolve",
        data={"value": "Chief Executive", "csrf_token": csrf_of(browser)},
    )

    [settled] = admin.list_conflicts(world.db, include_settled=True)
    assert (settled["status"], settled["resolution"]) == ("resolved", "Chief Executive")
    assert "Chief Executive" in browser.get("/conflicts?all=true").text
    world.sync()
    for system in "ab":
        assert world.contact(system, "bob@acme.com")["jobtitle"] == "Chief Executive"


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({}, 400, "Choose one system's value, or type a value."),
        ({"system": "b", "value": "X"}, 400, "Choose one system's value, or type a value."),
        ({"value": "   "}, 400, "Choose one system's value, or type a value."),
        ({"system": "c"}, 409, "has no value from 'c'"),
    ],
)
def test_a_resolution_needs_exactly_one_known_choice(
    browser: TestClient, world: World, form: dict[str, str], status: int, message: str
):
    [conflict] = admin.list_conflicts(world.db)

    response = browser.post(
        f"/conflicts/{conflict['id']}/resolve", data={**form, "csrf_token": csrf_of(browser)}
    )

    assert response.status_code == status
    assert message in html.unescape(response.text)
    assert admin.list_conflicts(world.db) == [conflict]


def test_resolving_a_conflict_twice_or_one_that_does_not_exist_says_so(
    browser: TestClient, world: World
):
    [conflict] = admin.list_conflicts(world.db)
    token = csrf_of(browser)
    browser.post(f"/conflicts/{conflict['id']}/resolve", data={"system": "a", "csrf_token": token})

    again = browser.post(
        f"/conflicts/{conflict['id']}/resolve", data={"system": "b", "csrf_token": token}
    )
    missing = browser.post("/conflicts/999/resolve", data={"system": "b", "csrf_token": token})

    assert again.status_code == 409
    assert "not open" in again.text
    assert missing.status_code == 404


# --------------------------------------------------------------------------- failed records


def test_a_failed_record_shows_the_vendors_message(browser: TestClient):
    page = text_of(browser.get("/failed").text)

    assert "Property 'priority' does not exist on deals" in page
    assert "main b deals" in page
    assert "write" in page


def test_retrying_makes_a_failed_record_go_through_on_the_next_run(
    browser: TestClient, world: World
):
    [failed] = admin.list_failed(world.db)
    world.give_b_the_priority_property()
    world.sync()
    assert world.deal("b", "Rockets") is None  # its own retry is minutes away

    response = browser.post(f"/failed/{failed['id']}/retry", data={"csrf_token": csrf_of(browser)})

    assert response.status_code == 303
    assert "1 record(s) will be retried" in browser.get(response.headers["location"]).text
    world.sync()
    assert world.deal("b", "Rockets")["priority"] == "high"
    assert admin.list_failed(world.db) == []
    assert "No record is failing." in browser.get("/failed").text


def test_retry_all_makes_every_failed_record_due(browser: TestClient, world: World):
    response = browser.post("/failed/retry-all", data={"csrf_token": csrf_of(browser)})

    assert response.headers["location"] == "/failed?retried=1"
    assert [f["next_attempt_at"] for f in admin.list_failed(world.db)] == [None]


def test_discarding_a_failed_record_stops_its_retries(browser: TestClient, world: World):
    [failed] = admin.list_failed(world.db)

    browser.post(f"/failed/{failed['id']}/discard", data={"csrf_token": csrf_of(browser)})

    assert admin.list_failed(world.db) == []
    page = text_of(browser.get("/failed?all=true").text)
    assert "discarded" in page
    assert "Retry" not in page.replace("Retry every", "")


def test_retrying_a_failed_record_that_does_not_exist_is_a_404(browser: TestClient):
    response = browser.post("/failed/999/retry", data={"csrf_token": csrf_of(browser)})

    assert response.status_code == 404
    assert "no failed record with id 999" in response.text


# --------------------------------------------------------------------------- records, config


def test_a_record_shows_every_linked_vendor_record_and_its_history(
    browser: TestClient, world: World
):
    [found] = admin.find_records(world.db, world.ids["bob"], "a")
    view = admin.record_view(world.db, found["canonical_id"])

    page = text_of(browser.get(f"/records/{found['canonical_id']}").text)

    assert {link["system"] for link in view["links"]} == {"a", "b"}
    for link in view["links"]:
        assert f"{link['system']} {link['remote_id']} {link['rule']}" in page
    assert "email bob@acme.com" in page
    assert "job_title Engineer" in page  # the agreed value while the conflict waits
    assert "conflict job_title" in page  # in its history


def test_finding_a_record_by_a_vendor_id_opens_it(browser: TestClient, world: World):
    [found] = admin.find_records(world.db, world.ids["bob"], "a")

    response = browser.get(f"/records?id={world.ids['bob']}&system=a")

    assert response.status_code == 303
    assert response.headers["location"] == f"/records/{found['canonical_id']}"


def test_an_id_known_in_several_systems_lists_them_to_pick_from(browser: TestClient):
    page = text_of(browser.get("/records?id=1").text)  # a's Acme, b's Acme, a contact, ...

    assert "records are known by 1; pick one." in page


def test_an_unknown_record_says_so(browser: TestClient):
    assert "No record is known by nobody" in text_of(browser.get("/records?id=nobody").text)
    assert browser.get("/records/nobody").status_code == 404


def test_the_config_page_shows_no_credential(world: World, tmp_path: Path):
    from hub.dashboard.auth import hash_password

    stored = hash_password("dashboard-password")
    path = write_config(
        tmp_path,
        b_knows_priority=False,
        extra=f"dashboard:\n  admin_password_hash: '{stored}'\n",
    )
    path.write_text(
        path.read_text().replace(
            "sqlite:///state.db", "postgresql+psycopg://crm:${DB_PASSWORD}@db.internal/crmhub"
        )
    )
    config = load_config(path, environ={"DB_PASSWORD": "database-secret-value"})
    with TestClient(create_app(config, world.db, CREDENTIALS), follow_redirects=False) as client:
        sign_in(client)
        page = html.unescape(client.get("/config").text)

    assert '"connector": "memory"' in page
    assert "postgresql+psycopg://crm:***@db.internal/crmhub" in page
    assert "database-secret-value" not in page
    assert stored not in page
    assert '"admin_password_hash": "***"' in page
