"""Crash trials: ``crmhub sync`` killed with SIGKILL at many points, then run again.

What a user whose sync was killed outright (``kill -9``, the OOM killer) would notice: the next
runs finish the work, both CRMs end up holding exactly what a sync that was never interrupted
leaves, nothing is duplicated, ``crmhub failed list`` shows nothing the crash left behind, and
the state database accounts for every record crmhub created.

The HubSpot and Zoho sandboxes serve from this process; ``crmhub sync`` runs as a real child
process on a real SQLite file. An observer on a sandbox (:meth:`Sandbox.observe`) kills the
child at an exact point: after the vendor applied a write but before its answer left (the vendor
holds the record, crmhub never learned its id), or once a request's answer is out. Timers kill
it at moments spread over the run (mid-commit, between pages, while mapping).

Trials are independent (sandboxes, state database and child of their own), so they run two at a
time in the background while each test waits for its own. ``CRMHUB_CRASH_TRIALS=N`` adds N kill
points drawn at random (seed ``CRMHUB_CRASH_SEED``) from the requests of a crash-free run: a
soak. The module ends by saying how many trials ran and at how many distinct points they killed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors.sampledata import sample_account
from connectors.sandbox import ApiRequest, Exchange, Observer, Sandbox, SandboxOptions, load_sandbox
from hub.demo import seed_sandbox, typed_by_hand
from hub.tables import audit_entries, links
from mappings.fieldmap import FieldMap, load_default_map

pytestmark = pytest.mark.slow

CRMHUB = Path(sys.executable).with_name("crmhub")
SEED = 5
PEOPLE = 30  # per side; people 24..29 of HubSpot are people 24..29 of Zoho too
ZOHO_START = 24
VENDORS = ("hubspot", "zoho")
OBJECTS = ("companies", "contacts", "deals")
MAX_RUNS = 6  # after a kill: runs allowed to reach a quiet one
RUN_TIMEOUT = 120.0
TRIALS_AT_ONCE = 2
SOAK_TRIALS = int(os.environ.get("CRMHUB_CRASH_TRIALS", "0"))
SOAK_SEED = int(os.environ.get("CRMHUB_CRASH_SEED", "0"))

Holdings = dict[str, dict[str, list[list[tuple[str, str]]]]]


# --------------------------------------------------------------------------- kill points


def is_write(request: ApiRequest) -> bool:
    """A request that changes the account: not a read, a search or a token request."""
    if request.method in ("GET", "HEAD") or "/oauth/" in request.path:
        return False
    return not request.path.endswith(("/search", "/batch/read"))


def any_request(request: ApiRequest) -> bool:
    return True


def route(pattern: str) -> Callable[[ApiRequest], bool]:
    """Requests whose ``METHOD /path`` matches ``pattern`` (a regular expression)."""
    compiled = re.compile(pattern)
    return lambda request: compiled.search(f"{request.method} {request.path}") is not None


@dataclass(frozen=True)
class AtExchange:
    """Kill at the ``nth`` request to ``vendor`` that ``wanted`` picks: when ``answered`` is
    False, once the vendor has acted on it and before its answer leaves; else once it is out."""

    label: str
    vendor: str
    wanted: Callable[[ApiRequest], bool]
    nth: int = 1
    answered: bool = False


@dataclass(frozen=True)
class AtTime:
    """Kill ``fraction`` of a crash-free run's request span after the first request."""

    label: str
    fraction: float


@dataclass(frozen=True)
class AtRandom:
    """Drawn when the trial runs, from what the crash-free run did: ``index`` seeds the draw."""

    index: int

    @property
    def label(self) -> str:
        return f"random-{self.index}"


KillPoint = AtExchange | AtTime | AtRandom

