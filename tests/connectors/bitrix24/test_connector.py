"""The Bitrix24 connector against recorded Bitrix24 bodies: batch reads, paging, writes, errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from pydantic import ValidationError
from responses import matchers

from connectors.base import ReportsHeadroom, SweepsIds
from connectors.bitrix24.connector import Bitrix24Connector, Bitrix24Settings
from connectors.bitrix24.wire import build_query, parse_query
from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    RateLimited,
    RecordRejected,
    TransientError,
    VendorError,
)
from tests.connectors.conftest import sample

SECRET = "client-secret-8c1f0e2d"
REFRESH = "refresh-token-71b2c9aa"
ACCESS = "access-token-5d0e11fe"
WEBHOOK_CODE = "x7kq2mzw9lp0vq3e"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def portal() -> str:
    # A portal per test: the client-side bucket is shared per portal for the whole process.
    return f"https://t{uuid.uuid4().hex[:10]}.bitrix24.com"


def make(portal: str, **overrides: Any) -> tuple[Bitrix24Connector, Sleeps]:
    sleeps = Sleeps()
    config: dict[str, Any] = {
        "base_url": portal,
        "oauth_url": f"{portal}/oauth/token/",
        "client_id": "local.65f0a1.12345678",
        "client_secret": SECRET,
        "access_token": ACCESS,
        "refresh_token": REFRESH,
        **overrides,
    }
    settings = Bitrix24Settings.model_validate(config)
    return Bitrix24Connector("b24", settings, sleep=sleeps), sleeps


def commands(request: requests.PreparedRequest) -> dict[str, list[tuple[str, str]]]:
    """The batch's commands, each decoded with the standard library (not our PHP parser)."""
    body = json.loads(request.body or b"{}")
    assert body["halt"] == 0
    decoded: dict[str, list[tuple[str, str]]] = {}
    for key, command in body["cmd"].items():
        method, _, query = command.partition("?")
        decoded[key] = [("method", method), *parse_qsl(query, keep_blank_values=True)]
    return decoded


def batch_answer(
    result: Mapping[str, Any],
    *,
    errors: Mapping[str, Any] | None = None,
    total: Mapping[str, Any] | None = None,
    following: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A batch answer in the real envelope (``time`` from a recorded one), PHP's [] for {}."""
    envelope = sample("bitrix24-batch-real-list-empty")
    return {
        "result": {
            "result": dict(result) or [],
            "result_error": dict(errors or {}) or [],
            "result_total": dict(total or {}) or [],
            "result_next": dict(following or {}) or [],
            "result_time": [],
        },
        "time": envelope["time"],
    }


def auth_of(request: requests.PreparedRequest) -> str | None:
    return dict(parse_qsl(urlsplit(request.url or "").query)).get("auth")


CONTACT_ROWS = [
    {
        "ID": "73",
        "NAME": "Ivan",
        "LAST_NAME": "Petrov",
        "DATE_MODIFY": "2024-08-16T13:19:02+02:00",
        "COMPANY_ID": "0",
        "EMAIL": [
            {"ID": "213", "VALUE_TYPE": "WORK", "VALUE": "ivan@example.com", "TYPE_ID": "EMAIL"}
        ],
        "PHONE": [
            {"ID": "301", "VALUE_TYPE": "MOBILE", "VALUE": "+7 999 000-11-22", "TYPE_ID": "PHONE"},
            {"ID": "302", "VALUE_TYPE": "WORK", "VALUE": "+7 495 000-11-22", "TYPE_ID": "PHONE"},
        ],
    },
    {
        "ID": "75",
        "NAME": "Anastasia",
        "LAST_NAME": "Ilyina",
        "DATE_MODIFY": "2024-08-16T13:19:05+02:00",
        "COMPANY_ID": "12",
    },
]


# ------------------------------------------------------------------------------------ settings


def test_settings_need_a_webhook_or_the_oauth_keys() -> None:
    with pytest.raises(ValidationError, match="missing base_url, client_id"):
        Bitrix24Settings.model_validate({"client_secret": SECRET})
    with pytest.raises(ValidationError, match="not both"):
        Bitrix24Settings.model_validate(
            {"webhook_url": f"https://p.bitrix24.com/rest/1/{WEBHOOK_CODE}/", "client_id": "x"}
        )
    with pytest.raises(ValidationError, match="extra"):
        Bitrix24Settings.model_validate({"webhook_url": "https://p.bitrix24.com/rest/1/c/", "x": 1})
    settings = Bitrix24Settings.model_validate({"webhook_url": "https://p.bitrix24.com/rest/1/c/"})
    assert settings.requests_per_second == 2.0
    assert settings.burst == 50
    assert settings.window() == "50 per 25 second"
    assert settings.oauth_url == "https://oauth.bitrix.info/oauth/token/"


def test_invalid_settings_are_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConnectorConfigError, match="burst"):
        Bitrix24Connector("b24", {"webhook_url": "https://p.bitrix24.com/rest/1/c/", "burst": 0})


