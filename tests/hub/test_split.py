"""Split runs: a large first sync decided by its run, its writes sent by worker tasks and the run.

What a user notices: every record arrives exactly once in every system, whichever worker sent
it, with its references; the run's report and audit log count every write its workers made;
and a run or worker that dies mid-way leaves nothing undone or done twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

import hub.engine
from connectors.memory.connector import MemoryConnector, MemorySettings
from hub import store
from hub.engine import LEASE_TTL, SyncEngine, SystemRuntime, _page_from_row, _page_row
from hub.report import RunReport
from hub.spool import Staged
from hub.tables import audit_entries, pending_writes, split_pages
from tests.hub.harness import Harness

Helper = Callable[[Harness, str, int, str], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Killed(BaseException):
    """Stands for the process dying: not an error the engine may catch."""


def account(h: Harness) -> None:
    """30 companies and 100 people in a, 20 people in b of whom 10 are also in a."""
    companies = [h.add("a", "companies", name=f"Co {i}", domain=f"co{i}.com") for i in range(30)]
    for i in range(100):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com", company_id=companies[i % 30])
    for i in range(90, 110):
        h.add("b", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")


def split_engine(h: Harness, helper: Helper | None, **options: object) -> SyncEngine:
    """The run as a worker runs it: ``helper`` stands for the worker tasks it starts."""
    started: list[str] = []

    def splitter(object_type: str, run_id: int, owner: str) -> None:
        started.append(object_type)
        if helper is not None:
            helper(h, object_type, run_id, owner)

    engine = h.engine(splitter=splitter, split_min_records=25, **options)
    engine.started = started  # type: ignore[attr-defined]
    return engine


def worker_engine(h: Harness, owner: str, **options: object) -> SyncEngine:
    """An engine as a worker task builds one: its own connectors to the same vendors."""
    settings = MemorySettings(page_size=100)
    runtimes = [
        SystemRuntime(name, mode, MemoryConnector(name, settings, store=h.stores[name]), map_)
        for (name, mode), map_ in zip(h.modes.items(), h.fieldmaps.values(), strict=True)
    ]
    return SyncEngine(
        h.db, h.spec, runtimes, clock=h.clock, page_size=h.page_size, owner=owner, **options
    )


class Workers:
    """Worker tasks on threads of their own, each sending about ``pages`` pages of 20 and
    then stopping (their queue is shut down)."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.threads: list[threading.Thread] = []
        self.reports: list[RunReport] = []
        self.errors: list[BaseException] = []

    def __call__(self, h: Harness, object_type: str, run_id: int, owner: str) -> None:
        engine = worker_engine(h, owner, should_stop=lambda: self.enough(engine))

        def work() -> None:
            try:
                self.reports.append(engine.help(object_type, run_id))
            except BaseException as exc:
                self.errors.append(exc)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        self.threads.append(thread)

    def enough(self, engine: SyncEngine) -> bool:
        sent = engine.helping
        return sent is not None and sent.writes >= self.pages * 20

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a worker task never ended"
        assert self.errors == []


def assert_converged(h: Harness) -> None:
    a, b = h.records("a", "contacts"), h.records("b", "contacts")
    for records in (a, b):
        emails = Counter(r["email"] for r in records)
        assert set(emails) == {f"p{i}@x.com" for i in range(110)}
        assert max(emails.values()) == 1  # nobody twice
    assert {r["name"] for r in h.records("b", "companies")} == {f"Co {i}" for i in range(30)}
    # References arrived too: each of b's copies names b's copy of its company.
    b_companies = {r.id: r.fields["name"] for r in h.stores["b"].all("companies")}
    for i in range(90):
        person = h.by("b", "contacts", "email", f"p{i}@x.com")
        assert b_companies[person["company_id"]] == f"Co {i % 30}"


def creates_in_audit(db: Engine) -> Counter[str]:
    with db.connect() as conn:
        rows = conn.execute(
            select(
                audit_entries.c.system, audit_entries.c.object_type, audit_entries.c.remote_id
            ).where(audit_entries.c.action == "create")
        ).all()
    assert len(rows) == len(set(rows))  # one entry per record made
    return Counter(system for system, _, _ in rows)


def pending_rows(db: Engine) -> int:
    """Pages waiting for a worker, and intents waiting for a run."""
    with db.connect() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (split_pages, pending_writes)
        )


def first_page_taken_by_a_worker(db: Engine) -> Callable[[str, str, int, object], None]:
    """A progress callback that holds the run after its first page shared out of each object
    type until a worker task has claimed it: workers meet the run's pages in any order, but
    this test wants them to have sent some for certain."""

    def wait(phase: str, _: str, done: int, total: object) -> None:
        if not phase.endswith(":share") or done > 20:
            return
        object_type = phase.split(":")[0]
        for _ in range(1000):
            with db.connect() as conn:
                free, _held = store.split_outstanding(conn, "test", object_type, utc_now())
            if free == 0:
                return
            time.sleep(0.01)
        raise AssertionError("no worker task claimed the first page in 10 s")

    return wait