# A first sync writes each object type in one batch per vendor (30 people a side), so these
# cover every create batch on both vendors, the association HubSpot writes after a contact, a
# write whose answer arrived but was never committed, reads and a token refresh answered, and
# two moments in between: ten points at exchanges, and wherever the timers land.
KILL_POINTS: tuple[KillPoint, ...] = (
    AtExchange("hubspot-companies-create-applied", "hubspot", route(r"/companies/batch/create$")),
    AtExchange("hubspot-contacts-upsert-applied", "hubspot", route(r"/contacts/batch/upsert$")),
    AtExchange(
        "hubspot-contacts-associated-applied",
        "hubspot",
        route(r"/associations/contacts/companies/batch/create$"),
    ),
    AtExchange("hubspot-deals-create-applied", "hubspot", route(r"/objects/deals/batch/create$")),
    AtExchange("zoho-accounts-create-applied", "zoho", route(r"^POST /crm/v\d+/Accounts$")),
    AtExchange("zoho-contacts-upsert-applied", "zoho", route(r"^POST /crm/v\d+/Contacts/upsert$")),
    AtExchange("zoho-deals-create-applied", "zoho", route(r"^POST /crm/v\d+/Deals$")),
    AtExchange(
        "hubspot-companies-create-answered",
        "hubspot",
        route(r"/companies/batch/create$"),
        answered=True,
    ),
    AtExchange("zoho-token-answered", "zoho", route(r"/oauth/"), answered=True),
    AtExchange(
        "hubspot-contacts-read-answered", "hubspot", route(r"^GET .*/contacts$"), answered=True
    ),
    AtTime("timer-a-quarter-in", 0.25),
    AtTime("timer-half-way", 0.5),
)
SOAK: tuple[KillPoint, ...] = tuple(AtRandom(i) for i in range(SOAK_TRIALS))


@dataclass
class Profile:
    """What a crash-free first run asked of each vendor, in order, and when: seconds after
    its first request."""

    requests: dict[str, list[tuple[float, ApiRequest]]] = field(default_factory=dict)

    @property
    def span(self) -> float:
        return max(seen[-1][0] for seen in self.requests.values() if seen)

    def count(self, vendor: str, wanted: Callable[[ApiRequest], bool]) -> int:
        return sum(1 for _, request in self.requests[vendor] if wanted(request))


def draw(point: AtRandom, profile: Profile) -> AtExchange | AtTime:
    """A kill point drawn for ``point.index``: a write applied, a request answered, or a time."""
    rng = random.Random(f"{SOAK_SEED}:{point.index}")
    kind = rng.choices(("applied", "answered", "timer"), weights=(5, 3, 2))[0]
    if kind == "timer":
        # Not to the very end: a child a little faster than the crash-free one would be gone.
        return AtTime(point.label, rng.uniform(0.0, 0.7))
    vendor = rng.choice(VENDORS)
    wanted = is_write if kind == "applied" else any_request
    nth = rng.randint(1, profile.count(vendor, wanted))
    return AtExchange(point.label, vendor, wanted, nth, answered=kind == "answered")


class Killer:
    """Sends SIGKILL to the child once its kill point is reached, and notes where that was."""

    def __init__(self, point: AtExchange | AtTime, span: float) -> None:
        self.point = point
        self.span = span
        self.proc: subprocess.Popen[bytes] | None = None
        self.where: str | None = None
        self._seen = 0
        self._last = "before any request"
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def observer(self, vendor: str) -> Observer:
        def see(exchange: Exchange) -> None:
            request = exchange.request
            call = f"{vendor} #{exchange.number} {request.method} {request.path}"
            if exchange.sent:
                self._last = call
            point = self.point
            if isinstance(point, AtTime):
                self._start_timer(point)
                return
            if point.vendor != vendor or exchange.sent != point.answered:
                return
            if not point.wanted(request):
                return
            if not point.answered and (
                exchange.response is None or exchange.response.status >= 300
            ):
                return  # refused: the vendor applied nothing
            with self._lock:
                self._seen += 1
                reached = self._seen == point.nth
            if reached:
                self.kill(f"{call} {'answered' if point.answered else 'applied'}")

        return see

    def _start_timer(self, point: AtTime) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(point.fraction * self.span, self.kill)
            self._timer.start()

    def kill(self, where: str | None = None) -> None:
        with self._lock:
            proc = self.proc
            if self.where is not None or proc is None or proc.poll() is not None:
                return
            proc.kill()
            # Reaped before the sandbox answers: nothing the child could do with it.
            proc.wait()
            # A timer's point is what the child was last answered: where it was in its work.
            self.where = where or f"timer, after {self._last} answered"

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