def test_the_connector_offers_the_id_sweep_and_claims_no_deletes(portal: str) -> None:
    connector, _ = make(portal)
    assert isinstance(connector, SweepsIds)
    assert not connector.capabilities.detects_deletes
    assert connector.capabilities.upsert_keys == {"contacts": "EMAIL"}  # findbycomm first
    assert connector.read_deletes("contacts", None, None).records == []


# ------------------------------------------------------------------------------------ reads


def test_a_full_read_packs_list_commands_into_one_batch(
    rsps: responses.RequestsMock, portal: str
) -> None:
    listed = sample("bitrix24-crm-contact-list")["result"]
    rows = [{**row, "DATE_MODIFY": row["DATE_CREATE"]} for row in listed]
    rows.sort(key=lambda row: (row["DATE_MODIFY"], int(row["ID"])))
    call = rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer({"a0": rows, "a1": [], "a2": [], "a3": []}, total={"a0": 5}),
        match=[matchers.query_param_matcher({"auth": ACCESS})],
    )
    connector, _ = make(portal)
    page = connector.read_changes("contacts", None, None, ["NAME", "LAST_NAME", "EMAIL"])

    sent = commands(call.calls[0].request)
    assert sorted(sent) == ["a0", "a1", "a2", "a3"]
    assert sent["a0"] == [
        ("method", "crm.contact.list"),
        ("order[DATE_MODIFY]", "ASC"),
        ("order[ID]", "ASC"),
        ("select[0]", "ID"),
        ("select[1]", "DATE_MODIFY"),
        ("select[2]", "NAME"),
        ("select[3]", "LAST_NAME"),
        ("select[4]", "EMAIL"),  # multifields are never in a mask: named explicitly
        ("start", "0"),
    ]
    assert dict(sent["a3"])["start"] == "150"
    assert page.next_token is None
    assert [r.id for r in page.records] == ["73", "75", "77", "74", "78"]  # (second, id) order
    first = page.records[0]
    # 2024-02-20T00:00:00+02:00 in the portal's zone is the evening before in UTC.
    assert first.modified_at == datetime(2024, 2, 19, 22, 0, tzinfo=UTC)
    assert first.fields == {
        "NAME": "Ivan",
        "LAST_NAME": "Petrov",
        "EMAIL": "special-for@example.com",
    }


def test_later_pages_are_keyset_requests_from_the_last_record_handed_out(
    rsps: responses.RequestsMock, portal: str
) -> None:
    first = rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer(
            {"a0": CONTACT_ROWS, "a1": [], "a2": [], "a3": []},
            total={"a0": 120},
            following={"a0": 50, "a1": 100, "a2": 150, "a3": 200},
        ),
    )
    connector, _ = make(portal)
    page = connector.read_changes("contacts", None, None, ["NAME", "EMAIL", "PHONE"])
    assert page.next_token
    sent = commands(first.calls[0].request)
    assert len(sent) == 4

    second = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"w0": [], "a0": []}))
    last = connector.read_changes("contacts", None, page.next_token, ["NAME", "EMAIL", "PHONE"])
    assert last.records == []
    assert last.next_token is None
    sent = commands(second.calls[0].request)
    assert len(sent) == 50
    # The rest of the last record's second (13:19:05+02:00 = 11:19:05Z) above its id ...
    within = dict(sent["w0"])
    assert within["filter[>=DATE_MODIFY]"] == "2024-08-16T11:19:05+00:00"
    assert within["filter[<DATE_MODIFY]"] == "2024-08-16T11:19:06+00:00"
    assert within["filter[>ID]"] == "75"
    # ... then everything from the next second on, paged by start.
    later = dict(sent["a48"])
    assert later["filter[>=DATE_MODIFY]"] == "2024-08-16T11:19:06+00:00"
    assert later["start"] == str(48 * 50)


