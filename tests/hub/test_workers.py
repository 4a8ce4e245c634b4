"""``crmhub worker`` processes on a real broker and PostgreSQL, against the vendor sandboxes.

What an operator scaling out would notice: every sync converges whichever worker runs it, a sync
never runs twice at once, the workers together stay inside each vendor's rate limit, a worker
killed mid-run loses nothing and duplicates nothing, and a worker told to stop (SIGTERM) stops
its run after the page in hand. Each test runs on Redis and on RabbitMQ; all skip, saying why,
where a service is not running.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
import sqlalchemy as sa
import yaml

from connectors.sampledata import sample_account
from connectors.sandbox import Sandbox, SandboxOptions, load_sandbox
from hub.demo import seed_sandbox
from hub.tables import leases as leases_table
from hub.tables import runs as runs_table
from hub.workers import Outcome, create_app, enqueue, wait_for
from mappings.fieldmap import load_default_map
from tests.conftest import _POSTGRES_SKIP, POSTGRES_URL
from tests.hub.test_cli import cli, error_of
from tests.hub.test_cli import write_config as write_memory_config

pytestmark = pytest.mark.slow

CRMHUB = Path(sys.executable).parent / "crmhub"
REDIS_URL = "redis://127.0.0.1:6379/0"
BROKERS = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}
SEED = 7
PEOPLE = 20  # per source account: 2 companies, 4 deals
# Each client spends this share of its vendor's limit: three workers each on a budget of their
# own would spend 1.8 times the limit, while one shared budget leaves room for the calls no
# vendor meters (OAuth tokens, HubSpot's searches).
BUDGET_SHARE = 0.6
RESULT_TIMEOUT = 60.0


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def _skip_unless_running(*urls: str) -> None:
    if _POSTGRES_SKIP:
        pytest.skip(_POSTGRES_SKIP)
    for url in urls:
        if not _reachable(url):
            pytest.skip(f"no server at {url.split('@')[-1]}: start it to run the worker tests")


@pytest.fixture(params=list(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    url = BROKERS[request.param]
    _skip_unless_running(url, REDIS_URL)  # Redis holds the shared rate-limit budget too
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL schema, as a database URL for the config."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def queue(broker: str) -> Iterator[str]:
    """A queue of this test's own, so no other worker on the broker takes its tasks."""
    name = f"crmhub-test-{uuid.uuid4().hex[:8]}"
    yield name
    app = create_app(broker)
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(name)


# ---------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Limit:
    """A vendor's rate limit as its sandbox enforces it: ``amount`` calls in ``seconds``."""

    amount: int
    seconds: int


def vendor_limit(box: Sandbox) -> Limit:
    api: Any = box.api
    if box.vendor == "hubspot":
        return Limit(api.per_ten_seconds, 10)
    if box.vendor == "bitrix24":  # a leaky bucket: a burst, then its drain rate
        return Limit(int(api.burst + api.rate), 1)
    return Limit(api.window_limit, int(api.window_seconds))


def shared_budget(box: Sandbox) -> dict[str, Any]:
    """A system entry reaching the sandbox with a client budget of BUDGET_SHARE of its limit."""
    settings = box.connector_settings()
    api: Any = box.api
    if box.vendor == "hubspot":
        settings["requests_per_10s"] = int(api.per_ten_seconds * BUDGET_SHARE)
        settings["search_per_second"] = 1
    elif box.vendor == "bitrix24":
        settings["requests_per_second"] = api.rate * BUDGET_SHARE
        settings["burst"] = 1
    else:
        amount = int(api.window_limit * BUDGET_SHARE)
        settings["rate_limit"] = f"{amount} per {api.window_seconds:g} second"
    return settings