# --------------------------------------------------------------------------- accounts


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def writes(self) -> int:
        return sum(
            counter.get(kind, 0)
            for report in json.loads(self.stdout)
            for systems in report["counts"].values()
            for counter in systems.values()
            for kind in ("created", "updated", "deleted")
        )

    def describe(self) -> str:
        output = self.stdout[-2000:] + self.stderr[-3000:]
        return f"exit {self.code} after {self.seconds:.1f} s\n{output}"


@dataclass
class Account:
    """Two seeded sandboxes, a config syncing them, its SQLite state database."""

    boxes: dict[str, Sandbox]
    maps: dict[str, FieldMap]
    seeded: dict[str, dict[str, set[str]]]  # vendor → object type → ids a user put there
    config: Path
    database: str
    workdir: Path
    runs: int = 0

    def crmhub(self, *args: str, killer: Killer | None = None) -> Run:
        """Run ``crmhub`` to its end (or its kill) and say how it went."""
        self.runs += 1
        out = self.workdir / f"run-{self.runs}.out"
        err = self.workdir / f"run-{self.runs}.err"
        started = time.monotonic()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [str(CRMHUB), *args], stdout=stdout, stderr=stderr, cwd=self.workdir
            )
            if killer is not None:
                killer.proc = proc
            try:
                proc.wait(timeout=RUN_TIMEOUT)
            finally:
                if killer is not None:
                    killer.stop()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return Run(
            proc.returncode,
            out.read_text(encoding="utf-8"),
            err.read_text(encoding="utf-8"),
            time.monotonic() - started,
        )

    def sync(self, killer: Killer | None = None) -> Run:
        return self.crmhub("sync", "--config", str(self.config), "--json", killer=killer)

    def sync_until_quiet(self) -> list[Run]:
        """Run ``crmhub sync`` until a run exits 0 having written nothing."""
        runs: list[Run] = []
        for _ in range(MAX_RUNS):
            run = self.sync()
            runs.append(run)
            if run.code == 0 and run.writes == 0:
                return runs
        raise AssertionError(
            f"no quiet run in {MAX_RUNS}:\n" + "\n".join(r.describe() for r in runs)
        )

    def open_failures(self) -> list[tuple[str, str, str, str]]:
        """What ``crmhub failed list`` shows open: system, object type, stage, why."""
        run = self.crmhub("failed", "list", "--config", str(self.config), "--json")
        assert run.code == 0, run.describe()
        return sorted(
            (row["system"], row["object_type"], row["stage"], row["reason"])
            for row in json.loads(run.stdout)
            if row["status"] == "open"
        )

    def holdings(self) -> Holdings:
        return {vendor: holdings(box, self.maps[vendor]) for vendor, box in self.boxes.items()}


@contextmanager
def account(workdir: Path, maps: dict[str, FieldMap]) -> Iterator[Account]:
    """HubSpot with people 0..29, Zoho with people 24..53 typed by hand: six people, and their
    company and deals, are in both."""
    workdir.mkdir(parents=True)
    boxes = {vendor: load_sandbox(vendor, SandboxOptions(seed=SEED)) for vendor in VENDORS}
    for box in boxes.values():
        box.start()
    try:
        ids = {
            "hubspot": seed_sandbox(
                boxes["hubspot"].api, maps["hubspot"], sample_account(PEOPLE, SEED)
            ),
            "zoho": seed_sandbox(
                boxes["zoho"].api,
                maps["zoho"],
                sample_account(PEOPLE, SEED, start=ZOHO_START),
                typed_by_hand,
            ),
        }
        database = f"sqlite:///{workdir}/state.db"
        config = {
            "database": database,
            "systems": {name: box.connector_settings() for name, box in boxes.items()},
            "syncs": {"main": {"systems": list(VENDORS), "objects": list(OBJECTS)}},
        }
        path = workdir / "crmhub.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        seeded = {
            vendor: {object_type: set(by_key.values()) for object_type, by_key in by_type.items()}
            for vendor, by_type in ids.items()
        }
        yield Account(boxes, maps, seeded, path, database, workdir)
    finally:
        for box in boxes.values():
            box.stop()