def test_an_incremental_read_asks_from_the_second_of_since(
    rsps: responses.RequestsMock, portal: str
) -> None:
    call = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({}))
    connector, _ = make(portal)
    since = datetime(2024, 8, 16, 11, 19, 5, 750_000, tzinfo=UTC)
    page = connector.read_changes("contacts", since, None, ["NAME"])
    assert page.records == []
    within = dict(commands(call.calls[0].request)["w0"])
    assert within["filter[>=DATE_MODIFY]"] == "2024-08-16T11:19:05+00:00"
    assert within["filter[>ID]"] == "0"


def test_multifields_show_as_their_first_value_and_mobile_apart(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer({"a0": CONTACT_ROWS}, total={"a0": 2}),
    )
    connector, _ = make(portal)
    page = connector.read_changes(
        "contacts", None, None, ["EMAIL", "PHONE", "PHONE_MOBILE", "COMPANY_ID"]
    )
    ivan, anastasia = page.records
    assert ivan.fields == {
        "EMAIL": "ivan@example.com",
        "PHONE": "+7 495 000-11-22",
        "PHONE_MOBILE": "+7 999 000-11-22",
        "COMPANY_ID": None,  # "0": no company
    }
    assert anastasia.fields == {
        "EMAIL": None,
        "PHONE": None,
        "PHONE_MOBILE": None,
        "COMPANY_ID": "12",
    }


def test_a_crowded_second_is_finished_before_moving_on(
    rsps: responses.RequestsMock, portal: str
) -> None:
    same = [
        {"ID": str(100 + n), "DATE_MODIFY": "2024-08-16T13:00:00+03:00", "NAME": "N"}
        for n in range(50)
    ]
    rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer({"w0": same, "a0": CONTACT_ROWS}, following={"w0": 50}),
    )
    connector, _ = make(portal)
    start = datetime(2024, 8, 16, 10, 0, tzinfo=UTC)
    page = connector.read_changes("contacts", start, None, ["NAME"])
    # The later second's rows are not handed out before the crowded one is done.
    assert [r.id for r in page.records] == [row["ID"] for row in same]
    assert page.next_token
    call = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({}))
    connector.read_changes("contacts", start, page.next_token, ["NAME"])
    sent = commands(call.calls[0].request)
    assert sorted(sent) == sorted(f"w{n}" for n in range(50))
    assert dict(sent["w7"])["filter[>ID]"] == "149"


def test_deal_contacts_are_read_through_the_binding_api(
    rsps: responses.RequestsMock, portal: str
) -> None:
    deal = sample("bitrix24-crm-deal-list")["result"][0]
    deal = {**deal, "DATE_MODIFY": deal["DATE_CREATE"], "COMPANY_ID": "7"}
    rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"a0": [deal]}, total={"a0": 1}))
    bindings = sample("bitrix24-crm-deal-contact-items-get")["result"]
    items = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": bindings}))
    connector, _ = make(portal)
    page = connector.read_changes("deals", None, None, ["TITLE", "COMPANY_ID", "CONTACT_IDS"])
    [record] = page.records
    assert record.fields["CONTACT_IDS"] == ["55", "54", "56"]  # primary first, then by SORT
    assert record.fields["COMPANY_ID"] == "7"
    assert commands(items.calls[0].request)["c0"] == [
        ("method", "crm.deal.contact.items.get"),
        ("id", "37"),
    ]
    sent_select = [v for k, v in commands(rsps.calls[0].request)["a0"] if k.startswith("select")]
    assert "CONTACT_IDS" not in sent_select  # lists cannot return it