def write_config(
    folder: Path,
    database: str,
    broker: str,
    systems: dict[str, dict[str, Any]],
    syncs: dict[str, dict[str, Any]],
) -> Path:
    config = {
        "database": database,
        "broker": broker,
        # One line makes every worker spend one budget per vendor account.
        "rate_limit_storage": REDIS_URL,
        "systems": systems,
        "syncs": syncs,
    }
    path = folder / "crmhub.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def one_way(source: str, sink: str, objects: Sequence[str]) -> dict[str, Any]:
    return {
        "systems": {source: "read", sink: "write"},
        "objects": list(objects),
        "schedule": "1s",
    }


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def node(self) -> str:
        return f"crmhub-{self.process.pid}@{socket.gethostname()}"

    def said(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def workers(config: Path, broker: str, queue: str, count: int) -> Iterator[list[Worker]]:
    """``count`` ``crmhub worker`` processes on ``queue``, answering before this yields."""
    started = []
    for n in range(count):
        log = config.parent / f"worker-{n}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(CRMHUB), "worker", "--config", str(config), "--queues", queue],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(Worker(process, log))
    app = create_app(broker)
    try:
        wanted = {worker.node for worker in started}
        deadline = time.monotonic() + 30
        while True:
            answered = {node for reply in app.control.ping(timeout=0.5) for node in reply}
            if wanted <= answered:
                break
            for worker in started:
                assert worker.process.poll() is None, worker.said()
            assert time.monotonic() < deadline, f"workers not up in 30 s: {answered}"
        yield started
    finally:
        for worker in started:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in started:
            try:
                worker.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()


def writes(report: dict[str, Any]) -> int:
    return sum(
        counter.get(kind, 0)
        for systems in report["counts"].values()
        for counter in systems.values()
        for kind in ("created", "updated", "deleted")
    )


def run_spans(database: str) -> dict[str, list[tuple[Any, Any, str]]]:
    engine = sa.create_engine(database)
    query = sa.select(
        runs_table.c.sync, runs_table.c.started_at, runs_table.c.finished_at, runs_table.c.status
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    spans: dict[str, list[tuple[Any, Any, str]]] = {}
    for sync, started, finished, status in rows:
        spans.setdefault(sync, []).append((started, finished, status))
    return spans


def emails(box: Sandbox) -> list[str]:
    fieldmap = load_default_map(box.vendor)
    return sorted(
        fieldmap.to_canonical("contacts", fields)["email"]
        for fields in box.api.snapshot("contacts").values()
    )


@contextmanager
def sandboxes(
    rates: dict[str, float | None], latency_ms: dict[str, float] | None = None
) -> Iterator[dict[str, Sandbox]]:
    """Sandboxes allowing ``rates`` requests a second (None: the vendor's own budget), each
    answering after its ``latency_ms``."""
    boxes = {
        vendor: load_sandbox(
            vendor,
            SandboxOptions(
                seed=SEED, rate_limit=rate, latency_ms=(latency_ms or {}).get(vendor, 0.0)
            ),
        )
        for vendor, rate in rates.items()
    }
    for box in boxes.values():
        box.start()
    try:
        yield boxes
    finally:
        for box in boxes.values():
            box.stop()


# ------------------------------------------------------------------------------------ tests


def test_three_workers_run_ten_syncs_within_each_vendors_limit(
    tmp_path: Path, broker: str, postgres_url: str, queue: str
) -> None:
    # HubSpot and Zoho hold different people; each sync copies one object type of one of them
    # into SuiteCRM or Bitrix24, so the syncs share accounts (and budgets) but no records.
    rates = {"hubspot": 5.0, "zoho": 10.0, "suitecrm": 20.0, "bitrix24": 5.0}
    with sandboxes(rates) as boxes:
        seed_sandbox(
            boxes["hubspot"].api, load_default_map("hubspot"), sample_account(PEOPLE, SEED)
        )
        seed_sandbox(
            boxes["zoho"].api,
            load_default_map("zoho"),
            sample_account(PEOPLE, SEED, start=1000),
        )
        syncs = {
            f"{source}-{sink}-{objects[0]}": one_way(source, sink, objects)
            for source, sink, objects in [
                ("hubspot", "suitecrm", ["companies"]),
                ("hubspot", "suitecrm", ["contacts"]),
                ("hubspot", "suitecrm", ["deals"]),
                ("hubspot", "bitrix24", ["companies"]),
                ("hubspot", "bitrix24", ["contacts"]),
                ("zoho", "suitecrm", ["companies"]),
                ("zoho", "suitecrm", ["contacts"]),
                ("zoho", "bitrix24", ["companies"]),
                ("zoho", "bitrix24", ["contacts"]),
                ("zoho", "bitrix24", ["deals"]),
            ]
        }
        systems = {vendor: shared_budget(box) for vendor, box in boxes.items()}
        config = write_config(tmp_path, postgres_url, broker, systems, syncs)
        names = list(syncs)
        with workers(config, broker, queue, 3) as started:
            # Every sync enqueued twice at once: the lease lets one copy run at a time.
            app = create_app(broker)
            twice = [*names, *names]
            first = wait_for(
                twice, enqueue(app, config, twice, queue=queue), timeout=RESULT_TIMEOUT
            )
            assert all(o.error is None for o in first), [o.error for o in first if o.error]
            ran: dict[str, list[Outcome]] = {}
            for outcome in first:
                if outcome.report is not None:
                    ran.setdefault(outcome.sync, []).append(outcome)
            assert sorted(ran) == sorted(names)
            assert all(o.exit_code == 0 for o in first)

            time.sleep(1.0)  # every sync due again (schedule: 1s)
            second = subprocess.run(
                [
                    *(str(CRMHUB), "run", "--once", "--json", "--config", str(config)),
                    *("--executor", "celery", "--queue", queue),
                ],
                capture_output=True,
                text=True,
                timeout=RESULT_TIMEOUT,
                check=False,
            )
            assert second.returncode == 0, second.stderr
            reports = json.loads(second.stdout)
            assert sorted(r["sync"] for r in reports) == sorted(names)
            assert [r["sync"] for r in reports if writes(r)] == []  # converged
            runners = [w for w in started if "run started" in w.said()]
            assert len(runners) >= 2, "the runs were not spread over the workers"

        # No sync ever ran twice at once, and no run was left unfinished.
        for sync, spans in run_spans(postgres_url).items():
            assert all(status != "running" for _, _, status in spans), sync
            for (_, end, _), (start, _, _) in itertools.pairwise(sorted(spans)):
                assert start >= end - timedelta(milliseconds=1), f"{sync}: runs overlapped"

        for sink in ("suitecrm", "bitrix24"):
            found = emails(boxes[sink])
            assert len(found) == len(set(found)) == 2 * PEOPLE, sink
        assert len(boxes["suitecrm"].api.snapshot("deals")) == PEOPLE // 5
        assert len(boxes["bitrix24"].api.snapshot("deals")) == PEOPLE // 5

        # All workers together stayed inside each vendor's limit, as its own counter shows.
        for vendor, box in boxes.items():
            limit = vendor_limit(box)
            peak = box.calls.peak_in(limit.seconds)
            assert 0 < peak <= limit.amount, (vendor, peak, limit)
            refused = {
                status: n for status, n in box.calls.by_status.items() if status in (429, 503)
            }
            assert refused == {}, (vendor, refused)


@pytest.mark.parametrize("killed", ["pool process", "whole worker"])
def test_a_run_killed_mid_way_is_redelivered_and_converges_without_duplicates(
    tmp_path: Path, broker: str, postgres_url: str, queue: str, killed: str
) -> None:
    if killed == "whole worker" and broker.startswith("redis"):
        pytest.skip(
            "Redis hands a vanished worker's task out again only after the visibility timeout "
            "(20 minutes); the pool-process case covers redelivery on Redis"
        )
    people = 30
    with sandboxes({"hubspot": None, "suitecrm": 25.0}) as boxes:
        seed_sandbox(
            boxes["hubspot"].api, load_default_map("hubspot"), sample_account(people, SEED)
        )
        systems = {vendor: shared_budget(box) for vendor, box in boxes.items()}
        syncs = {"copy": one_way("hubspot", "suitecrm", ["companies", "contacts"])}
        config = write_config(tmp_path, postgres_url, broker, systems, syncs)
        with workers(config, broker, queue, 2) as started:
            app = create_app(broker)
            [result] = enqueue(app, config, ["copy"], queue=queue)

            # Mid-run: some contacts written to SuiteCRM, not all.
            deadline = time.monotonic() + 30
            while len(boxes["suitecrm"].api.snapshot("contacts")) < people // 4:
                assert time.monotonic() < deadline, "the run wrote nothing in 30 s"
                time.sleep(0.05)
            engine = sa.create_engine(postgres_url)
            with engine.connect() as conn:
                owner = conn.execute(sa.select(leases_table.c.owner)).scalar_one()
            engine.dispose()
            pool_pid = int(owner.split(":")[1])
            worker = next(w for w in started if w.process.pid == psutil.Process(pool_pid).ppid())
            victim = worker.process.pid if killed == "whole worker" else pool_pid
            os.kill(victim, signal.SIGKILL)
            written_when_killed = len(boxes["suitecrm"].api.snapshot("contacts"))
            assert written_when_killed < people, "the run ended before it was killed"

            [outcome] = wait_for(["copy"], [result], timeout=RESULT_TIMEOUT)
            assert outcome.report is not None, outcome
            assert outcome.exit_code == 0, outcome.report.as_dict()
            if killed == "whole worker":
                [survivor] = [w for w in started if w is not worker]
                assert "run started" in survivor.said()

            found = emails(boxes["suitecrm"])
            assert len(found) == len(set(found)) == people  # nothing lost, nothing twice
            [again] = wait_for(
                ["copy"], enqueue(app, config, ["copy"], queue=queue), timeout=RESULT_TIMEOUT
            )
            assert again.report is not None
            assert again.report.writes == 0


def test_sigterm_stops_a_workers_run_after_its_page_and_the_next_run_finishes_it(
    tmp_path: Path, broker: str, postgres_url: str, queue: str
) -> None:
    people = 100  # 10 companies, then 100 contacts: one request each, 60 ms apart
    with sandboxes({"hubspot": None, "suitecrm": 25.0}, {"suitecrm": 60.0}) as boxes:
        seed_sandbox(
            boxes["hubspot"].api, load_default_map("hubspot"), sample_account(people, SEED)
        )
        systems = {vendor: shared_budget(box) for vendor, box in boxes.items()}
        syncs = {"copy": one_way("hubspot", "suitecrm", ["companies", "contacts"])}
        config = write_config(tmp_path, postgres_url, broker, systems, syncs)
        app = create_app(broker)
        with workers(config, broker, queue, 1) as [worker]:
            [result] = enqueue(app, config, ["copy"], queue=queue)
            deadline = time.monotonic() + 30
            while not boxes["suitecrm"].api.snapshot("companies"):
                assert time.monotonic() < deadline, "the run wrote nothing in 30 s"
                time.sleep(0.01)

            worker.process.send_signal(signal.SIGTERM)  # while it writes the companies

            assert worker.process.wait(timeout=30) == 0, worker.said()
            [outcome] = wait_for(["copy"], [result], timeout=RESULT_TIMEOUT)
        assert outcome.report is not None, outcome
        assert outcome.report.status == "interrupted"
        # The companies' page was finished and committed; the contacts never started.
        assert len(boxes["suitecrm"].api.snapshot("companies")) == people // 10
        assert boxes["suitecrm"].api.snapshot("contacts") == {}
        assert "stop after their current page" in worker.said()
        assert [status for *_, status in run_spans(postgres_url)["copy"]] == ["interrupted"]

        with workers(config, broker, queue, 1):
            [again] = wait_for(
                ["copy"], enqueue(app, config, ["copy"], queue=queue), timeout=RESULT_TIMEOUT
            )
        assert again.report is not None, again
        assert again.exit_code == 0, again.report.as_dict()
        assert again.report.total("created") == people  # the contacts only
        found = emails(boxes["suitecrm"])
        assert len(found) == len(set(found)) == people


def test_three_workers_share_out_a_large_first_sync_and_each_record_arrives_once(
    tmp_path: Path, broker: str, postgres_url: str, queue: str
) -> None:
    people = 2000  # four pages of contacts to send; the companies stay under the threshold
    hubspot = load_sandbox("hubspot", SandboxOptions(seed=SEED))
    # Each write answered in 40 ms, so the run is still sending when its tasks start.
    zoho = load_sandbox("zoho", SandboxOptions(seed=SEED, latency_ms=40))
    boxes = {"hubspot": hubspot, "zoho": zoho}
    for box in boxes.values():
        box.start()
    try:
        seed_sandbox(hubspot.api, load_default_map("hubspot"), sample_account(people, SEED))
        systems = {vendor: box.connector_settings() for vendor, box in boxes.items()}
        sync = one_way("hubspot", "zoho", ["companies", "contacts"])
        sync["split"] = {"tasks": 3, "min_records": 1000}
        config = write_config(tmp_path, postgres_url, broker, systems, {"split": sync})
        with workers(config, broker, queue, 3) as started:
            app = create_app(broker)
            [outcome] = wait_for(
                ["split"], enqueue(app, config, ["split"], queue=queue), timeout=RESULT_TIMEOUT
            )
            assert outcome.report is not None, outcome
            assert outcome.exit_code == 0, outcome.report.as_dict()
            # The run counts what its tasks sent: every contact, once.
            assert outcome.report.counts["contacts"]["zoho"]["created"] == people
            assert outcome.report.counts["companies"]["zoho"]["created"] == people // 10
            found = emails(zoho)
            assert len(found) == len(set(found)) == people
            sent_by = [w for w in started if "this worker sent" in w.said()]
            assert sent_by, "no split task ran"
            assert any(
                "sent 0 page(s)" not in line
                for w in sent_by
                for line in w.said().splitlines()
                if "this worker sent" in line
            ), "the run sent every page itself"

            [again] = wait_for(
                ["split"], enqueue(app, config, ["split"], queue=queue), timeout=RESULT_TIMEOUT
            )
            assert again.report is not None
            assert again.report.writes == 0
    finally:
        for box in boxes.values():
            box.stop()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2hunter@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("amqp://crm:hunter2hunter@127.0.0.1:1//", "amqp://crm:***@127.0.0.1:1//"),
    ],
)
@pytest.mark.parametrize("command", [["worker"], ["run", "--once", "--executor", "celery"]])
def test_an_unreachable_broker_exits_3_naming_it_without_its_password(
    tmp_path: Path, url: str, shown: str, command: list[str]
) -> None:
    config = write_memory_config(tmp_path, sync_extra="    schedule: 1h\n")
    config.write_text(f"broker: '{url}'\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    message = error_of(cli(config, *command), 3)
    assert message.startswith(f"crmhub: broker {shown}: unreachable")
    assert "hunter2hunter" not in message


def test_workers_without_a_broker_in_the_config_say_which_key_is_missing(tmp_path: Path) -> None:
    config = write_memory_config(tmp_path, sync_extra="    schedule: 1h\n")
    for command in (["worker"], ["run", "--executor", "celery"]):
        message = error_of(cli(config, *command), 2)
        assert "broker: missing" in message
        assert "redis://127.0.0.1:6379/0" in message
    assert "not one of" in error_of(cli(config, "run", "--executor", "threads"), 2)
