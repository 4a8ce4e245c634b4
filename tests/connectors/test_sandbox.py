"""The shared sandbox machinery: serving, faults, bookkeeping; and the shared sample data."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import phonenumbers
import pytest
import requests

from connectors.errors import ConnectorConfigError
from connectors.sampledata import CONTACTS_PER_COMPANY, CONTACTS_PER_DEAL, sample_account
from connectors.sandbox import (
    ApiRequest,
    ApiResponse,
    Fault,
    RollingWindow,
    Sandbox,
    SandboxOptions,
    TokenIssuer,
    json_response,
    load_sandbox,
)


class EchoApi:
    """A minimal vendor: echoes the request; ``/boom`` is an emulator bug."""

    vendor: ClassVar[str] = "echo"

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.handled = 0

    def handle(self, request: ApiRequest) -> ApiResponse:
        if request.path == "/boom":
            raise RuntimeError("emulator bug")
        self.handled += 1
        body = request.json() if request.body else None
        return json_response(
            200, {"path": request.path, "q": request.arg("q"), "body": body, "n": "x" * 200}
        )

    def fault_response(self, fault: Fault, request: ApiRequest) -> ApiResponse:
        if fault is Fault.RATE_LIMIT:
            return json_response(429, {"error": "slow down"}, {"Retry-After": "1"})
        return json_response(503, {"error": "vendor down"})

    def connector_settings(self, base_url: str) -> dict[str, Any]:
        return {"connector": "echo", "base_url": base_url}

    def expire_tokens(self) -> None: ...

    def revoke_credentials(self) -> None: ...

    def seed_records(self, contacts: int, seed: int) -> None: ...

    def insert(self, object_type: str, fields: Mapping[str, Any]) -> str:
        return "1"

    def modify(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None: ...

    def remove(self, object_type: str, record_id: str) -> None: ...

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        return {}


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, EchoApi]]:
    api = EchoApi()
    with Sandbox(api, SandboxOptions(stall_seconds=1.0)) as sandbox:
        yield sandbox, api


def test_serves_the_vendor_on_loopback_with_keep_alive(served: tuple[Sandbox, EchoApi]) -> None:
    sandbox, _ = served
    assert sandbox.url.startswith("http://127.0.0.1:")
    with requests.Session() as session:
        first = session.post(f"{sandbox.url}/a?q=1", json={"k": "v"}, timeout=5)
        second = session.get(f"{sandbox.url}/b", timeout=5)
    assert first.json()["body"] == {"k": "v"}
    assert first.json()["q"] == "1"
    assert second.status_code == 200
    assert sandbox.calls.total == 2
    assert sandbox.calls.count("POST", "/a") == 1
    assert sandbox.calls.by_status[200] == 2


@pytest.mark.parametrize(
    ("fault", "status"), [(Fault.SERVER_ERROR, 503), (Fault.RATE_LIMIT, 429), (Fault.HTML, 502)]
)
def test_answer_faults_replace_the_answer_and_leave_the_account_alone(
    served: tuple[Sandbox, EchoApi], fault: Fault, status: int
) -> None:
    sandbox, api = served
    sandbox.inject(fault)
    faulted = requests.get(f"{sandbox.url}/x", timeout=5)
    assert faulted.status_code == status
    assert api.handled == 0
    assert requests.get(f"{sandbox.url}/x", timeout=5).status_code == 200
    assert sandbox.calls.faults[fault.value] == 1


def test_a_reset_drops_the_connection_without_an_answer(served: tuple[Sandbox, EchoApi]) -> None:
    sandbox, api = served
    sandbox.inject(Fault.RESET)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.url}/x", timeout=5)
    assert api.handled == 0


def test_a_truncated_answer_is_malformed_json(served: tuple[Sandbox, EchoApi]) -> None:
    sandbox, _ = served
    sandbox.inject(Fault.TRUNCATED)
    answer = requests.get(f"{sandbox.url}/x", timeout=5)
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.text)


def test_a_stall_outlasts_a_short_read_timeout(served: tuple[Sandbox, EchoApi]) -> None:
    sandbox, _ = served
    sandbox.inject(Fault.STALL)
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{sandbox.url}/x", timeout=(2, 0.3))


def test_scripted_faults_match_a_path_prefix(served: tuple[Sandbox, EchoApi]) -> None:
    sandbox, _ = served
    sandbox.inject(Fault.SERVER_ERROR, times=2, path="/pages")
    assert requests.get(f"{sandbox.url}/other", timeout=5).status_code == 200
    assert requests.get(f"{sandbox.url}/pages/1", timeout=5).status_code == 503
    assert requests.get(f"{sandbox.url}/pages/2", timeout=5).status_code == 503
    assert requests.get(f"{sandbox.url}/pages/3", timeout=5).status_code == 200


def test_random_faults_follow_the_rate_and_the_seed() -> None:
    def faults_seen(seed: int) -> list[int]:
        with Sandbox(EchoApi(), SandboxOptions(fault_rate=0.3, seed=seed)) as sandbox:
            statuses = []
            for _ in range(60):
                try:
                    statuses.append(requests.get(f"{sandbox.url}/x", timeout=5).status_code)
                except requests.ConnectionError:
                    statuses.append(0)
            return statuses

    first, again = faults_seen(7), faults_seen(7)
    assert first == again
    healthy = first.count(200)
    assert 25 <= healthy <= 55  # 30% faults, and a truncated answer still says 200


def test_an_emulator_bug_is_a_vendor_shaped_500_not_a_hang(
    served: tuple[Sandbox, EchoApi], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, _ = served
    answer = requests.get(f"{sandbox.url}/boom", timeout=5)
    assert answer.status_code == 503
    assert answer.json() == {"error": "vendor down"}
    assert "emulator bug" in caplog.text


def test_latency_is_added_to_every_answer() -> None:
    with Sandbox(EchoApi(), SandboxOptions(latency_ms=80)) as sandbox:
        answer = requests.get(f"{sandbox.url}/x", timeout=5)
    assert answer.elapsed.total_seconds() >= 0.08


def test_options_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="fault rate"):
        SandboxOptions(fault_rate=1.5)
    with pytest.raises(ValueError, match="rate limit"):
        SandboxOptions(rate_limit=0)
    with pytest.raises(ValueError, match="records"):
        SandboxOptions(records=-1)


def test_an_unknown_vendor_names_the_known_ones() -> None:
    with pytest.raises(ConnectorConfigError, match="hubspot"):
        load_sandbox("nosuchcrm")


def test_rolling_window_counts_a_rolling_window() -> None:
    now = [0.0]
    window = RollingWindow(3, 10.0, clock=lambda: now[0])
    assert window.hit()
    now[0] = 4.0
    assert [window.hit() for _ in range(3)] == [True, True, False]
    assert window.remaining() == 0
    assert window.retry_after() == pytest.approx(6.0)
    now[0] = 10.0  # the first call has left the window, the two at 4 s have not
    assert window.remaining() == 1
    assert window.hit()
    assert not window.hit()


def test_tokens_expire_on_time_and_on_demand() -> None:
    now = [0.0]
    issuer = TokenIssuer("tok-", ttl=60, clock=lambda: now[0])
    token = issuer.issue()
    assert token.startswith("tok-")
    assert issuer.check(token) == "valid"
    assert issuer.check("tok-forged") == "unknown"
    now[0] = 61
    assert issuer.check(token) == "expired"
    fresh = issuer.issue()
    issuer.expire_all()
    assert issuer.check(fresh) == "expired"


def test_revoked_tokens_stay_refused_and_later_ones_are_valid() -> None:
    issuer = TokenIssuer("tok-", ttl=60)
    before = issuer.issue()
    issuer.revoke_all()
    after = issuer.issue()
    assert issuer.check(before) == "revoked"
    assert issuer.check(after) == "valid"
    issuer.expire_all()
    assert issuer.check(before) == "revoked"
    assert issuer.check(after) == "expired"


# ------------------------------------------------------------------------------ sample data


def test_sample_accounts_overlap_on_the_same_people() -> None:
    left = sample_account(1000, seed=4)
    right = sample_account(1000, seed=4, start=800)
    shared = {c.email for c in left.contacts} & {c.email for c in right.contacts}
    assert len(shared) == 200
    by_email = {c.email: c for c in right.contacts}
    for person in left.contacts[800:]:
        assert by_email[person.email] == person


def test_sample_accounts_have_their_companies_and_deals() -> None:
    account = sample_account(500, seed=1)
    assert len(account.companies) == 500 // CONTACTS_PER_COMPANY
    assert len(account.deals) == 500 // CONTACTS_PER_DEAL
    company_keys = {company.key for company in account.companies}
    contact_keys = {person.key for person in account.contacts}
    assert all(person.company_key in company_keys for person in account.contacts)
    for deal in account.deals:
        assert deal.company_key in company_keys
        assert set(deal.contact_keys) <= contact_keys
    assert len({c.email for c in account.contacts}) == 500
    assert len({c.name for c in account.companies}) == len(account.companies)


def test_sample_phones_are_valid_numbers() -> None:
    account = sample_account(2000, seed=9)
    numbers = [c.phone for c in account.contacts] + [c.phone for c in account.companies]
    numbers += [c.mobile for c in account.contacts if c.mobile]
    invalid = [n for n in numbers if not phonenumbers.is_valid_number(phonenumbers.parse(n))]
    assert invalid == []