def test_read_by_id_asks_with_an_in_filter_and_omits_missing(
    rsps: responses.RequestsMock, portal: str
) -> None:
    call = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": CONTACT_ROWS[:1]}))
    connector, _ = make(portal)
    found = connector.read("contacts", ["73", "999"], ["NAME"])
    assert [r.id for r in found] == ["73"]
    sent = dict(commands(call.calls[0].request)["c0"])
    assert sent["filter[@ID][0]"] == "73"
    assert sent["filter[@ID][1]"] == "999"


def test_list_ids_stops_before_a_count_that_dropped(
    rsps: responses.RequestsMock, portal: str
) -> None:
    page0 = [{"ID": str(n)} for n in range(1, 51)]
    page1 = [{"ID": str(n)} for n in range(52, 102)]
    call = rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer(
            {"c0": page0, "c1": page1},
            total={"c0": 3000, "c1": 2999},
            following={"c0": 50, "c1": 100},
        ),
    )
    connector, _ = make(portal)
    ids, token = connector.list_ids("contacts", None)
    # A delete during the batch shifted c1's offset (id 51 may be live and skipped): cut there.
    assert ids == [str(n) for n in range(1, 51)]
    assert token
    sent = dict(commands(call.calls[0].request)["c0"])
    assert sent["select[0]"] == "ID"
    assert sent["filter[>ID]"] == "0"
    follow = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": []}, total={"c0": 0}))
    assert connector.list_ids("contacts", token) == ([], None)
    assert dict(commands(follow.calls[0].request)["c0"])["filter[>ID]"] == "50"


# ------------------------------------------------------------------------------------ auth


def test_an_expired_token_is_refreshed_and_the_rotated_refresh_token_kept(
    rsps: responses.RequestsMock, portal: str
) -> None:
    refreshed = sample("bitrix24-oauth-token-refresh")
    expired = {
        "error": "expired_token",
        "error_description": "The access token provided has expired.",
    }
    rsps.post(
        f"{portal}/rest/batch.json",
        status=401,
        json=expired,
        match=[matchers.query_param_matcher({"auth": ACCESS})],
    )
    rsps.get(
        f"{portal}/oauth/token/",
        json=refreshed,
        match=[
            matchers.query_param_matcher(
                {
                    "grant_type": "refresh_token",
                    "client_id": "local.65f0a1.12345678",
                    "client_secret": SECRET,
                    "refresh_token": REFRESH,
                }
            )
        ],
    )
    rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer({"a0": CONTACT_ROWS}),
        match=[matchers.query_param_matcher({"auth": refreshed["access_token"]})],
    )
    connector, _ = make(portal)
    assert len(connector.read_changes("contacts", None, None, ["NAME"]).records) == 2

    # The next refresh presents the refresh token Bitrix24 handed back, not the configured one.
    rsps.post(f"{portal}/rest/batch.json", status=401, json=expired)
    rsps.get(
        f"{portal}/oauth/token/",
        json={**refreshed, "access_token": "third-access-token"},
        match=[
            matchers.query_param_matcher(
                {"refresh_token": refreshed["refresh_token"]}, strict_match=False
            )
        ],
    )
    rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer({"a0": []}),
        match=[matchers.query_param_matcher({"auth": "third-access-token"})],
    )
    connector.read_changes("contacts", None, None, ["NAME"])


def test_a_refused_refresh_is_an_auth_error_naming_no_secret(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json",
        status=401,
        json={
            "error": "invalid_token",
            "error_description": "The access token provided is invalid.",
        },
    )
    rsps.get(
        f"{portal}/oauth/token/",
        status=400,
        json={"error": "invalid_grant", "error_description": f"Invalid refresh token {REFRESH}"},
    )
    connector, _ = make(portal)
    with pytest.raises(AuthError) as raised:
        connector.check()
    text = str(raised.value)
    assert "invalid_grant" in text
    assert REFRESH not in text
    assert SECRET not in text
    assert ACCESS not in text