def test_workers_and_the_run_share_out_a_first_syncs_writes_and_each_record_arrives_once(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.engine, "SPLIT_POLL_SECONDS", 0.01)
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)
    workers = Workers(pages=2)
    engine = split_engine(h, workers, progress=first_page_taken_by_a_worker(db))

    report = engine.run()
    workers.join()

    assert engine.started == ["companies", "contacts"]  # type: ignore[attr-defined]
    assert_converged(h)
    # The worker tasks sent some pages, the run the rest; the run's report counts both.
    helped = sum(r.writes for r in workers.reports)
    assert 0 < helped < report.writes
    assert report.counts["companies"]["b"]["created"] == 30
    assert report.counts["contacts"]["b"]["created"] == 90
    assert report.counts["contacts"]["a"]["created"] == 10
    assert creates_in_audit(db) == {"b": 120, "a": 10}
    assert pending_rows(db) == 0
    assert report.exit_code == 0
    h.run_without_writes()


def test_a_sync_below_the_split_threshold_runs_as_ever(db: Engine) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    for i in range(10):
        h.add("a", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    engine = split_engine(h, None)
    engine.run()
    assert engine.started == []  # type: ignore[attr-defined]
    assert len(h.records("b", "contacts")) == 10


def test_a_split_run_that_dies_before_its_workers_send_anything_is_finished_by_the_next_run(
    db: Engine,
) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)

    def die_once_every_company_is_shared_out(phase: str, _: str, done: int, total: object) -> None:
        if phase == "companies:share" and done == total:
            raise Killed()

    with pytest.raises(Killed):
        split_engine(h, None, progress=die_once_every_company_is_shared_out).run()
    assert h.records("b", "companies") == []  # shared out, not yet decided
    assert pending_rows(db) > 0

    h.run()  # an ordinary run, in-process

    assert_converged(h)
    assert creates_in_audit(db) == {"b": 120, "a": 10}
    assert pending_rows(db) == 0


def owner_of_a_process_that_ended() -> str:
    code = "from hub.lease_owner import process_owner; print(process_owner())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_page_held_by_a_worker_that_died_is_sent_by_the_run(db: Engine) -> None:
    h = Harness(db, objects=("companies", "contacts"), page_size=20)
    account(h)
    dead = owner_of_a_process_that_ended()
    claimed: list[int] = []

    def worker_dies_holding_the_first_page(
        phase: str, system: str, done: int, total: object
    ) -> None:
        if not phase.endswith(":share") or done > 20:
            return
        object_type = phase.split(":")[0]
        with db.begin() as conn:
            claim = store.claim_split_page(conn, "test", object_type, dead, h.clock(), LEASE_TTL)
        assert claim is not None
        claimed.append(claim.id)

    report = split_engine(h, None, progress=worker_dies_holding_the_first_page).run()

    assert len(claimed) == 2  # one page of each object type
    assert_converged(h)
    assert report.counts["contacts"]["b"]["created"] == 90
    assert pending_rows(db) == 0


def test_a_worker_whose_claim_lapsed_cannot_take_its_page_back(db: Engine) -> None:
    h = Harness(db, objects=("contacts",), page_size=20)
    now = h.clock()
    page = {"records": [], "stale": [], "stampless": [], "minted": "x"}
    with db.begin() as conn:
        store.add_split_page(conn, "test", "contacts", 1, page, now)
        first = store.claim_split_page(conn, "test", "contacts", "slow-worker", now, LEASE_TTL)
        assert first is not None
        # Alive for all anyone knows, so no one else may take it while the claim holds...
        assert store.claim_split_page(conn, "test", "contacts", "other", now, LEASE_TTL) is None
        # ...and once it has lapsed, another worker does, and the first commits nothing of it.
        later = now + LEASE_TTL * 2
        second = store.claim_split_page(conn, "test", "contacts", "other", later, LEASE_TTL)
        assert second is not None
        assert second.page == page
        assert not store.take_split_page(conn, first.id, "slow-worker")
        assert store.take_split_page(conn, second.id, "other")


def test_a_shared_page_carries_what_the_run_knew_of_its_records_and_only_of_them() -> None:
    mine = Staged(1, "a", "7", utc_now(), {"email": "p@x.com"}, "h", "c1", True, False, "new")
    page = [("c1", [mine]), ("c2", [])]
    stale = {("c1", "b"): "create", ("c9", "b"): "create"}
    stampless = {("a", "7"), ("a", "99")}

    row = _page_row(page, ["a", "b"], stale, stampless)
    again, stale_again, stampless_again = _page_from_row(json.loads(json.dumps(row)))

    assert [cid for cid, _ in again] == ["c1", "c2"]
    assert again[0][1][0].values == {"email": "p@x.com"}
    assert again[0][1][0].modified_at == mine.modified_at
    assert stale_again == {("c1", "b"): "create"}
    assert stampless_again == {("a", "7")}
