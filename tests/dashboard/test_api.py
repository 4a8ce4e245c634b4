"""The JSON API under /api/ and the Prometheus metrics, called as a script calls them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hub import admin
from tests.dashboard.world import API_TOKEN, World

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def api(client: TestClient) -> TestClient:
    client.headers.update(BEARER)
    return client


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------- reads


def test_syncs_are_the_overview_as_json(api: TestClient):
    [main] = ok(api.get("/api/syncs"))

    assert main["sync"] == "main"
    assert main["health"] == "attention"
    assert main["schedule"] == "every 5m"
    assert main["records"] == {"total": 4, "in_sync": 2, "in_conflict": 1, "failing": 1}
    assert main["last_run"]["id"] == 2
    started = datetime.fromisoformat(main["last_run"]["started_at"])
    assert datetime.fromisoformat(main["next_run"]) == started + timedelta(minutes=5)


def test_runs_are_listed_newest_first_and_filtered_by_sync(api: TestClient):
    runs = ok(api.get("/api/runs"))

    assert [run["id"] for run in runs] == [2, 1]
    assert runs[1]["counts"]["created"] == 3
    assert runs[1]["counts"]["failed"] == 1
    assert [run["id"] for run in ok(api.get("/api/runs?limit=1"))] == [2]
    assert ok(api.get("/api/runs?sync=other")) == []
    assert api.get("/api/runs?limit=0").status_code == 422


def test_one_run_has_its_counts_by_object_and_system(api: TestClient):
    run = ok(api.get("/api/runs/1"))

    assert run["by_object"]["deals"]["b"]["failed"] == 1
    assert run["by_object"]["contacts"]["b"]["created"] == 2
    assert api.get("/api/runs/999").json() == {"detail": "no run with id 999"}
    assert api.get("/api/runs/999").status_code == 404


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("", {}),
        ("?sync=main", {"sync": "main"}),
        ("?system=a", {"system": "a"}),
        ("?object=deals", {"object_type": "deals"}),
        ("?action=link", {"action": "link"}),
        ("?run=1", {"run_id": 1}),
        ("?limit=2", {"limit": 2}),
        ("?since=1h", {"since": datetime.now(UTC) - timedelta(hours=1)}),
        ("?until=1h", {"until": datetime.now(UTC) - timedelta(hours=1)}),
        ("?record=2&system=a", {"record": "2", "system": "a"}),
    ],
)
def test_audit_takes_the_filters_of_crmhub_log(
    api: TestClient, world: World, query: str, filters: dict[str, Any]
):
    expected = list(admin.audit_entries(world.db, admin.AuditFilter(**filters)))

    assert ok(api.get(f"/api/audit{query}")) == expected


def test_audit_by_canonical_id_is_that_records_whole_history(api: TestClient, world: World):
    [bob] = admin.find_records(world.db, world.ids["bob"], "a")

    history = ok(api.get(f"/api/audit?record={bob['canonical_id']}"))

    assert {entry["system"] for entry in history} == {"a", "b"}
    assert {entry["action"] for entry in history} >= {"link", "create", "conflict"}
    assert ok(api.get(f"/api/audit/{history[0]['id']}")) == history[0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?since=yesterday", "since: 'yesterday' is neither a date/time"),
        ("?run=-1", "run: '-1' is not a whole number of at least 1"),
    ],
)
def test_a_bad_audit_filter_is_a_422_naming_it(api: TestClient, query: str, message: str):
    response = api.get(f"/api/audit{query}")

    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_an_unknown_audit_entry_is_a_404(api: TestClient):
    assert api.get("/api/audit/999").status_code == 404


def test_conflicts_and_failed_records_are_listed_with_and_without_the_settled_ones(
    api: TestClient, world: World
):
    [conflict] = ok(api.get("/api/conflicts"))
    [failed] = ok(api.get("/api/failed"))

    assert conflict == admin.list_conflicts(world.db)[0]
    assert {s: c["value"] for s, c in conflict["candidates"].items()} == {"a": "CTO", "b": "CEO"}
    assert "Property 'priority' does not exist on deals" in failed["reason"]
    assert ok(api.get("/api/conflicts?sync=other")) == []
    admin.discard_failed(world.db, [failed["id"]])
    assert ok(api.get("/api/failed")) == []
    assert [f["status"] for f in ok(api.get("/api/failed?all=true"))] == ["discarded"]


def test_a_record_comes_with_every_linked_vendor_record(api: TestClient, world: World):
    [bob] = admin.find_records(world.db, world.ids["bob"], "a")

    record = ok(api.get(f"/api/records/{bob['canonical_id']}"))

    assert record["object_type"] == "contacts"
    assert record["base"]["email"] == "bob@acme.com"
    assert {link["system"]: link["remote_id"] for link in record["links"]}["a"] == world.ids["bob"]
    assert {link["system"] for link in record["links"]} == {"a", "b"}
    assert api.get("/api/records/nobody").status_code == 404


# --------------------------------------------------------------------------- actions


def test_resolving_by_system_is_written_on_the_next_run(api: TestClient, world: World):
    [conflict] = admin.list_conflicts(world.db)

    resolved = ok(api.post(f"/api/conflicts/{conflict['id']}/resolve", json={"system": "a"}))

    assert (resolved["status"], resolved["winner"], resolved["resolution"]) == (
        "resolved",
        "a",
        "CTO",
    )
    world.sync()
    assert world.contact("b", "bob@acme.com")["jobtitle"] == "CTO"


def test_resolving_by_value_takes_the_value(api: TestClient, world: World):
    [conflict] = admin.list_conflicts(world.db)

    resolved = ok(api.post(f"/api/conflicts/{conflict['id']}/resolve", json={"value": "COO"}))

    assert resolved["resolution"] == "COO"
    assert resolved["winner"] is None


@pytest.mark.parametrize(
    "body", [{}, {"system": "a", "value": "X"}, {"value": None}, {"system": "a", "extra": 1}]
)
def test_a_resolution_needs_exactly_one_choice(api: TestClient, world: World, body: dict):
    [conflict] = admin.list_conflicts(world.db)

    response = api.post(f"/api/conflicts/{conflict['id']}/resolve", json=body)

    assert response.status_code == 422
    assert admin.list_conflicts(world.db) == [conflict]


def test_resolving_an_unknown_or_settled_conflict_says_which(api: TestClient, world: World):
    [conflict] = admin.list_conflicts(world.db)
    ok(api.post(f"/api/conflicts/{conflict['id']}/resolve", json={"system": "a"}))

    again = api.post(f"/api/conflicts/{conflict['id']}/resolve", json={"system": "b"})
    unknown = api.post("/api/conflicts/999/resolve", json={"system": "b"})
    no_such_side = api.post(f"/api/conflicts/{conflict['id']}/resolve", json={"system": "c"})

    assert again.status_code == 409
    assert "not open" in again.json()["detail"]
    assert unknown.status_code == 404
    assert no_such_side.status_code == 409


def test_retry_by_ids_or_all_and_discard(api: TestClient, world: World):
    [failed] = admin.list_failed(world.db)

    assert ok(api.post("/api/failed/retry", json={"ids": [failed["id"]]})) == {"retried": 1}
    assert ok(api.post("/api/failed/retry", json={"all": True})) == {"retried": 1}
    assert admin.list_failed(world.db)[0]["next_attempt_at"] is None
    assert ok(api.post("/api/failed/discard", json={"ids": [failed["id"]]})) == {"discarded": 1}
    assert admin.list_failed(world.db) == []
    assert ok(api.post("/api/failed/retry", json={"all": True})) == {"retried": 0}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/failed/retry", {}, 422),
        ("/api/failed/retry", {"ids": [1], "all": True}, 422),
        ("/api/failed/retry", {"ids": [999]}, 404),
        ("/api/failed/discard", {"ids": [999]}, 404),
        ("/api/failed/discard", {}, 422),
    ],
)
def test_retry_and_discard_refuse_what_they_cannot_do(
    api: TestClient, world: World, path: str, body: dict, status: int
):
    before = admin.list_failed(world.db)

    assert api.post(path, json=body).status_code == status
    assert admin.list_failed(world.db) == before


def test_a_retried_record_goes_through_on_the_next_run(api: TestClient, world: World):
    world.give_b_the_priority_property()
    ok(api.post("/api/failed/retry", json={"all": True}))

    world.sync()

    assert world.deal("b", "Rockets") is not None
    assert ok(api.get("/api/failed")) == []


# --------------------------------------------------------------------------- metrics


def metrics(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_runs_records_conflicts_and_failures(api: TestClient, world: World):
    seen = metrics(api)

    main = (("sync", "main"),)
    assert seen[("crmhub_runs_total", (("status", "succeeded"), ("sync", "main")))] == 2
    assert seen[("crmhub_records_total", (("outcome", "created"), ("sync", "main")))] == 3
    assert seen[("crmhub_records_total", (("outcome", "failed"), ("sync", "main")))] >= 1
    assert seen[("crmhub_open_conflicts", main)] == 1
    assert seen[("crmhub_failed_records", main)] == 1
    assert seen[("crmhub_canonical_records", main)] == 4
    [last] = admin.list_runs(world.db, limit=1)
    finished = datetime.fromisoformat(last["finished_at"]).timestamp()
    assert seen[("crmhub_last_run_timestamp_seconds", main)] == pytest.approx(finished)
    assert seen[("crmhub_last_success_timestamp_seconds", main)] == pytest.approx(finished)


def test_metrics_add_each_new_run_once(api: TestClient, world: World):
    created = ("crmhub_records_total", (("outcome", "created"), ("sync", "main")))
    runs = ("crmhub_runs_total", (("status", "succeeded"), ("sync", "main")))
    before = metrics(api)
    world.edit_company("a", "acme.com", {"name": "Acme Rockets"})
    world.edit_contact("a", "ann@acme.com", {"lastname": "Lee"})
    world.sync()

    after = metrics(api)
    again = metrics(api)

    updated = ("crmhub_records_total", (("outcome", "updated"), ("sync", "main")))
    assert after[runs] == before[runs] + 1
    assert after[created] == before[created]
    assert after[updated] == before.get(updated, 0) + 2
    assert again == after