def test_a_refused_webhook_is_an_auth_error_without_its_code(
    rsps: responses.RequestsMock, portal: str
) -> None:
    url = f"{portal}/rest/1/{WEBHOOK_CODE}"
    rsps.post(
        f"{url}/batch.json",
        status=401,
        json={
            "error": "NO_AUTH_FOUND",
            "error_description": f"Wrong authorization data /rest/1/{WEBHOOK_CODE}/",
        },
    )
    connector = Bitrix24Connector("b24", {"webhook_url": f"{url}/"})
    with pytest.raises(AuthError) as raised:
        connector.check()
    assert WEBHOOK_CODE not in str(raised.value)
    assert "webhook" in str(raised.value)
    assert auth_of(rsps.calls[0].request) is None  # a webhook sends no auth parameter


def test_a_server_error_through_a_webhook_names_no_code(
    rsps: responses.RequestsMock, portal: str
) -> None:
    url = f"{portal}/rest/1/{WEBHOOK_CODE}"
    rsps.post(
        f"{url}/batch.json",
        status=500,
        json={"error": "INTERNAL_SERVER_ERROR", "error_description": f"failed at {url}/batch.json"},
    )
    connector = Bitrix24Connector("b24", {"webhook_url": f"{url}/"}, sleep=Sleeps())
    with pytest.raises(TransientError) as raised:
        connector.create("companies", [{"TITLE": "Acme"}])
    assert WEBHOOK_CODE not in str(raised.value)
    assert len(rsps.calls) == 1  # a write that may have happened is not sent again


# ------------------------------------------------------------------------------------ limits


def test_query_limit_exceeded_is_backed_off_and_retried(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json", status=503, json=sample("bitrix24-error-query-limit-exceeded")
    )
    rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"a0": CONTACT_ROWS}))
    connector, sleeps = make(portal)
    page = connector.read_changes("contacts", None, None, ["NAME"])
    assert len(page.records) == 2
    assert sleeps == [1.0]  # two requests' worth of the bucket's drain at 2 a second


def test_operation_time_limit_is_backed_off_even_for_a_write(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json", status=429, json=sample("bitrix24-error-operation-time-limit")
    )
    rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": True}))
    connector, sleeps = make(portal)
    [result] = connector.delete("companies", ["5"])
    assert result.ok
    assert len(sleeps) == 1


def test_throttling_that_never_ends_surfaces_as_rate_limited(
    rsps: responses.RequestsMock, portal: str
) -> None:
    for _ in range(5):
        rsps.post(
            f"{portal}/rest/batch.json",
            status=503,
            json=sample("bitrix24-error-query-limit-exceeded"),
        )
    connector, sleeps = make(portal)
    with pytest.raises(RateLimited, match="QUERY_LIMIT_EXCEEDED"):
        connector.read_changes("contacts", None, None, ["NAME"])
    assert len(sleeps) == 4


# ------------------------------------------------------------------------------------ headroom


def with_operating(
    answer: dict[str, Any], batch: float, commands: Mapping[str, float], reset_at: int
) -> dict[str, Any]:
    """``answer`` with Bitrix24's operating figures in its ``time`` and each ``result_time``."""
    recorded = sample("bitrix24-batch-real-list-empty")["time"]
    answer["time"] = {**recorded, "operating": batch, "operating_reset_at": reset_at}
    answer["result"]["result_time"] = {
        key: {**recorded, "operating": used, "operating_reset_at": reset_at}
        for key, used in commands.items()
    }
    return answer


RESET_AT = 1_717_000_000  # 2024-05-29T16:26:40Z