def holdings(box: Sandbox, fieldmap: FieldMap) -> dict[str, list[list[tuple[str, str]]]]:
    """Every record of a sandbox in canonical form, sorted; a reference is replaced by its
    target's natural key (a company's domain, a contact's email), since ids differ between
    sandboxes and runs, and a reference to a record that is not there shows as such."""
    records = {
        object_type: {
            record_id: fieldmap.to_canonical(object_type, fields)
            for record_id, fields in box.api.snapshot(object_type).items()
        }
        for object_type in OBJECTS
    }
    natural = {
        "company": {
            rid: str(c.get("domain") or c.get("name")) for rid, c in records["companies"].items()
        },
        "contacts": {rid: str(p.get("email")).casefold() for rid, p in records["contacts"].items()},
    }

    def key(reference: str, target: Any) -> str:
        return natural[reference].get(str(target), f"missing {target}")

    result: dict[str, list[list[tuple[str, str]]]] = {}
    for object_type, by_id in records.items():
        rows = []
        for record in by_id.values():
            row = []
            for name, value in record.items():
                if name in natural:
                    targets = value if isinstance(value, list) else [value]
                    value = sorted(key(name, target) for target in targets)
                row.append((name, str(value)))
            rows.append(sorted(row))
        result[object_type] = sorted(rows)
    return result


def differences(found: Holdings, expected: Holdings) -> list[str]:
    """The records one side holds and the other does not, by vendor and object type."""
    lines = []
    for vendor, by_type in expected.items():
        for object_type, records in by_type.items():
            held = found[vendor][object_type]
            lines += [f"{vendor} {object_type} lacks {r}" for r in records if r not in held]
            lines += [f"{vendor} {object_type} also has {r}" for r in held if r not in records]
    return lines


# --------------------------------------------------------------------------- invariants


def check_state(account: Account) -> None:
    """No duplicates, and a state database that accounts for what each sandbox holds."""
    engine = sa.create_engine(account.database)
    try:
        with engine.connect() as conn:
            link_rows = conn.execute(sa.select(links)).all()
            audit_rows = conn.execute(sa.select(audit_entries).order_by(audit_entries.c.id)).all()
    finally:
        engine.dispose()
    held = {
        (object_type, vendor): set(box.api.snapshot(object_type))
        for vendor, box in account.boxes.items()
        for object_type in OBJECTS
    }

    for vendor, box in account.boxes.items():
        email = account.maps[vendor].vendor_field("contacts", "email")
        assert email is not None
        emails = Counter(
            str(fields.get(email)).casefold() for fields in box.api.snapshot("contacts").values()
        )
        twice = sorted(address for address, n in emails.items() if n > 1)
        assert not twice, f"{vendor} holds these emails more than once: {twice}"

    # Every link names a record its sandbox holds; no record is linked twice; every record is
    # linked, and every canonical record has its record on each side.
    live = [row for row in link_rows if not row.detached]
    dangling = [r for r in live if r.remote_id not in held[(r.object_type, r.system)]]
    assert not dangling, f"links to records that do not exist: {dangling}"
    linked = Counter((r.object_type, r.system, r.remote_id) for r in link_rows)
    linked_twice = sorted(record for record, n in linked.items() if n > 1)
    assert not linked_twice, f"records linked twice: {linked_twice}"
    unlinked = sorted(
        (object_type, vendor, rid)
        for (object_type, vendor), ids in held.items()
        for rid in ids
        if (object_type, vendor, rid) not in linked
    )
    assert not unlinked, f"records crmhub does not know: {unlinked}"
    sides = Counter((r.object_type, r.canonical_id) for r in live)
    one_sided = sorted(k for k, n in sides.items() if n != len(VENDORS))
    assert not one_sided, f"canonical records without a record on every side: {one_sided}"

    # The audit log names every record crmhub created; a create entry names a record that
    # exists, unless a later delete entry says where it went.
    created = {
        r.id: (r.object_type, r.system, r.remote_id) for r in audit_rows if r.action == "create"
    }
    made = {
        (object_type, vendor, rid)
        for (object_type, vendor), ids in held.items()
        for rid in ids
        if rid not in account.seeded[vendor][object_type]
    }
    unaudited = sorted(made - set(created.values()))
    assert not unaudited, f"records crmhub created without a create entry: {unaudited}"
    deleted = {
        (r.object_type, r.system, r.remote_id): r.id for r in audit_rows if r.action == "delete"
    }
    vanished = sorted(
        record
        for entry, record in created.items()
        if record[2] not in held[(record[0], record[1])] and deleted.get(record, 0) < entry
    )
    assert not vanished, f"create entries for records that do not exist: {vanished}"


