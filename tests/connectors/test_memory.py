"""The in-memory connector behaves like a vendor: paging, filters, per-record rejections, files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import WriteResult
from connectors.errors import ConnectorConfigError, RecordRejected, Unreachable
from connectors.memory.connector import MemoryConnector, MemorySettings
from connectors.memory.store import MemoryStore, shifted_clock

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=1)


def connector(
    *, page_size: int = 100, max_batch: int = 100, store: MemoryStore | None = None
) -> MemoryConnector:
    store = store or MemoryStore(clock=shifted_clock(START, STEP))
    settings = MemorySettings(page_size=page_size, max_batch=max_batch)
    return MemoryConnector("crm", settings, store=store)


def read_all(
    crm: MemoryConnector, object_type: str, since: datetime | None = None
) -> tuple[list[str], int]:
    """Every record id across all pages, in order, and how many pages it took."""
    ids: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = crm.read_changes(object_type, since, token, [])
        pages += 1
        ids.extend(record.id for record in page.records)
        token = page.next_token
        if token is None:
            return ids, pages


# --------------------------------------------------------------------------- reads


def test_pages_hold_page_size_records_and_every_record_comes_once_in_modified_order():
    crm = connector(page_size=3)
    created = [crm.store.create("contacts", {"firstname": f"P{i}"}).id for i in range(10)]
    # Touch two early records: they move to the end, as a vendor orders by modified time.
    crm.store.update("contacts", created[0], {"jobtitle": "CTO"})
    crm.store.update("contacts", created[4], {"jobtitle": "CEO"})

    first = crm.read_changes("contacts", None, None, [])
    ids, pages = read_all(crm, "contacts")

    assert len(first.records) == 3
    assert first.next_token is not None
    assert pages == 4  # 3 + 3 + 3 + 1
    assert sorted(ids, key=int) == created  # each exactly once
    assert ids[-2:] == [created[0], created[4]]
    times = [crm.store.get("contacts", record_id).modified_at for record_id in ids]
    assert times == sorted(times)


def test_a_full_last_page_says_there_is_no_next_page():
    crm = connector(page_size=2)
    for i in range(4):
        crm.store.create("companies", {"name": f"C{i}"})
    ids, pages = read_all(crm, "companies")
    assert len(ids) == 4
    assert pages == 2


def test_records_stamped_in_the_same_instant_are_not_lost_at_a_page_edge():
    frozen = MemoryStore(clock=lambda: START)  # a vendor with second-resolution timestamps
    crm = connector(page_size=2, store=frozen)
    created = [frozen.create("contacts", {"firstname": f"P{i}"}).id for i in range(5)]
    ids, _ = read_all(crm, "contacts")
    assert ids == created


def test_a_tampered_page_token_is_rejected_not_misread():
    crm = connector()
    with pytest.raises(RecordRejected) as caught:
        crm.read_changes("contacts", None, "not-a-token", [])
    assert caught.value.code == "INVALID_TOKEN"


def test_read_changes_returns_only_records_modified_at_or_after_since():
    crm = connector(page_size=2)
    old = crm.store.create("contacts", {"firstname": "Old"})  # 09:00:00
    edge = crm.store.create("contacts", {"firstname": "Edge"})  # 09:00:01
    new = crm.store.create("contacts", {"firstname": "New"})  # 09:00:02
    crm.store.update("contacts", old.id, {"jobtitle": "CTO"})  # 09:00:03

    ids, _ = read_all(crm, "contacts", since=edge.modified_at)

    assert edge.modified_at == START + STEP
    assert ids == [edge.id, new.id, old.id]
    later, _ = read_all(crm, "contacts", since=START + timedelta(hours=1))
    assert later == []


def test_read_changes_returns_only_the_fields_asked_for():
    crm = connector()
    crm.store.create("contacts", {"firstname": "Ann", "email": "ann@x.com", "jobtitle": "CTO"})
    [record] = crm.read_changes("contacts", None, None, ["email", "phone"]).records
    assert dict(record.fields) == {"email": "ann@x.com", "phone": None}


def test_read_by_ids_omits_ids_that_do_not_exist():
    crm = connector()
    ann = crm.store.create("contacts", {"firstname": "Ann"})
    bob = crm.store.create("contacts", {"firstname": "Bob"})
    found = crm.read("contacts", [bob.id, "999", ann.id], [])
    assert [record.id for record in found] == [bob.id, ann.id]
    assert found[0].fields["firstname"] == "Bob"


def test_find_matches_case_insensitively():
    crm = connector()
    ann = crm.store.create("contacts", {"firstname": "Ann", "email": "Ann.Lee@Acme.com"})
    crm.store.create("contacts", {"firstname": "Bob", "email": "bob@acme.com"})
    found = crm.find("contacts", "email", ["ann.lee@ACME.COM", "nobody@acme.com"])
    assert [record.id for record in found] == [ann.id]
    assert crm.find("companies", "name", ["acme"]) == []


# --------------------------------------------------------------------------- writes


@pytest.mark.parametrize(
    ("object_type", "bad", "code", "words"),
    [
        (
            "contacts",
            {"firstname": "X", "favourite_colour": "red"},
            "PROPERTY_DOESNT_EXIST",
            ["favourite_colour"],
        ),
        ("contacts", {"firstname": "X", "email": "x@@acme"}, "INVALID_EMAIL", ["x@@acme"]),
        ("contacts", {"firstname": "X", "email": "ANN@acme.com"}, "CONFLICT", ["Existing ID: 1"]),
        ("companies", {"domain": "nameless.com"}, "REQUIRED_FIELD", ["name"]),
    ],
    ids=["unknown-property", "malformed-email", "duplicate-email", "company-without-name"],
)
def test_a_rejected_record_fails_alone_and_the_rest_of_the_batch_is_created(
    object_type: str, bad: dict, code: str, words: list[str]
):
    crm = connector()
    existing = crm.create("contacts", [{"firstname": "Ann", "email": "ann@acme.com"}])
    assert existing[0].remote_id == "1"
    good_before = {"contacts": {"firstname": "Bob"}, "companies": {"name": "Acme"}}[object_type]
    good_after = {"contacts": {"firstname": "Cat"}, "companies": {"name": "Globex"}}[object_type]

    results = crm.create(object_type, [good_before, bad, good_after])

    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert error is not None
    assert error.code == code
    assert error.system == "crm"
    for word in words:
        assert word in error.message
    assert results[1].remote_id is None
    stored = [crm.store.get(object_type, r.remote_id) for r in results if r.remote_id]
    assert [s.fields for s in stored if s] == [good_before, good_after]
    assert results[0].modified_at == crm.store.get(object_type, results[0].remote_id).modified_at


def test_a_duplicate_email_inside_one_batch_names_the_record_just_created():
    crm = connector()
    first, second = crm.create(
        "contacts", [{"email": "ann@acme.com"}, {"email": "Ann@Acme.com", "firstname": "Annie"}]
    )
    assert first.ok
    assert second.error is not None
    assert second.error.code == "CONFLICT"
    assert f"Existing ID: {first.remote_id}" in second.error.message


def test_an_account_that_allows_duplicate_emails_creates_both():
    store = MemoryStore(clock=shifted_clock(START, STEP), unique_emails=False)
    crm = connector(store=store)
    results = crm.create("contacts", [{"email": "ann@acme.com"}, {"email": "ANN@acme.com"}])
    assert all(r.ok for r in results)
    assert len(crm.find("contacts", "email", ["ann@acme.com"])) == 2


def test_deleting_a_contact_frees_its_email():
    crm = connector()
    [ann] = crm.create("contacts", [{"email": "ann@acme.com"}])
    assert ann.remote_id is not None
    crm.delete("contacts", [ann.remote_id])
    [again] = crm.create("contacts", [{"email": "ann@acme.com"}])
    assert again.ok


def test_an_update_changes_only_the_given_fields_and_none_clears_one():
    crm = connector()
    [ann] = crm.create("contacts", [{"firstname": "Ann", "jobtitle": "CTO", "phone": "1"}])
    assert ann.remote_id is not None
    [result] = crm.update("contacts", [(ann.remote_id, {"jobtitle": "CEO", "phone": None})])
    assert result.ok
    assert ann.modified_at is not None
    assert result.modified_at is not None
    assert result.modified_at > ann.modified_at
    stored = crm.store.get("contacts", ann.remote_id)
    assert stored is not None
    assert stored.fields == {"firstname": "Ann", "jobtitle": "CEO"}


def test_updating_a_missing_record_is_a_not_found_result_and_the_rest_apply():
    crm = connector()
    [ann] = crm.create("contacts", [{"firstname": "Ann"}])
    assert ann.remote_id is not None
    missing, applied = crm.update(
        "contacts", [("404", {"jobtitle": "CTO"}), (ann.remote_id, {"jobtitle": "CEO"})]
    )
    assert missing.error is not None
    assert missing.error.code == "NOT_FOUND"
    assert "404" in missing.error.message
    assert applied.ok
    assert crm.store.get("contacts", ann.remote_id).fields["jobtitle"] == "CEO"


def test_an_update_is_validated_like_a_create():
    crm = connector()
    _, bob = crm.create("contacts", [{"email": "ann@acme.com"}, {"email": "bob@acme.com"}])
    assert bob.remote_id is not None
    taken, malformed = crm.update(
        "contacts", [(bob.remote_id, {"email": "ANN@acme.com"}), (bob.remote_id, {"email": "b@"})]
    )
    assert taken.error is not None
    assert taken.error.code == "CONFLICT"
    assert malformed.error is not None
    assert malformed.error.code == "INVALID_EMAIL"
    assert crm.store.get("contacts", bob.remote_id).fields == {"email": "bob@acme.com"}


def test_a_batch_larger_than_max_batch_is_refused_whole():
    crm = connector(max_batch=2)
    with pytest.raises(RecordRejected) as caught:
        crm.create("contacts", [{"firstname": f"P{i}"} for i in range(3)])
    assert caught.value.code == "BATCH_TOO_LARGE"
    assert crm.store.all("contacts") == []
    assert len(crm.create("contacts", [{"firstname": "A"}, {"firstname": "B"}])) == 2


def test_a_deleted_record_is_reported_by_read_deletes_and_gone_from_reads():
    crm = connector(page_size=2)
    ids = [r.remote_id for r in crm.create("contacts", [{"firstname": f"P{i}"} for i in range(2)])]
    assert all(ids)
    kept, gone = ids[0], ids[1]
    assert gone is not None
    [deleted] = crm.delete("contacts", [gone])
    assert deleted.ok

    page = crm.read_deletes("contacts", None, None)

    assert [(r.id, r.deleted) for r in page.records] == [(gone, True)]
    assert page.records[0].modified_at == deleted.modified_at
    assert crm.read_deletes("contacts", deleted.modified_at + STEP, None).records == []
    assert read_all(crm, "contacts")[0] == [kept]
    [again] = crm.delete("contacts", [gone])
    assert again.error is not None
    assert again.error.code == "NOT_FOUND"


def test_read_deletes_pages_through_many_tombstones():
    crm = connector(page_size=2)
    created = crm.create("contacts", [{"firstname": f"P{i}"} for i in range(5)])
    crm.delete("contacts", [r.remote_id for r in created if r.remote_id])
    seen: list[str] = []
    token: str | None = None
    while True:
        page = crm.read_deletes("contacts", None, token)
        assert len(page.records) <= 2
        seen.extend(r.id for r in page.records)
        token = page.next_token
        if token is None:
            break
    assert seen == [r.remote_id for r in created]


# --------------------------------------------------------------------------- persistence


def test_a_saved_store_reopens_with_its_records_ids_and_tombstones(tmp_path: Path):
    path = tmp_path / "crm.json"
    store = MemoryStore(path=path, clock=shifted_clock(START, STEP))
    acme = store.create("companies", {"name": "Acme", "domain": "acme.com"})
    ann = store.create("contacts", {"firstname": "Ann", "email": "ann@acme.com"})
    bob = store.create("contacts", {"firstname": "Bob", "company_id": acme.id})
    deleted_at = store.delete("contacts", bob.id)
    store.save()

    reopened = MemoryStore(path=path)

    assert [(r.id, r.modified_at, r.fields) for r in reopened.all("contacts")] == [
        (ann.id, ann.modified_at, ann.fields)
    ]
    assert reopened.get("companies", acme.id).fields == {"name": "Acme", "domain": "acme.com"}
    assert reopened.deleted_since("contacts", None) == [(deleted_at, bob.id)]
    assert reopened.create("contacts", {"firstname": "Cat"}).id == "3"  # not a reused "2"
    assert reopened.create("companies", {"name": "Globex"}).id == "2"
    with pytest.raises(RecordRejected, match="Existing ID: 1"):
        reopened.create("contacts", {"email": "ANN@acme.com"})  # the email index came back


def test_a_connector_on_a_file_saves_every_write_for_the_next_process(tmp_path: Path):
    path = tmp_path / "crm.json"
    crm = MemoryConnector("crm", MemorySettings(path=path))
    crm.create("contacts", [{"firstname": "Ann", "email": "ann@acme.com"}])
    other = MemoryConnector("crm", MemorySettings(path=path))
    assert [r.fields["email"] for r in other.find("contacts", "email", ["ann@acme.com"])] == [
        "ann@acme.com"
    ]


def test_a_truncated_store_file_is_a_config_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "crm.json"
    path.write_text('{"contacts": {"next_id": 3, "records": [["1", "2026-', encoding="utf-8")
    with pytest.raises(ConnectorConfigError) as caught:
        MemoryConnector("crm", MemorySettings(path=path))
    assert str(path) in caught.value.message
    assert caught.value.system == "crm"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "content",
    ["[]", '{"contacts": {"next_id": 1}}', '{"name": "my-package"}'],
    ids=["a-list", "missing-records", "some-other-json-file"],
)
def test_a_json_file_that_is_not_a_store_is_a_config_error_naming_the_file(
    tmp_path: Path, content: str
):
    path = tmp_path / "crm.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConnectorConfigError) as caught:
        MemoryConnector("crm", MemorySettings(path=path))
    assert str(path) in caught.value.message


# --------------------------------------------------------------------------- hooks


def test_before_call_sees_every_call_and_can_fail_it_before_the_store_changes():
    crm = connector()
    calls: list[tuple[str, str]] = []

    def hook(operation: str, object_type: str) -> None:
        calls.append((operation, object_type))
        if operation == "create" and object_type == "deals":
            raise Unreachable("connection refused", system="crm")

    crm.before_call = hook
    crm.check()
    crm.create("companies", [{"name": "Acme"}])
    crm.read_changes("companies", None, None, [])
    crm.find("companies", "name", ["acme"])
    with pytest.raises(Unreachable):
        crm.create("deals", [{"dealname": "Big one"}])

    assert calls == [
        ("check", ""),
        ("create", "companies"),
        ("read_changes", "companies"),
        ("find", "companies"),
        ("create", "deals"),
    ]
    assert crm.store.all("deals") == []


def test_after_write_sees_results_the_store_has_already_applied_and_saved(tmp_path: Path):
    path = tmp_path / "crm.json"
    crm = MemoryConnector("crm", MemorySettings(path=path))
    seen: list[tuple[str, str, list[str | None], list[str]]] = []

    def hook(operation: str, object_type: str, results: Sequence[WriteResult]) -> None:
        on_disk = json.loads(path.read_text(encoding="utf-8"))
        stored = [record[2]["firstname"] for record in on_disk[object_type]["records"]]
        seen.append((operation, object_type, [r.remote_id for r in results], stored))

    crm.after_write = hook
    crm.create("contacts", [{"firstname": "Ann"}, {"firstname": "Bob", "email": "bad"}])
    crm.update("contacts", [("1", {"firstname": "Anne"})])

    assert seen == [
        ("create", "contacts", ["1", None], ["Ann"]),
        ("update", "contacts", ["1"], ["Anne"]),
    ]


def test_a_merge_keeps_the_survivor_lists_the_absorbed_and_survives_a_restart(tmp_path: Path):
    path = tmp_path / "crm.json"
    crm = MemoryConnector("crm", MemorySettings(path=path))
    [keep, lose] = crm.create(
        "contacts",
        [{"firstname": "Ann", "email": "ann@x.com"}, {"firstname": "Ann", "jobtitle": "CTO"}],
    )
    assert keep.remote_id
    assert lose.remote_id
    crm.store.merge("contacts", keep.remote_id, lose.remote_id)
    crm.close()

    again = MemoryConnector("crm", MemorySettings(path=path))
    [survivor] = again.read("contacts", [lose.remote_id], [])
    assert survivor.id == keep.remote_id  # the old id answers for the survivor
    assert survivor.merged_ids == (lose.remote_id,)
    assert survivor.fields["jobtitle"] == "CTO"  # filled from the absorbed record
    [update] = again.update("contacts", [(lose.remote_id, {"jobtitle": "CEO"})])
    assert update.remote_id == keep.remote_id
    deleted = again.read_deletes("contacts", None, None).records
    assert [record.id for record in deleted] == [lose.remote_id]