def test_headroom_is_the_method_nearest_its_operating_limit(
    rsps: responses.RequestsMock, portal: str
) -> None:
    batch = f"{portal}/rest/batch.json"
    rsps.post(batch, json=with_operating(batch_answer({"c0": []}), 0.4, {"c0": 312.25}, RESET_AT))
    deals = batch_answer({f"a{n}": [] for n in range(4)}, total={"a0": 0})
    # Several commands of one method: each reports the method's running sum, the last the most.
    running = {"a0": 38.0, "a1": 39.5, "a2": 40.25, "a3": 41.0}
    rsps.post(batch, json=with_operating(deals, 0.4, running, RESET_AT + 60))
    rsps.post(batch, json=with_operating(batch_answer({"c0": []}), 0.4, {"c0": 12.5}, RESET_AT))
    connector, _ = make(portal)
    assert isinstance(connector, ReportsHeadroom)

    connector.check()
    after_contacts = connector.headroom()
    connector.read_changes("deals", None, None, ["TITLE"])
    after_deals = connector.headroom()
    connector.check()  # crm.contact.list's budget has drained since: crm.deal.list is nearest

    assert after_contacts == {
        "operating": {
            "used": 312.25,
            "limit": 480,
            "unit": "seconds",
            "window": "10min",
            "scope": "crm.contact.list",
            "resets_at": "2024-05-29T16:26:40+00:00",
        }
    }
    assert after_deals["operating"]["scope"] == "crm.contact.list"
    assert connector.headroom()["operating"] == {
        "used": 41.0,
        "limit": 480,
        "unit": "seconds",
        "window": "10min",
        "scope": "crm.deal.list",
        "resets_at": "2024-05-29T16:27:40+00:00",
    }


def test_a_portal_whose_answers_carry_no_operating_time_reports_no_headroom(
    rsps: responses.RequestsMock, portal: str
) -> None:
    # A self-hosted portal with its limiter off: ``time`` without the operating figures.
    answer = batch_answer({"c0": []})
    answer["time"] = {k: v for k, v in answer["time"].items() if not k.startswith("operating")}
    rsps.post(f"{portal}/rest/batch.json", json=answer)
    connector, _ = make(portal)

    connector.check()

    assert connector.headroom() == {}


# ------------------------------------------------------------------------------------ writes


def test_creates_look_for_the_email_first_and_report_each_record(
    rsps: responses.RequestsMock, portal: str
) -> None:
    lookup = rsps.post(
        f"{portal}/rest/batch.json", json=batch_answer({"c0": [], "c1": [], "c2": []})
    )
    real = sample("bitrix24-batch-real-contact-add")["result"]
    added = rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer(
            {"c0": real["result"]["order0000000000"], "c2": 58944},
            errors={
                "c1": {"error": "", "error_description": "Invalid e-mail address: not-an-email<br>"}
            },
        ),
    )
    connector, _ = make(portal)
    results = connector.create(
        "contacts",
        [
            {"NAME": "Ada", "EMAIL": "ada@example.com", "PHONE": "+44 20 7946 0000"},
            {"NAME": "Bad", "EMAIL": "not-an-email"},
            {"NAME": "Cy", "EMAIL": "cy@example.com", "POST": None},
        ],
    )
    assert [r.remote_id for r in results] == ["58943", None, "58944"]
    error = results[1].error
    assert isinstance(error, RecordRejected)
    assert error.field == "EMAIL"
    assert error.system == "b24"
    assert "not-an-email" in str(error)
    assert "<br>" not in str(error)

    asked = commands(lookup.calls[0].request)
    assert asked["c0"] == [
        ("method", "crm.duplicate.findbycomm"),
        ("entity_type", "CONTACT"),
        ("type", "EMAIL"),
        ("values[0]", "ada@example.com"),
    ]
    sent = commands(added.calls[0].request)
    assert sent["c0"] == [
        ("method", "crm.contact.add"),
        ("fields[NAME]", "Ada"),
        ("fields[EMAIL][0][VALUE]", "ada@example.com"),
        ("fields[EMAIL][0][VALUE_TYPE]", "WORK"),
        ("fields[PHONE][0][VALUE]", "+44 20 7946 0000"),
        ("fields[PHONE][0][VALUE_TYPE]", "WORK"),
        ("params[REGISTER_SONET_EVENT]", "N"),
    ]
    assert ("fields[POST]", "") in sent["c2"]  # None clears