# --------------------------------------------------------------------------- the trials


@dataclass
class CrashFree:
    """Where a sync that is never interrupted ends, and how its first run went."""

    holdings: Holdings
    failures: list[tuple[str, str, str, str]]
    profile: Profile


def crash_free_sync(workdir: Path, maps: dict[str, FieldMap]) -> CrashFree:
    with account(workdir, maps) as calm:
        profile = Profile({vendor: [] for vendor in VENDORS})
        first_request: list[float] = []

        def recorder(vendor: str) -> Observer:
            def record(exchange: Exchange) -> None:
                if exchange.sent:
                    return
                now = time.monotonic()
                if not first_request:
                    first_request.append(now)
                profile.requests[vendor].append((now - first_request[0], exchange.request))

            return record

        stops = [box.observe(recorder(vendor)) for vendor, box in calm.boxes.items()]
        run = calm.sync()
        for stop in stops:
            stop()
        assert run.code == 0, run.describe()
        calm.sync_until_quiet()
        check_state(calm)
        state = calm.holdings()
        assert len(state["hubspot"]["contacts"]) == PEOPLE + ZOHO_START
        assert len(state["zoho"]["contacts"]) == PEOPLE + ZOHO_START
        return CrashFree(state, calm.open_failures(), profile)


def trial(point: KillPoint, workdir: Path, maps: dict[str, FieldMap], calm: CrashFree) -> str:
    """Kill a first sync at ``point``, sync until quiet, check where it ended; where it died."""
    chosen = draw(point, calm.profile) if isinstance(point, AtRandom) else point
    killer = Killer(chosen, calm.profile.span)
    with account(workdir, maps) as crashed:
        stops = [box.observe(killer.observer(vendor)) for vendor, box in crashed.boxes.items()]
        killed = crashed.sync(killer)
        for stop in stops:
            stop()
        assert killer.where is not None, f"not killed at {chosen}: {killed.describe()}"
        assert killed.code == -signal.SIGKILL, killed.describe()
        crashed.sync_until_quiet()

        held = crashed.holdings()
        assert held == calm.holdings, f"killed at {killer.where}:\n" + "\n".join(
            differences(held, calm.holdings)
        )
        try:
            check_state(crashed)
            assert crashed.open_failures() == calm.failures
        except AssertionError as exc:
            raise AssertionError(f"killed at {killer.where}: {exc}") from exc
        return killer.where


@pytest.fixture(scope="module")
def trials(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[str]]]:
    """Every selected trial of this module, started in the background, by label."""
    maps = {vendor: load_default_map(vendor) for vendor in VENDORS}
    calm = crash_free_sync(tmp_path_factory.mktemp("crash-free") / "account", maps)
    chosen = {
        item.callspec.id
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and hasattr(item, "callspec")
    }
    selected = [point for point in KILL_POINTS + SOAK if point.label in chosen]
    with ThreadPoolExecutor(TRIALS_AT_ONCE, thread_name_prefix="trial") as pool:
        futures = {
            point.label: pool.submit(
                trial, point, tmp_path_factory.mktemp(point.label) / "account", maps, calm
            )
            for point in selected
        }
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()
    ran = [f for f in futures.values() if not f.cancelled()]
    where = [f.result() for f in ran if f.exception() is None]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if not where or reporter is None or capture is None:
        return
    points = Counter(where)
    kinds = Counter(point.rsplit(" ", 1)[-1] for point in points)
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\ncrash trials: {len(ran)} run, {len(where)} converged; killed at {len(points)} "
            f"distinct points ({kinds['applied']} writes applied, {kinds['answered']} answers "
            f"out, of which {sum(1 for p in points if p.startswith('timer'))} by a timer)"
        )
        if SOAK:
            for point, times in sorted(points.items()):
                reporter.write_line(f"  {times:3d}x {point}")


@pytest.mark.parametrize("point", KILL_POINTS + SOAK, ids=lambda p: p.label)
def test_a_killed_sync_run_again_ends_where_a_crash_free_one_does(
    point: KillPoint, trials: dict[str, Future[str]]
) -> None:
    trials[point.label].result()
