"""The Bitrix24 connector against the live Bitrix24 sandbox: what the contract suite leaves out.

Bitrix24 specifics: multifields rewritten by item ID (and the sandbox appending without one, as
the portal does), a contact's mobile phone, deal contacts through the binding API, keyset reads
that survive edits between pages and crowded seconds, the portal's time zone, batch's PHP
quirks, the leaky bucket, webhooks, and the id sweep that stands in for delete detection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connectors.base import RemoteRecord
from connectors.bitrix24.connector import Bitrix24Connector, Bitrix24Settings
from connectors.bitrix24.sandbox import Bitrix24Api, OperatingTime
from connectors.errors import AuthError, RecordRejected
from connectors.sandbox import Sandbox, SandboxOptions

FIELDS = ["NAME", "LAST_NAME", "EMAIL", "PHONE", "PHONE_MOBILE", "POST", "COMPANY_ID"]


@pytest.fixture
def api() -> Bitrix24Api:
    # A generous budget: these tests are about behaviour, the bucket has its own test.
    return Bitrix24Api(SandboxOptions(rate_limit=200))


@pytest.fixture
def sandbox(api: Bitrix24Api) -> Iterator[Sandbox]:
    with Sandbox(api, api.options) as served:
        yield served


def connect(sandbox: Sandbox, **overrides: Any) -> Bitrix24Connector:
    config = {**sandbox.connector_settings(), **overrides}
    del config["connector"]
    return Bitrix24Connector("b24", Bitrix24Settings.model_validate(config), sleep=lambda _: None)


def read_everything(
    connector: Bitrix24Connector, since: datetime | None = None
) -> list[RemoteRecord]:
    records: list[RemoteRecord] = []
    token: str | None = None
    while True:
        page = connector.read_changes("contacts", since, token, FIELDS)
        records.extend(page.records)
        token = page.next_token
        if not token:
            return records


def call(sandbox: Sandbox, method: str, body: dict[str, Any]) -> Any:
    """A raw API call through the portal's webhook (as another integration would make it)."""
    url = sandbox.api.webhook_url(sandbox.url)  # type: ignore[attr-defined]
    return requests.post(f"{url}{method}.json", json=body, timeout=5).json()


# ------------------------------------------------------------------------------ multifields