def test_a_create_whose_email_exists_updates_that_contact(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": {"CONTACT": [73, 80]}}))
    rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": CONTACT_ROWS[:1]}))
    updated = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"u0": True}))
    connector, _ = make(portal)
    [result] = connector.create("contacts", [{"NAME": "Ivan", "EMAIL": "IVAN@example.com"}])
    assert result.remote_id == "73"
    sent = commands(updated.calls[0].request)
    assert list(sent) == ["u0"]
    assert dict(sent["u0"])["method"] == "crm.contact.update"
    assert ("fields[EMAIL][0][ID]", "213") in sent["u0"]


def test_an_update_rewrites_multifield_items_by_id_instead_of_appending(
    rsps: responses.RequestsMock, portal: str
) -> None:
    current = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": CONTACT_ROWS}))
    updated = rsps.post(
        f"{portal}/rest/batch.json",
        json=batch_answer(
            {"u0": True},
            errors={"u1": sample("bitrix24-error-id-invalid") | {"error_description": "Not found"}},
        ),
    )
    connector, _ = make(portal)
    results = connector.update(
        "contacts",
        [
            ("73", {"PHONE": "+7 495 111-22-33", "PHONE_MOBILE": None, "EMAIL": "new@example.com"}),
            ("75", {"PHONE": "+7 812 000-00-00"}),
        ],
    )
    assert results[0].ok
    assert results[0].remote_id == "73"
    assert not results[1].ok
    assert "Not found" in str(results[1].error)
    asked = dict(commands(current.calls[0].request)["c0"])
    assert asked["select[1]"] == "EMAIL"
    assert asked["select[2]"] == "PHONE"
    sent = commands(updated.calls[0].request)
    assert sent["u0"] == [
        ("method", "crm.contact.update"),
        ("id", "73"),
        ("fields[PHONE][0][ID]", "302"),
        ("fields[PHONE][0][VALUE]", "+7 495 111-22-33"),
        ("fields[PHONE][0][VALUE_TYPE]", "WORK"),
        ("fields[PHONE][1][ID]", "301"),
        ("fields[PHONE][1][DELETE]", "Y"),
        ("fields[EMAIL][0][ID]", "213"),
        ("fields[EMAIL][0][VALUE]", "new@example.com"),
        ("fields[EMAIL][0][VALUE_TYPE]", "WORK"),
        ("params[REGISTER_SONET_EVENT]", "N"),
        ("params[REGISTER_HISTORY_EVENT]", "N"),
    ]
    # A contact with no phone yet gets one added (no ID: the only time an item is appended).
    assert ("fields[PHONE][0][VALUE]", "+7 812 000-00-00") in sent["u1"]
    assert not any(key.endswith("[ID]") for key, _ in sent["u1"])


def test_deal_contacts_are_set_on_update_and_cleared_with_items_delete(
    rsps: responses.RequestsMock, portal: str
) -> None:
    call = rsps.post(
        f"{portal}/rest/batch.json", json=batch_answer({"u0": True, "b0": True, "b1": True})
    )
    connector, _ = make(portal)
    results = connector.update(
        "deals",
        [("37", {"TITLE": "Renewal", "CONTACT_IDS": ["54", "55"]}), ("38", {"CONTACT_IDS": []})],
    )
    assert [r.ok for r in results] == [True, True]
    sent = commands(call.calls[0].request)
    assert sent["b0"] == [
        ("method", "crm.deal.contact.items.set"),
        ("id", "37"),
        ("items[0][CONTACT_ID]", "54"),
        ("items[0][SORT]", "10"),
        ("items[0][IS_PRIMARY]", "Y"),
        ("items[1][CONTACT_ID]", "55"),
        ("items[1][SORT]", "20"),
        ("items[1][IS_PRIMARY]", "N"),
    ]
    assert sent["b1"] == [("method", "crm.deal.contact.items.delete"), ("id", "38")]
    assert "u1" not in sent  # nothing but the contacts changed on deal 38


def test_deal_contacts_go_with_the_add(rsps: responses.RequestsMock, portal: str) -> None:
    call = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c0": 90}))
    connector, _ = make(portal)
    [result] = connector.create(
        "deals", [{"TITLE": "Pilot", "CONTACT_IDS": ["54", "55"], "COMPANY_ID": "7"}]
    )
    assert result.remote_id == "90"
    sent = commands(call.calls[0].request)["c0"]
    assert ("fields[CONTACT_IDS][0]", "54") in sent
    assert ("fields[CONTACT_IDS][1]", "55") in sent
    assert ("fields[COMPANY_ID]", "7") in sent


def test_errors_keyed_by_number_come_back_as_a_list_and_are_still_read(
    rsps: responses.RequestsMock, portal: str
) -> None:
    # PHP turns a map keyed 0..n into a JSON list (the real capture): read positionally.
    rsps.post(f"{portal}/rest/batch.json", json=sample("bitrix24-batch-real-errors-as-list"))
    connector, _ = make(portal)
    with pytest.raises(VendorError, match="ID is not defined or invalid"):
        connector.check()


def test_more_than_fifty_writes_take_two_batches(rsps: responses.RequestsMock, portal: str) -> None:
    first = rsps.post(
        f"{portal}/rest/batch.json", json=batch_answer({f"c{n}": True for n in range(50)})
    )
    second = rsps.post(f"{portal}/rest/batch.json", json=batch_answer({"c50": True}))
    connector, _ = make(portal)
    results = connector.delete("companies", [str(n) for n in range(1, 52)])
    assert all(r.ok for r in results)
    assert len(results) == 51
    assert len(commands(first.calls[0].request)) == 50
    assert list(commands(second.calls[0].request)) == ["c50"]


# ------------------------------------------------------------------------------------ wire


def test_php_query_strings_round_trip() -> None:
    params = {
        "filter": {">=DATE_MODIFY": "2024-01-02T03:04:05+03:00", "@ID": [1, 2]},
        "select": ["ID", "EMAIL"],
        "fields": {"EMAIL": [{"ID": "5", "DELETE": "Y"}], "POST": None},
    }
    text = build_query(params)
    assert "%3E%3DDATE_MODIFY" in text  # the operator survives URL encoding
    assert parse_query(text) == {
        "filter": {">=DATE_MODIFY": "2024-01-02T03:04:05+03:00", "@ID": ["1", "2"]},
        "select": ["ID", "EMAIL"],
        "fields": {"EMAIL": [{"ID": "5", "DELETE": "Y"}], "POST": ""},
    }


def test_a_revoked_refresh_token_names_the_setting_to_replace(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json",
        status=401,
        json={
            "error": "invalid_token",
            "error_description": "The access token provided is invalid.",
        },
    )
    rsps.get(
        f"{portal}/oauth/token/",
        status=400,
        json={"error": "invalid_grant", "error_description": "Invalid refresh token"},
    )
    connector, _ = make(portal)

    with pytest.raises(AuthError) as raised:
        connector.check()

    text = str(raised.value)
    assert text.startswith("b24: GET /oauth/token/: the refresh token was refused (HTTP 400")
    assert "set systems.b24.refresh_token" in text
    assert raised.value.exit_code == 3


def test_a_refused_client_names_the_client_settings_only(
    rsps: responses.RequestsMock, portal: str
) -> None:
    rsps.post(
        f"{portal}/rest/batch.json",
        status=401,
        json={
            "error": "expired_token",
            "error_description": "The access token provided has expired.",
        },
    )
    rsps.get(
        f"{portal}/oauth/token/",
        status=401,
        json={"error": "invalid_client", "error_description": "Invalid client credentials"},
    )
    connector, _ = make(portal)

    with pytest.raises(AuthError) as raised:
        connector.check()

    text = str(raised.value)
    assert "set systems.b24.client_id and systems.b24.client_secret" in text
    assert "refresh_token" not in text


def test_a_refused_webhook_names_the_setting_to_replace(
    rsps: responses.RequestsMock, portal: str
) -> None:
    url = f"{portal}/rest/1/{WEBHOOK_CODE}"
    rsps.post(
        f"{url}/batch.json",
        status=401,
        json={"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"},
    )
    connector = Bitrix24Connector("b24", {"webhook_url": f"{url}/"})

    with pytest.raises(AuthError) as raised:
        connector.check()

    assert str(raised.value).endswith("set systems.b24.webhook_url to its URL")