def test_updating_a_phone_rewrites_its_item_instead_of_appending(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    connector = connect(sandbox)
    [created] = connector.create(
        "contacts",
        [{"NAME": "Ada", "EMAIL": "ada@example.com", "PHONE": "+1 415 555 0100"}],
    )
    assert created.remote_id
    for number in ("+1 415 555 0111", "+1 415 555 0122"):
        [result] = connector.update("contacts", [(created.remote_id, {"PHONE": number})])
        assert result.ok
    raw = call(sandbox, "crm.contact.get", {"id": created.remote_id})["result"]
    assert [item["VALUE"] for item in raw["PHONE"]] == ["+1 415 555 0122"]

    # The portal itself appends an item sent without its ID: the trap the connector avoids.
    call(
        sandbox,
        "crm.contact.update",
        {"id": created.remote_id, "fields": {"PHONE": [{"VALUE": "+1 415 555 0133"}]}},
    )
    raw = call(sandbox, "crm.contact.get", {"id": created.remote_id})["result"]
    assert [item["VALUE"] for item in raw["PHONE"]] == ["+1 415 555 0122", "+1 415 555 0133"]
    # An empty list changes nothing.
    call(sandbox, "crm.contact.update", {"id": created.remote_id, "fields": {"PHONE": []}})
    assert len(call(sandbox, "crm.contact.get", {"id": created.remote_id})["result"]["PHONE"]) == 2


def test_mobile_and_work_phones_are_kept_apart_and_cleared_by_item(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    connector = connect(sandbox)
    record_id = api.insert(
        "contacts", {"NAME": "Bo", "PHONE": "+46 8 123 456 78", "PHONE_MOBILE": "+46 70 123 45 67"}
    )
    [before] = connector.read("contacts", [record_id], FIELDS)
    assert before.fields["PHONE"] == "+46 8 123 456 78"
    assert before.fields["PHONE_MOBILE"] == "+46 70 123 45 67"
    connector.update("contacts", [(record_id, {"PHONE_MOBILE": "+46 70 999 99 99"})])
    connector.update("contacts", [(record_id, {"PHONE": None})])
    [after] = connector.read("contacts", [record_id], FIELDS)
    assert after.fields["PHONE"] is None
    assert after.fields["PHONE_MOBILE"] == "+46 70 999 99 99"
    raw = call(sandbox, "crm.contact.get", {"id": record_id})["result"]
    assert [(i["VALUE_TYPE"], i["VALUE"]) for i in raw["PHONE"]] == [("MOBILE", "+46 70 999 99 99")]


def test_every_value_is_a_string_and_stamps_carry_the_portal_offset(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    deal_id = api.insert(
        "deals", {"TITLE": "Pilot", "OPPORTUNITY": 1200, "CLOSEDATE": "2025-03-01"}
    )
    raw = call(sandbox, "crm.deal.get", {"id": deal_id})["result"]
    assert raw["ID"] == deal_id
    assert raw["OPPORTUNITY"] == "1200.00"
    assert raw["CLOSEDATE"] == "2025-03-01T00:00:00+03:00"
    assert raw["DATE_MODIFY"].endswith("+03:00")
    [deal] = connect(sandbox).read("deals", [deal_id], ["CLOSEDATE", "TITLE"])
    assert deal.fields["CLOSEDATE"] == "2025-03-01"  # the portal's date, not the UTC one
    stamp = datetime.fromisoformat(raw["DATE_MODIFY"])
    assert deal.modified_at == stamp.astimezone(UTC)


# ------------------------------------------------------------------------------ references


def test_deal_contacts_are_written_and_read_through_the_binding_api(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    connector = connect(sandbox)
    people = [api.insert("contacts", {"NAME": f"P{n}"}) for n in range(3)]
    company = api.insert("companies", {"TITLE": "Acme"})
    [created] = connector.create(
        "deals", [{"TITLE": "Renewal", "COMPANY_ID": company, "CONTACT_IDS": people[:2]}]
    )
    assert created.remote_id
    fields = ["TITLE", "COMPANY_ID", "CONTACT_IDS"]
    [deal] = connector.read("deals", [created.remote_id], fields)
    assert deal.fields == {"TITLE": "Renewal", "COMPANY_ID": company, "CONTACT_IDS": people[:2]}
    connector.update("deals", [(created.remote_id, {"CONTACT_IDS": [people[2], people[0]]})])
    [deal] = connector.read("deals", [created.remote_id], fields)
    assert deal.fields["CONTACT_IDS"] == [people[2], people[0]]
    raw = call(sandbox, "crm.deal.get", {"id": created.remote_id})["result"]
    assert raw["CONTACT_ID"] == people[2]  # the deprecated single field follows the primary
    connector.update("deals", [(created.remote_id, {"CONTACT_IDS": []})])
    assert api.snapshot("deals")[created.remote_id]["CONTACT_IDS"] == []


def test_a_binding_to_a_missing_contact_is_rejected_alone(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    connector = connect(sandbox)
    good = api.insert("deals", {"TITLE": "Good"})
    bad = api.insert("deals", {"TITLE": "Bad"})
    person = api.insert("contacts", {"NAME": "P"})
    results = connector.update(
        "deals", [(good, {"CONTACT_IDS": [person]}), (bad, {"CONTACT_IDS": ["999"]})]
    )
    assert results[0].ok
    assert isinstance(results[1].error, RecordRejected)
    assert api.snapshot("deals")[good]["CONTACT_IDS"] == [person]


# ------------------------------------------------------------------------------ reads


def test_an_edit_between_pages_loses_no_record(sandbox: Sandbox, api: Bitrix24Api) -> None:
    api.seed_records(600, seed=7)
    connector = connect(sandbox)
    first = connector.read_changes("contacts", None, None, FIELDS)
    assert first.next_token
    seen = [r.id for r in first.records]
    # Edit one record already handed out and one not yet reached: offsets would now skip one.
    unread = sorted(set(api.snapshot("contacts")) - set(seen), key=int)[0]
    api.modify("contacts", seen[0], {"POST": "Edited"})
    api.modify("contacts", unread, {"POST": "Edited too"})
    token = first.next_token
    rest: list[RemoteRecord] = []
    while token:
        page = connector.read_changes("contacts", None, token, FIELDS)
        rest.extend(page.records)
        token = page.next_token
    everything = {r.id for r in first.records} | {r.id for r in rest}
    assert everything == set(api.snapshot("contacts"))
    edited = {r.id: r.fields["POST"] for r in rest if r.fields["POST"] in ("Edited", "Edited too")}
    assert edited == {seen[0]: "Edited", unread: "Edited too"}
    stamps = [r.modified_at for r in rest]
    assert stamps == sorted(stamps)


def test_a_crowded_second_is_read_whole_and_once(
    sandbox: Sandbox, api: Bitrix24Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    instant = datetime(2025, 6, 1, 9, 30, 0, 250_000, tzinfo=UTC)
    monkeypatch.setattr(api.clock, "now", lambda: instant)
    ids = [api.insert("contacts", {"NAME": f"Bulk {n}"}) for n in range(260)]
    monkeypatch.setattr(api.clock, "now", lambda: instant + timedelta(seconds=5))
    later = api.insert("contacts", {"NAME": "Later"})
    connector = connect(sandbox)
    records = read_everything(connector, since=instant - timedelta(seconds=1))
    assert [r.id for r in records] == [*ids, later]


def test_an_incremental_read_filters_on_the_portal_stamp(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    api.seed_records(30, seed=1)
    connector = connect(sandbox)
    everything = read_everything(connector)
    cut = everything[20].modified_at
    changed = read_everything(connector, since=cut)
    assert [r.id for r in changed] == [r.id for r in everything[20:]]


def test_a_list_without_order_or_count_behaves_as_documented(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    api.seed_records(120, seed=2)
    answer = call(sandbox, "crm.contact.list", {"select": ["ID"], "start": -1})
    assert len(answer["result"]) == 50
    assert answer["total"] == 0
    assert "next" not in answer
    paged = call(sandbox, "crm.contact.list", {"SELECT": ["*"], "start": 100})
    assert paged["total"] == 120
    assert "next" not in paged
    assert "EMAIL" not in paged["result"][0]  # * never includes the multifields
    assert paged["result"][0]["ID"].isdigit()
    first = call(sandbox, "crm.contact.list", {"select": ["ID", "EMAIL"]})
    assert first["next"] == 50
    assert first["result"][0]["EMAIL"][0]["TYPE_ID"] == "EMAIL"


# ------------------------------------------------------------------------------ batch


def test_batch_answers_with_php_shapes(sandbox: Sandbox, api: Bitrix24Api) -> None:
    company = api.insert("companies", {"TITLE": "Acme"})
    numeric = call(
        sandbox,
        "batch",
        {
            "halt": 0,
            "cmd": {
                "0": "crm.company.get?id=0",
                "1": "crm.company.get?id=999",
                "x": f"crm.company.get?id={company}",
            },
        },
    )["result"]
    # Keys 0 and 1 of a map are a list in PHP's JSON: which command failed is lost.
    assert numeric["result_error"] == [
        {"error": "", "error_description": "ID is not defined or invalid."},
        {"error": "", "error_description": "Not found"},
    ]
    assert numeric["result_total"] == []
    assert numeric["result"]["x"]["TITLE"] == "Acme"
    halted = call(
        sandbox,
        "batch",
        {"halt": 1, "cmd": {"a": "crm.company.get?id=999", "b": f"crm.company.get?id={company}"}},
    )["result"]
    assert list(halted["result_error"]) == ["a"]
    assert halted["result"] == []
    chained = call(
        sandbox,
        "batch",
        {
            "halt": 0,
            "cmd": {
                "add": "crm.company.add?fields[TITLE]=Chained",
                "get": "crm.company.get?id=$result[add]",
            },
        },
    )["result"]
    assert chained["result"]["get"]["TITLE"] == "Chained"
    too_long = call(sandbox, "batch", {"cmd": {f"c{n}": "crm.company.list" for n in range(51)}})
    assert too_long["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"


def test_validation_errors_come_per_command(sandbox: Sandbox) -> None:
    connector = connect(sandbox)
    results = connector.create(
        "contacts", [{"POST": "No name"}, {"NAME": "Ok", "EMAIL": "ok@example.com"}]
    )
    assert isinstance(results[0].error, RecordRejected)
    assert "Name" in results[0].error.message
    assert results[1].ok


# ------------------------------------------------------------------------------ limits and auth


def test_the_leaky_bucket_refuses_past_its_depth_and_drains() -> None:
    api = Bitrix24Api(SandboxOptions(rate_limit=2))
    with Sandbox(api, api.options) as sandbox:
        statuses = [
            requests.post(
                f"{api.webhook_url(sandbox.url)}crm.contact.list.json", json={}, timeout=5
            )
            for _ in range(51)
        ]
        assert [r.status_code for r in statuses[:50]] == [200] * 50
        assert statuses[50].status_code == 503
        assert statuses[50].json() == {
            "error": "QUERY_LIMIT_EXCEEDED",
            "error_description": "Too many requests",
        }
        # The connector's own budget comes from the sandbox's settings: it waits, never refused.
        settings = sandbox.connector_settings()
        assert (settings["requests_per_second"], settings["burst"]) == (2, 50)


def test_operating_time_is_summed_per_caller_and_method_over_ten_minutes() -> None:
    now = [1_717_000_030.0]  # 30 s into a minute
    budget = OperatingTime(clock=lambda: now[0])
    assert budget.report("webhook", "crm.contact.list") == (0.0, 1_717_000_630)

    budget.charge("webhook", "crm.contact.list", 100.0)
    now[0] += 240
    budget.charge("webhook", "crm.contact.list", 50.0)
    budget.charge("application", "crm.contact.list", 7.0)
    budget.charge("webhook", "crm.deal.list", 3.0)
    # The first bucket (the minute from 1_717_000_020) leaves the window ten minutes on.
    assert budget.report("webhook", "crm.contact.list") == (150.0, 1_717_000_620)
    assert budget.report("application", "crm.contact.list")[0] == 7.0
    assert budget.report("webhook", "crm.deal.list")[0] == 3.0

    now[0] = 1_717_000_620.0
    assert budget.report("webhook", "crm.contact.list") == (50.0, 1_717_000_860)
    now[0] += 600
    assert budget.report("webhook", "crm.contact.list") == (0.0, 1_717_001_820)


def test_answers_carry_each_methods_operating_time_and_a_batch_spends_none(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    api.seed_records(20, seed=2)
    api.operating.charge("webhook", "crm.contact.list", 200.0)
    url = api.webhook_url(sandbox.url)
    single = requests.post(f"{url}crm.contact.list.json", json={}, timeout=5).json()
    batch = requests.post(
        f"{url}batch.json",
        json={"halt": 0, "cmd": {"c0": "crm.contact.list", "c1": "crm.company.list"}},
        timeout=5,
    ).json()

    contacts_used, reset_at = api.operating.report("webhook", "crm.contact.list")
    times = batch["result"]["result_time"]
    assert 200.0 < single["time"]["operating"] < times["c0"]["operating"] == contacts_used
    assert times["c0"]["operating_reset_at"] == reset_at
    assert 0 < times["c1"]["operating"] < 1  # crm.company.list keeps a budget of its own
    assert batch["time"]["operating"] == 0
    # The connector, an application, has spent nothing yet: budgets are per caller.
    assert api.operating.report("application", "crm.contact.list")[0] == 0


def test_the_connector_reports_the_operating_time_the_portal_counted(
    sandbox: Sandbox, api: Bitrix24Api
) -> None:
    api.seed_records(20, seed=2)
    api.operating.charge("application", "crm.contact.list", 300.0)
    connector = connect(sandbox)

    read_everything(connector)

    used, reset_at = api.operating.report("application", "crm.contact.list")
    assert connector.headroom() == {
        "operating": {
            "used": used,
            "limit": 480,
            "unit": "seconds",
            "window": "10min",
            "scope": "crm.contact.list",
            "resets_at": datetime.fromtimestamp(reset_at, UTC).isoformat(),
        }
    }
    assert used > 300.0


def test_a_webhook_connects_and_a_wrong_code_is_refused(sandbox: Sandbox, api: Bitrix24Api) -> None:
    api.seed_records(10, seed=1)
    hooked = Bitrix24Connector("b24", {"webhook_url": api.webhook_url(sandbox.url)})
    hooked.check()
    assert len(read_everything(hooked)) == 10
    wrong = api.webhook_url(sandbox.url).replace(api.webhook_code, "0000wrongcode000")
    refused = Bitrix24Connector("b24", {"webhook_url": wrong})
    with pytest.raises(AuthError) as raised:
        refused.check()
    assert "0000wrongcode000" not in str(raised.value)


def test_find_by_phone_and_email_uses_findbycomm(sandbox: Sandbox, api: Bitrix24Api) -> None:
    record_id = api.insert(
        "contacts", {"NAME": "Cy", "EMAIL": "Cy.Lee@Example.com", "PHONE": "+1 (415) 555-0199"}
    )
    connector = connect(sandbox)
    assert [r.id for r in connector.find("contacts", "EMAIL", ["cy.lee@example.com"])] == [
        record_id
    ]
    assert [r.id for r in connector.find("contacts", "NAME", ["cy"])] == [record_id]
    before = sandbox.calls.count("POST", "/rest/batch")
    connector.create(
        "contacts", [{"NAME": "Cy", "LAST_NAME": "Lee", "EMAIL": "CY.LEE@example.com"}]
    )
    assert len(api.snapshot("contacts")) == 1
    assert api.snapshot("contacts")[record_id]["LAST_NAME"] == "Lee"
    # One request for the lookups, one for the current items, one for the update.
    assert sandbox.calls.count("POST", "/rest/batch") - before == 3


def test_the_id_sweep_pages_through_every_live_id(sandbox: Sandbox, api: Bitrix24Api) -> None:
    api.seed_records(2600, seed=4)
    connector = connect(sandbox)
    for victim in ("3", "2501"):
        api.remove("contacts", victim)
    listed: list[str] = []
    token: str | None = None
    requests_before = sandbox.calls.total
    while True:
        ids, token = connector.list_ids("contacts", token)
        listed.extend(ids)
        if not token:
            break
    assert sorted(listed, key=int) == sorted(api.snapshot("contacts"), key=int)
    assert sandbox.calls.total - requests_before == 2  # 2,500 ids a request


def test_seeded_data_is_typed_the_way_people_type_it(api: Bitrix24Api) -> None:
    api.seed_records(200, seed=9)
    contacts = api.snapshot("contacts")
    phones = [c["PHONE"] for c in contacts.values() if c["PHONE"]]
    assert any(" " in p for p in phones)
    assert any("-" in p for p in phones)
    assert any(p.startswith("+") and p[1:].isdigit() for p in phones)
    assert any(c["EMAIL"] != c["EMAIL"].lower() for c in contacts.values())
    assert any(c["PHONE_MOBILE"] for c in contacts.values())
    assert all(c["COMPANY_ID"] for c in contacts.values())
    deals = api.snapshot("deals")
    assert len(deals) == 40
    assert all(d["CONTACT_IDS"] for d in deals.values())


def test_revoked_credentials_get_bitrix24s_own_refusals_and_new_ones_work(
    api: Bitrix24Api, sandbox: Sandbox
) -> None:
    old = api.connector_settings(sandbox.url)
    old_webhook = api.webhook_url(sandbox.url)

    def refresh(settings: dict[str, Any]) -> requests.Response:
        params = {key: settings[key] for key in ("client_id", "client_secret", "refresh_token")}
        return requests.get(
            settings["oauth_url"], params={"grant_type": "refresh_token", **params}, timeout=5
        )

    api.revoke_credentials()

    refused = refresh(old)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    answer = requests.get(
        f"{sandbox.url}/rest/crm.contact.list", params={"auth": old["access_token"]}, timeout=5
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    hooked = requests.get(f"{old_webhook}crm.contact.list", timeout=5)
    assert hooked.status_code == 401
    assert hooked.json()["error"] == "NO_AUTH_FOUND"

    new = api.connector_settings(sandbox.url)
    assert refresh(new).status_code == 200
    assert requests.get(f"{api.webhook_url(sandbox.url)}crm.contact.list", timeout=5).ok
