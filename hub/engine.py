"""The sync engine: one run of one sync, as DESIGN.md describes it.

Public entry points: :class:`SyncEngine`, :class:`SystemRuntime`, :class:`SyncSpec`,
:class:`LeaseHeldError`, :class:`MassDeleteError` (and :class:`hub.report.RunReport`, what a
run returns).

A run takes the object types in dependency order. For each, an :class:`_ObjectPass`

1. reads every reading system's changes since its cursor (minus the overlap window), maps them
   to canonical form, drops echoes (the modified time or content hash its link holds) and
   stages the rest on disk (:mod:`hub.spool`);
2. ties each unlinked record to a canonical record by the sync's match rules
   (:mod:`hub.matching`);
3. reconciles page by page: a three-way merge per record (:mod:`hub.merge`), the writes each
   system needs (:mod:`hub.planning`); commits the decisions with write-ahead intents, sends the
   writes in batches, then commits what the vendors answered (:mod:`hub.ledger` builds the
   rows);
4. advances the cursors past everything it read, once every page is done.

A pass with a single reading system that it does not write to (a one-way sync, a move between
CRMs) is streamed: steps 1 to 3 run page after page while the reads go on, deletes read first so
that the mass-delete guard stands before any write. Nothing read elsewhere could match what it
sends, and a record matches those of earlier pages through the keys their commits stored.

Vendor calls overlap our own work: reads run a few pages ahead on a reader thread, and a page's
writes go out on writer threads while the next page is decided, one per target system, side by
side. A connector is called from one thread at a time, except that a connector whose
capabilities allow several write calls at once (``write_concurrency``) gets that many batches of
one kind at once. Only the pass's own thread touches the database and the report.

A system that cannot be reached or refuses our credentials is dropped from the rest of the run;
what it should have received stays as pending intents, so the next run delivers it.

Split runs (a large first sync on Celery workers, :mod:`hub.workers`): when an object type has
at least ``split_min_records`` records to reconcile and a :class:`Splitter` is given, the run
starts worker tasks (:meth:`SyncEngine.help`) and, instead of step 3, commits each page as it
stands after step 2 (its records, matched to canonical ids) to the state store. The tasks, and
then the run itself, claim a page at a time and reconcile it as step 3 would: decide, commit,
send, commit. The page's row goes in the transaction that commits its decisions, and only its
claimant can take it, so no page is decided or sent twice; a worker that dies leaves its claim
to lapse (at once when it ran on this host) and its page to another. Only when no page is
left, and none is held by a live worker, does the run move its cursors and go on to the next
object type, whose references need these writes' ids. Every pass first finishes the pages an
earlier split run left.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Engine

from connectors.base import (
    Connector,
    Page,
    RemoteRecord,
    ReportsHeadroom,
    SweepsIds,
    WriteResult,
)
from connectors.errors import Action, ConnectorError
from hub import reasons, store
from hub.collector import run_pace
from hub.lease_owner import owner_is_gone, process_owner
from hub.ledger import PageLedger, link_update
from hub.logs import carry_context, run_context, set_run_id
from hub.matching import Matcher, Rule, all_keys, record_keys
from hub.merge import MergeResult, Policy, Version, merge_record
from hub.planned_links import PLANNED_ID, PlannedLinks
from hub.planning import Plan, Unwritable, Write, WritePlanner
from hub.readahead import read_ahead
from hub.report import RunObserver, RunReport, SystemFailure
from hub.spool import Spool, Staged
from hub.tables import utcnow
from mappings.errors import MappingError
from mappings.fieldmap import FieldMap
from mappings.schema import content_hash

log = logging.getLogger("crmhub.engine")

Mode = Literal["both", "read", "write"]
DeletePolicy = Literal["ignore", "propagate", "unlink"]
Progress = Callable[[str, str, int, int | None], None]
LEASE_TTL = timedelta(minutes=10)
MASS_DELETE_MINIMUM = 10
MATCH_IN_MEMORY_LIMIT = 50_000
# How often a split run looks whether its workers have finished the pages they hold.
SPLIT_POLL_SECONDS = 0.25
# Pages a reader fetches ahead of the pass: a few hundred records in memory at most.
READ_AHEAD_PAGES = 4


class Splitter(Protocol):
    """Starts the worker tasks that help reconcile a split run's pages."""

    def __call__(self, object_type: str, run_id: int, owner: str) -> None: ...


class _ClaimLost(Exception):
    """Another worker took over a split run's page this one had claimed (its claim lapsed)."""


class LeaseHeldError(RuntimeError):
    """Another process is running this sync right now."""


class MassDeleteError(RuntimeError):
    """A system reported more deletes than the sync's guard allows in one run."""


@dataclass
class SystemRuntime:
    """One configured system as a run uses it: its connector, its field map, its direction."""

    name: str
    mode: Mode
    connector: Connector
    fieldmap: FieldMap
    phone_region: str = "US"
    # Read at most this many records of each object type (a rehearsal's sample); the cursor
    # then stays put, so the next full run reads everything.
    read_limit: int | None = None

    @property
    def reads(self) -> bool:
        return self.mode in ("both", "read")

    @property
    def writes(self) -> bool:
        return self.mode in ("both", "write")


@dataclass(frozen=True)
class SyncSpec:
    """What the engine needs of a sync's configuration."""

    name: str
    objects: tuple[str, ...]
    match: Mapping[str, Sequence[Rule]]
    policy: Policy
    deletes: DeletePolicy = "ignore"
    max_delete_fraction: float = 0.5
    overlap: timedelta = timedelta(minutes=5)
    # How often a vendor that never reports deletes has its ids swept (SweepsIds).
    delete_sweep: timedelta = timedelta(days=1)


class SyncEngine:
    """Runs one sync. Not thread-safe; one instance per run."""

    def __init__(
        self,
        db: Engine,
        spec: SyncSpec,
        systems: Sequence[SystemRuntime],
        *,
        clock: Callable[[], datetime] = utcnow,
        progress: Progress | None = None,
        page_size: int = 500,
        spool_dir: str | None = None,
        owner: str | None = None,
        should_stop: Callable[[], bool] | None = None,
        observer: RunObserver | None = None,
        splitter: Splitter | None = None,
        split_min_records: int = 5000,
    ) -> None:
        self.db = db
        self.spec = spec
        self.systems = {runtime.name: runtime for runtime in systems}
        self.order = tuple(runtime.name for runtime in systems)
        self.clock = clock
        self.progress = progress
        self.page_size = page_size
        self.spool_dir = spool_dir
        # The lease's owner: this run's, or for a split run's worker task, the run's own.
        self.owner = owner or process_owner()
        # Who holds this process's claims on split runs' pages; liveness is judged by it.
        self.claimant = process_owner()
        self.splitter = splitter
        self.split_min_records = split_min_records
        # Set by help(): what this worker task sent of a split run's pages.
        self.helping: RunReport | None = None
        self.should_stop = should_stop or (lambda: False)
        self.observer = observer or RunObserver()
        # A dry run commits no links: the ones it would make, so that a later object type's
        # references and match keys resolve as they will in the real run (a deal's company,
        # and so its match key name+company), and references it would write are planned so.
        self.planned = PlannedLinks(spool_dir)
        # Object types some synced field refers to (companies, contacts).
        self.referenced = {
            target
            for runtime in systems
            for object_type in spec.objects
            if object_type in runtime.fieldmap.object_types
            for target in runtime.fieldmap.reference_fields(object_type).values()
        }
        self.failed: dict[str, SystemFailure] = {}
        self._dry_run = False
        self._lease_renewed = time.monotonic()

    # ------------------------------------------------------------------ run

    def run(self, *, dry_run: bool = False, allow_mass_delete: bool = False) -> RunReport:
        with run_context(self.spec.name), run_pace():
            report = self._run(dry_run, allow_mass_delete)
            _log_outcome(report)
            return report

    def _run(self, dry_run: bool, allow_mass_delete: bool) -> RunReport:
        now = self.clock()
        report = RunReport(self.spec.name, None, dry_run, now)
        self._dry_run = dry_run
        self._lease_renewed = time.monotonic()
        if not dry_run:
            with self.db.begin() as conn:
                # A run killed on this machine (SIGKILL) never released its lease: its dead
                # process does not keep this one waiting for the lease to expire.
                if not store.acquire_lease(
                    conn, self.spec.name, self.owner, now, LEASE_TTL, holder_is_gone=owner_is_gone
                ):
                    raise LeaseHeldError(
                        f"sync {self.spec.name!r} is already running in another process"
                    )
                # The run starts once the lease is ours: on PostgreSQL, taking it may have
                # waited for another process to commit the release of its own.
                report.started_at = self.clock()
                report.run_id = store.start_run(conn, self.spec.name, report.started_at)
            set_run_id(report.run_id)
        log.info(
            "run started%s", " (dry run)" if dry_run else "", extra={"systems": list(self.systems)}
        )
        status = "failed"
        try:
            status = "succeeded"
            for object_type in self.spec.objects:
                finished = (
                    not self.should_stop()
                    and _ObjectPass(self, object_type, report, dry_run, allow_mass_delete).run()
                )
                if not finished:
                    status = "interrupted"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            report.failures = list(self.failed.values())
            if status == "succeeded" and (report.failures or report.errors):
                status = "partial"
            report.status = status
            report.finished_at = self.clock()
            if not dry_run:
                self._finish(report)
            self.planned.close()
            self._close_connectors()
        return report

    def _close_connectors(self) -> None:
        for runtime in self.systems.values():
            try:
                runtime.connector.close()
            except Exception:  # closing must not hide the run's own outcome
                log.exception("closing %s failed", runtime.name)

    def _finish(self, report: RunReport) -> None:
        assert report.run_id is not None
        with self.db.begin() as conn:
            # What the worker tasks of a split run sent, they counted on the run's row.
            report.add_counts(store.run_counts(conn, report.run_id))
            report.open_conflicts, report.open_dead_letters = store.open_counts(
                conn, self.spec.name
            )
            error = "; ".join([f"{f.system}: {f.message}" for f in report.failures] + report.errors)
            counts = report.as_dict()["counts"]
            assert report.finished_at is not None
            store.finish_run(
                conn, report.run_id, report.status, counts, error or None, report.finished_at
            )
            # What each vendor last said of its rate limits, for crmhub status.
            headroom = {
                name: runtime.connector.headroom()
                for name, runtime in self.systems.items()
                if isinstance(runtime.connector, ReportsHeadroom)
            }
            store.save_rate_limits(conn, headroom, report.finished_at)
            store.release_lease(conn, self.spec.name, self.owner)

    def help(self, object_type: str, run_id: int) -> RunReport:
        """As one of a split run's worker tasks, reconcile its pages of ``object_type``:
        claim one at a time until none is left to claim or the run (this engine's ``owner``)
        no longer holds its lease. What was sent is counted on the run's row as well as in the
        report returned."""
        report = RunReport(self.spec.name, run_id, False, self.clock())
        self.helping = report
        with run_context(self.spec.name), run_pace():
            set_run_id(run_id)
            try:
                # The pass counts each page afresh: _finish moves its counts to the run's row
                # and to this report.
                scratch = RunReport(self.spec.name, run_id, False, report.started_at)
                helper = _ObjectPass(self, object_type, scratch, False, False)
                helper.drain(wait=False)
                report.errors.extend(scratch.errors)
                log.info(
                    "split run %d: this worker sent %d page(s) of %s",
                    run_id,
                    helper.pages_claimed,
                    object_type,
                    extra={"object": object_type, "pages": helper.pages_claimed},
                )
                report.status = "succeeded"
            except BaseException:
                report.status = "failed"
                raise
            finally:
                report.failures = list(self.failed.values())
                report.finished_at = self.clock()
                self._close_connectors()
        return report

    def keep_lease(self) -> None:
        """Renew the lease during long reads, well before it expires (page commits renew it
        too); a lease another process took in between stops this run."""
        if self._dry_run or time.monotonic() - self._lease_renewed < LEASE_TTL.total_seconds() / 3:
            return
        with self.db.begin() as conn:
            now = self.clock()
            if not store.renew_lease(conn, self.spec.name, self.owner, now, LEASE_TTL):
                raise LeaseHeldError(f"sync {self.spec.name!r}: lost the lease to another process")
            store.renew_claims(conn, self.spec.name, self.claimant, now, LEASE_TTL)
        self._lease_renewed = time.monotonic()

    def fail_system(self, system: str, error: ConnectorError) -> None:
        if system not in self.failed:
            self.failed[system] = SystemFailure(system, error.message, error.exit_code)
            log.error(
                "system %s dropped from this run: %s",
                system,
                error.message,
                extra={"system": system, "exit_code": error.exit_code},
            )

    def live(self, system: str) -> bool:
        return system not in self.failed


@dataclass(slots=True)
class _Decided:
    """A page whose decisions and write intents are committed; its writes are still to go."""

    writes: list[Write]
    intents: list[store.Intent]
    intents_row: int | None
    now: datetime


# One page to reconcile: canonical ids with their staged versions, and the split run's page
# row it came from, if any.
_Page = tuple[list[tuple[str, list[Staged]]], store.SplitPage | None]


@dataclass(slots=True)
class _Sent:
    """One batch sent to one system: the vendor's per-record results, or why there are none."""

    system: str
    kind: str
    chunk: list[Write]
    results: list[WriteResult] | None
    error: ConnectorError | None = None


@dataclass(slots=True)
class _InFlight:
    """A page whose writes are on their way on the writer threads: a future per system."""

    decided: _Decided
    written: store.PageWrites
    writes: list[Write]
    sent: list[Future[list[_Sent]]]


class _Senders:
    """The threads that send a pass's writes: a writer per target system, so the systems' writes
    go out side by side, and for a connector that takes several write calls at once
    (``write_concurrency``), a pool that sends that many of its batches at once."""

    def __init__(self, systems: Mapping[str, SystemRuntime], targets: Sequence[str]) -> None:
        self._stack = ExitStack()
        self.writers = self._stack.enter_context(
            ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="write")
        )
        self.batches: dict[str, Executor] = {}
        for name in targets:
            concurrency = systems[name].connector.capabilities.write_concurrency
            if concurrency > 1:
                self.batches[name] = self._stack.enter_context(
                    ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"write-{name}")
                )

    def __enter__(self) -> _Senders:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class _ObjectPass:
    """One object type within one run."""

    def __init__(
        self,
        engine: SyncEngine,
        object_type: str,
        report: RunReport,
        dry_run: bool,
        allow_mass_delete: bool,
    ) -> None:
        self.engine = engine
        self.spec = engine.spec
        self.sync = engine.spec.name
        self.object_type = object_type
        self.report = report
        self.dry_run = dry_run
        self.allow_mass_delete = allow_mass_delete
        self.db = engine.db
        self.run_id = report.run_id
        self.systems = {
            name: runtime
            for name, runtime in engine.systems.items()
            if object_type in runtime.connector.capabilities.object_types
            and object_type in runtime.fieldmap.object_types
        }
        self.planner = WritePlanner(
            object_type, {name: runtime.fieldmap for name, runtime in self.systems.items()}
        )
        self.ledger = PageLedger(
            self.sync,
            object_type,
            report.run_id,
            tuple(self.spec.match.get(object_type, ())),
            self.spec.deletes,
            report.count,
        )
        self.rules = tuple(self.spec.match.get(object_type, ()))
        self.high_water: dict[str, datetime | None] = {}
        self.swept: dict[str, datetime] = {}
        # Systems being read for the first time in this sync, while their read lasts.
        self.never_linked: set[str] = set()
        self._remote_refs: dict[str, dict[str, dict[str, str]]] = {}
        # Loaded once per pass: intents earlier runs left, and records that failed before.
        self.stale: dict[tuple[str, str], str] = {}
        self.stale_rows: list[int] = []
        self.failures: dict[tuple[str, str, str], int] = {}
        self.deletes_seen: Counter[str] = Counter()
        # (system, remote id) of records read with a reference the hub could not translate.
        self.stampless: set[tuple[str, str]] = set()
        self._id_prefix = _id_prefix()
        self._ids_made = 0
        self._matched = 0
        self._deleting: dict[str, set[str]] | None = None
        # A streamed pass's records to reconcile, once its read is over.
        self._stream_total: int | None = None
        self.pages_claimed = 0

    # ------------------------------------------------------------------ the pass

    def run(self) -> bool:
        """Sync this object type; False when asked to stop before the end."""
        # Pages an earlier split run shared out and left are reconciled before anything new.
        if not self.dry_run and not self.drain(wait=True):
            return False
        with self.db.connect() as conn:
            self.stale, self.stale_rows = store.load_pending(
                conn,
                self.sync,
                self.object_type,
                now=self.engine.clock(),
                holder_is_gone=owner_is_gone,
            )
            self.failures = store.open_failures(conn, self.sync, self.object_type)
        source = self._stream_source()
        with Spool(self.engine.spool_dir) as spool:
            if source is None:
                self._read_all(spool)
                self._guard_mass_deletes()
                self._revisit(spool)
            else:
                self._revisit(spool)
                streamed = self._streamed_pages(source, spool)
                try:
                    if not self._reconcile(streamed, None):
                        return False
                finally:
                    streamed.close()
                # What is left for the steps below: deletes, and the records revisited that
                # no page read touched.
            self._identify(spool)
            total = spool.count()
            split = (
                self.engine.splitter is not None
                and not self.dry_run
                and total >= self.engine.split_min_records
            )
            if split:
                self._start_split(total)
                self._share_pages(spool, total)
            else:
                pages = ((page, None) for page in spool.groups(self.engine.page_size))
                # A streamed pass's progress goes on from its pages.
                done = self._stream_total or 0
                if not self._reconcile(pages, done + total, done=done):
                    # The cursors stay where they were: the next run reads again what this one
                    # did not reconcile, and the echoes of what it did are skipped.
                    return False
        if split:
            with self.db.begin() as conn:
                store.set_deciding(conn, self.sync, self.engine.owner, None)
            if not self.drain(wait=True):
                return False
        self._advance_cursors()
        return True

    def _read_all(self, spool: Spool) -> None:
        """Stage every reading system's changes and deletes; one that fails is dropped from
        the run.

        The systems are read at the same time, each on its own reader thread, and their pages
        staged here in turn: the pass waits for the slowest vendor, not for the sum of them.
        """
        readings = {
            name: self._read_system(runtime, spool)
            for name, runtime in self.systems.items()
            if runtime.reads and self.engine.live(name)
        }
        try:
            while readings:
                for name, reading in list(readings.items()):
                    try:
                        if next(reading, None) is None:
                            del readings[name]
                    except ConnectorError as exc:
                        del readings[name]
                        self._read_failed(name, exc)
        finally:
            for reading in readings.values():
                reading.close()

    def _read_failed(self, name: str, exc: ConnectorError) -> None:
        """A system whose read failed is dropped from the run; a refused record is raised."""
        if exc.action is Action.REJECT_RECORD:
            raise exc
        self.engine.fail_system(name, exc)

    def _stream_source(self) -> SystemRuntime | None:
        """The pass's one reading system, when its pages can be reconciled as they come in.

        That takes a single reading system (nothing read elsewhere can match what it sends, as
        in a one-way sync or a migration) that this pass does not write to (its connector is
        called on the reader thread while the writers send). Not for a dry run, whose
        uncommitted plans a later page could not match against, nor a split run, which shares
        out what a whole read staged.
        """
        if self.dry_run or self.engine.splitter is not None:
            return None
        readers = [
            runtime
            for name, runtime in self.systems.items()
            if runtime.reads and self.engine.live(name)
        ]
        if len(readers) != 1 or readers[0].writes:
            return None
        return readers[0]

    def _streamed_pages(self, source: SystemRuntime, spool: Spool) -> Generator[_Page, None, None]:
        """Pages to reconcile, as ``source``'s pages come in: staged, then matched, then handed
        over a page size at a time while the next are read (vendor latency on both sides
        overlaps, and the first records arrive before the last are read).

        A record matches the records of earlier pages through the keys their commits stored,
        as it would match a record of an earlier run. Deletes are read first, so the
        mass-delete guard stands before any write.
        """
        reading = self._read_system(source, spool, streamed=True)
        handed = 0
        last = False
        try:
            while not last:
                try:
                    last = not next(reading, False)
                except ConnectorError as exc:
                    self._read_failed(source.name, exc)
                    last = True
                if not last and spool.count_live() < self.engine.page_size:
                    continue
                # Ids minted from here on are new to the store; those minted before are in it.
                self._id_prefix = _id_prefix()
                self._identify(spool)
                pages = spool.take_live_groups(self.engine.page_size)
                if last:
                    # The read is over: the progress bar can show the whole, and an ETA.
                    self._stream_total = handed + sum(len(page) for page in pages)
                for page in pages:
                    handed += len(page)
                    yield page, None
            for _ in reading:
                pass  # the read's own end, which finds where its cursor can move to
        finally:
            reading.close()

    def _start_split(self, total: int) -> None:
        """Start the worker tasks, which take each page as soon as it is committed and wait
        for more while the lease says this object type is being shared out."""
        assert self.engine.splitter is not None
        assert self.run_id is not None
        with self.db.begin() as conn:
            store.set_deciding(conn, self.sync, self.engine.owner, self.object_type)
        log.info(
            "split run: %d %s to reconcile; worker tasks share out its pages",
            total,
            self.object_type,
        )
        self.engine.splitter(self.object_type, self.run_id, self.engine.owner)

    def _share_pages(self, spool: Spool, total: int) -> None:
        """Commit every page for the split run's workers, one transaction each so that they
        can start on the first while the rest are written."""
        shared = 0
        for page in spool.groups(self.engine.page_size):
            now = self.engine.clock()
            row = _page_row(page, self.engine.order, self.stale, self.stampless)
            row["minted"] = self._id_prefix
            with self.db.begin() as conn:
                store.add_split_page(conn, self.sync, self.object_type, self.run_id or 0, row, now)
                if not store.renew_lease(conn, self.sync, self.engine.owner, now, LEASE_TTL):
                    raise LeaseHeldError(f"sync {self.sync!r}: lost the lease to another process")
            shared += len(page)
            self._progress("share", "", shared, total)

    def _reconcile(self, pages: Iterable[_Page], total: int | None, *, done: int = 0) -> bool:
        """Decide, commit and send page after page; False when asked to stop. ``done`` and
        ``total`` are for the progress bar."""
        # A page's vendor writes go out on the writer threads while the next page is decided
        # and committed here: vendor latency and our CPU overlap. Only the writers call the
        # connectors meanwhile, and only this thread touches the database and report.
        in_flight: _InFlight | None = None
        with _Senders(self.systems, self._targets()) as senders:
            for page, claim in pages:
                try:
                    decided = self._decide(page, claim=claim)
                except _ClaimLost:
                    log.warning("a split run's page was taken over by another worker")
                    decided = None
                if in_flight is not None:
                    self._finish(in_flight)
                    in_flight = None
                if decided is not None:
                    in_flight = self._start_writes(decided, senders)
                done += len(page)
                self._progress(
                    "send" if claim else "reconcile", "", done, total or self._stream_total
                )
                if self.engine.should_stop():
                    if in_flight is not None:
                        self._finish(in_flight)
                    return False
            if in_flight is not None:
                self._finish(in_flight)
        return True

    def drain(self, *, wait: bool) -> bool:
        """Reconcile a split run's pages, claiming one at a time; with ``wait``, then wait until
        no other worker holds one (the join). False when asked to stop first."""
        if not self._reconcile(self._claimed_pages(), None):
            return False
        while wait:
            with self.db.connect() as conn:
                free, held = store.split_outstanding(
                    conn,
                    self.sync,
                    self.object_type,
                    self.engine.clock(),
                    holder_is_gone=owner_is_gone,
                )
            if held == 0 and free == 0:
                break
            if free:
                # A worker died holding a page, or left before the last was claimed.
                if not self._reconcile(self._claimed_pages(), None):
                    return False
                continue
            if self.engine.should_stop():
                return False
            self.engine.keep_lease()
            time.sleep(SPLIT_POLL_SECONDS)
        return True

    def _claimed_pages(self) -> Iterator[_Page]:
        """Pages of a split run this worker claims, one at a time, while any is left to claim
        and the run that shared them out still holds the lease."""
        engine = self.engine
        while not engine.should_stop():
            now = engine.clock()
            with self.db.begin() as conn:
                lease = store.lease_of(conn, self.sync)
                if engine.helping is not None and (
                    lease is None
                    or lease.owner != engine.owner
                    or lease.expires_at < now
                    or owner_is_gone(lease.owner)
                ):
                    return  # the run is over, or another run took over: it sends the rest
                claim = store.claim_split_page(
                    conn,
                    self.sync,
                    self.object_type,
                    engine.claimant,
                    now,
                    LEASE_TTL,
                    holder_is_gone=owner_is_gone,
                )
            if claim is None:
                if engine.helping is not None and lease and lease.deciding == self.object_type:
                    time.sleep(SPLIT_POLL_SECONDS)  # the run is still sharing pages out
                    continue
                return
            self.pages_claimed += 1
            page, stale, stampless = _page_from_row(claim.page)
            # What the run knew of these records from its reads and earlier runs.
            self.stale.update(stale)
            self.stampless.update(stampless)
            yield page, claim

    # ------------------------------------------------------------------ 1. read

    def _read_system(
        self, runtime: SystemRuntime, spool: Spool, *, streamed: bool = False
    ) -> Generator[bool, None, None]:
        """Stage one system's changes, yielding after each page whether more follow, then its
        deletes; ``streamed``, its deletes first (then the mass-delete guard), as the pages
        yielded are reconciled before the read ends."""
        name = runtime.name
        with self.db.connect() as conn:
            cursor = store.get_cursor(conn, self.sync, name, self.object_type)
            # Its first sync: no page can hold a linked record, so none is looked up; unless
            # streamed, when a record read twice (edited while we page) was linked meanwhile.
            if not streamed and not store.has_links(conn, self.sync, self.object_type, name):
                self.never_linked.add(name)
        since = cursor - self.spec.overlap if cursor is not None else None
        high = cursor
        started = self.engine.clock()
        limit = runtime.read_limit
        if streamed and limit is None:
            self._read_deletes(runtime, since, started, spool)
            self._guard_mass_deletes()
        fields = self._fields_to_read(runtime)
        read = fetched = 0
        connector = runtime.connector

        def fetch(token: str | None) -> Page:
            nonlocal fetched
            page = connector.read_changes(self.object_type, since, token, fields)
            fetched += len(page.records)
            if limit is not None and fetched >= limit:
                return replace(page, next_token=None)  # a sample reads no further
            return page

        # The next pages are fetched while this one is mapped, staged (and, streamed,
        # reconciled): the vendor's latency and our CPU overlap. One reader thread, so the
        # connector is never called concurrently.
        pages = read_ahead(fetch, depth=READ_AHEAD_PAGES, name=f"read-{name}")
        try:
            for page in pages:
                records = page.records
                if limit is not None and read + len(records) >= limit:
                    records = records[: limit - read]
                self._stage(runtime, records, spool)
                for record in records:
                    if high is None or record.modified_at > high:
                        high = record.modified_at
                read += len(records)
                self._progress("read", name, read, None)
                self.engine.keep_lease()
                yield page.next_token is not None
        finally:
            self.never_linked.discard(name)
            pages.close()
        if limit is not None:
            # A sample is not the whole: the cursor stays, and deletes wait for a full run.
            self.high_water[name] = None
            return
        if since is None and high is not None and high > started:
            # A full read may list records in id order (HubSpot): one edited after the read
            # passed it carries a stamp older than the newest seen, so the cursor stops at the
            # read's start.
            high = started
        quiet_floor = started - self.spec.overlap
        if high is None or high < quiet_floor:
            # Everything the vendor stamped before the read began has been seen (the overlap
            # absorbs clock skew and search-index lag): a quiet object type's cursor follows
            # time, or every run would re-read the last burst of activity behind it forever.
            high = quiet_floor
        if not streamed:
            self._read_deletes(runtime, since, started, spool)
        self.high_water[name] = high

    def _read_deletes(
        self, runtime: SystemRuntime, since: datetime | None, started: datetime, spool: Spool
    ) -> None:
        name = runtime.name
        if self.spec.deletes != "ignore" and runtime.connector.capabilities.detects_deletes:
            deleted_token: str | None = None
            while True:
                deleted = runtime.connector.read_deletes(self.object_type, since, deleted_token)
                self._stage_deletes(name, deleted.records, spool)
                deleted_token = deleted.next_token
                if not deleted_token:
                    break
        elif self.spec.deletes != "ignore" and isinstance(runtime.connector, SweepsIds):
            self._sweep_deletes(name, runtime.connector, started, spool)

    def _sweep_deletes(
        self, name: str, connector: SweepsIds, started: datetime, spool: Spool
    ) -> None:
        """For a vendor that never reports deletes: now and then, every linked id it no longer
        lists is a delete. The mass-delete guard applies, as to any delete."""
        with self.db.connect() as conn:
            last = store.last_sweep(conn, self.sync, name, self.object_type)
        if last is not None and started - last < self.spec.delete_sweep:
            return
        live: set[str] = set()
        token: str | None = None
        while True:
            ids, token = connector.list_ids(self.object_type, token)
            live.update(ids)
            self.engine.keep_lease()
            if not token:
                break
        gone: list[str] = []
        after = ""
        with self.db.connect() as conn:
            while True:
                linked = store.linked_remote_ids(
                    conn, self.sync, self.object_type, name, after, 1000
                )
                if not linked:
                    break
                gone.extend(remote_id for remote_id in linked if remote_id not in live)
                after = linked[-1]
        log.info(
            "%s: swept %d live %s ids for deletes; %d linked ones are gone",
            name,
            len(live),
            self.object_type,
            len(gone),
            extra={
                "system": name,
                "object": self.object_type,
                "live": len(live),
                "gone": len(gone),
            },
        )
        self._stage_deletes(
            name, [RemoteRecord(remote_id, started, {}, deleted=True) for remote_id in gone], spool
        )
        self.swept[name] = started

    def _fields_to_read(self, runtime: SystemRuntime) -> list[str]:
        """The vendor fields of the map, less references to object types this sync leaves out:
        they could never resolve, and HubSpot spends a call per page on each."""
        fieldmap = runtime.fieldmap
        unused = {
            fieldmap.vendor_field(self.object_type, name)
            for name, target in fieldmap.reference_fields(self.object_type).items()
            if target not in self.spec.objects
        }
        return [name for name in fieldmap.vendor_fields(self.object_type) if name not in unused]

    def _stage(self, runtime: SystemRuntime, records: Sequence[RemoteRecord], spool: Spool) -> None:
        name = runtime.name
        self.report.count(self.object_type, name, "read", len(records))
        if not records:
            return
        merges = {record.id: record.merged_ids for record in records if record.merged_ids}
        if merges and not self.dry_run:
            with self.db.begin() as conn:
                store.follow_merges(
                    conn,
                    self.sync,
                    self.object_type,
                    name,
                    merges,
                    self.report.run_id,
                    self.engine.clock(),
                )
        # One read connection for the page: its links, then its references.
        with self.db.connect() as conn:
            known = (
                {}
                if name in self.never_linked
                else store.links_by_remote(
                    conn, self.sync, self.object_type, name, [record.id for record in records]
                )
            )
            mapped = self._map_page(runtime, records, known)
            if mapped:
                incomplete = self._refs_to_canonical(conn, name, [values for _, values in mapped])
                # Such a record is looked at again by every run until its references resolve
                # (the record they name is synced later, or its failure fixed): its link keeps
                # no modified time for the cheap "seen this version" test to match.
                self.stampless.update((name, mapped[i][0].id) for i in incomplete)
                self.engine.observer.mapped(
                    self.object_type, name, [values for _, values in mapped]
                )
        if not mapped:
            return
        rows = []
        for record, values in mapped:
            digest = content_hash(values)
            link = known.get(record.id)
            if link is not None and link.remote_hash == digest:
                self.report.count(self.object_type, name, "unchanged")
                continue
            rows.append(
                (
                    name,
                    record.id,
                    record.modified_at,
                    values,
                    digest,
                    link.canonical_id if link else None,
                    False,
                )
            )
        spool.add_many(rows)
        fixed = [
            self.failures.pop(key)
            for key in ((name, "map", record.id) for record, _ in mapped)
            if key in self.failures
        ]
        if fixed and not self.dry_run:
            with self.db.begin() as conn:
                store.close_failures(conn, fixed)

    def _map_page(
        self,
        runtime: SystemRuntime,
        records: Sequence[RemoteRecord],
        known: Mapping[str, store.Link],
    ) -> list[tuple[RemoteRecord, dict[str, Any]]]:
        """Map the records whose version is new to us; dead-letter those that cannot be."""
        name = runtime.name
        mapped: list[tuple[RemoteRecord, dict[str, Any]]] = []
        # A stamp coarser than a millisecond can hide an edit made just after our own write.
        trust_stamps = runtime.connector.capabilities.modified_precision <= timedelta(
            milliseconds=1
        )
        for record in records:
            link = known.get(record.id)
            if trust_stamps and link is not None and link.remote_modified_at == record.modified_at:
                # The very version we last saw or wrote (the overlap window re-reads it, and
                # our own writes come back once): the cheap token says nothing changed.
                self.report.count(self.object_type, name, "unchanged")
                continue
            try:
                values = runtime.fieldmap.to_canonical(
                    self.object_type, record.fields, default_region=runtime.phone_region
                )
            except MappingError as exc:
                self.engine.observer.unmappable(self.object_type, name, record.id, exc)
                self._dead_letter(
                    name,
                    "map",
                    reasons.unmappable(name, self.object_type, record.id, exc),
                    remote_id=record.id,
                    payload=dict(record.fields),
                )
                continue
            mapped.append((record, values))
        return mapped

    def _stage_deletes(self, system: str, records: Sequence[RemoteRecord], spool: Spool) -> None:
        if not records:
            return
        with self.db.connect() as conn:
            known = store.links_by_remote(
                conn, self.sync, self.object_type, system, [r.id for r in records]
            )
        rows = [
            (system, r.id, r.modified_at, None, None, known[r.id].canonical_id, True)
            for r in records
            if r.id in known
        ]
        self.deletes_seen[system] += len(rows)
        spool.add_many(rows)

    def _guard_mass_deletes(self) -> None:
        if self.spec.deletes == "ignore" or self.allow_mass_delete:
            return
        with self.db.connect() as conn:
            for system, seen in self.deletes_seen.items():
                linked = store.count_links(conn, self.sync, self.object_type, system)
                # A handful of deletes is ordinary, unless it is every record the system had:
                # then it is a system that suddenly lists nothing (emptied, or the wrong account).
                significant = seen > MASS_DELETE_MINIMUM or seen >= linked > 1
                if significant and seen > linked * self.spec.max_delete_fraction:
                    raise MassDeleteError(
                        f"{system} reports {seen} of its {linked} linked {self.object_type} "
                        f"deleted, more than max_delete_fraction="
                        f"{self.spec.max_delete_fraction}; nothing was deleted. If this is "
                        "intended, run again with --allow-mass-delete"
                    )

    def _revisit(self, spool: Spool) -> None:
        """Stage the records the hub itself owes a write: pending intents, resolved conflicts,
        failures due for a retry."""
        with self.db.connect() as conn:
            ids = {cid for cid, _ in self.stale}
            ids.update(store.resolved_conflict_ids(conn, self.sync, self.object_type))
            due = store.due_dead_letters(conn, self.sync, self.object_type, self.engine.clock())
        ids.update(d.canonical_id for d in due if d.stage == "write" and d.canonical_id)
        spool.revisit(sorted(ids))
        reread: dict[str, list[str]] = defaultdict(list)
        for dead in due:
            if dead.stage in ("map", "duplicate") and dead.remote_id:
                reread[dead.system].append(dead.remote_id)
        for system, remote_ids in reread.items():
            runtime = self.systems.get(system)
            if runtime is None or not self.engine.live(system):
                continue
            fields = self._fields_to_read(runtime)
            try:
                records = runtime.connector.read(self.object_type, remote_ids, fields)
            except ConnectorError as exc:
                self.engine.fail_system(system, exc)
                continue
            self._stage(runtime, records, spool)

    def _refs_to_canonical(self, conn: Any, system: str, batch: list[dict[str, Any]]) -> set[int]:
        """Replace the vendor ids in reference fields by canonical ids, through the links.
        Returns the positions in ``batch`` of records that lost a reference the hub does not
        know (yet)."""
        incomplete: set[int] = set()
        for ref_field, target in self.planner.references.items():
            remote_ids: set[str] = set()
            for values in batch:
                value = values.get(ref_field)
                if isinstance(value, list):
                    remote_ids.update(value)
                elif value is not None:
                    remote_ids.add(value)
            if not remote_ids:
                continue
            links = store.links_by_remote(conn, self.sync, target, system, sorted(remote_ids))
            known = {remote_id: link.canonical_id for remote_id, link in links.items()}
            if self.dry_run and len(known) < len(remote_ids):
                known.update(
                    self.engine.planned.canonical_ids(target, system, remote_ids - known.keys())
                )
            for position, values in enumerate(batch):
                value = values.get(ref_field)
                if isinstance(value, list):
                    translated = sorted({known[v] for v in value if v in known})
                    if len(translated) < len(value):
                        incomplete.add(position)
                    if translated:
                        values[ref_field] = translated
                    else:
                        values.pop(ref_field)
                elif value is not None:
                    # A reference to a record the hub does not know (not synced, or failed)
                    # is left out rather than guessed.
                    if value in known:
                        values[ref_field] = known[value]
                    else:
                        values.pop(ref_field)
                        incomplete.add(position)
        return incomplete

    # ------------------------------------------------------------------ 2. identify

    def _new_id(self) -> str:
        """A new canonical id: 32 hex digits, increasing within a pass.

        Time first, then a random per-pass prefix, then a counter: unique without coordination,
        and ordered, so the indexes on canonical ids grow at their end rather than at random
        places (a uuid4 made the state database's inserts a quarter slower). The prefix also
        tells the records minted in this pass from those the store already holds.
        """
        self._ids_made += 1
        return f"{self._id_prefix}{self._ids_made:08x}"

    def _identify(self, spool: Spool) -> None:
        # Up to this many unlinked records the matcher's groups stay in memory (tens of MB at
        # most); beyond, they live in the spool so memory stays flat however large the account.
        on_disk = spool.count_unlinked() > MATCH_IN_MEMORY_LIMIT
        matcher = Matcher(self.rules, spool.group_index() if on_disk else None)
        # A record deleted in this pass no longer holds its place: a new record with the same
        # key (deleted and created again) is not its duplicate, and under `propagate` the
        # whole canonical record is going away.
        if self._deleting is None:
            # Every delete is staged before the first call (a streamed pass reads them first).
            self._deleting = spool.deletions()
        deleting = self._deleting
        with self.db.connect() as conn:
            # Before this object type's first sync no canonical record holds a key to match.
            keyed = store.has_match_keys(conn, self.sync, self.object_type)
        for batch in spool.unlinked(1000):
            keys = {staged.seq: record_keys(staged.values, self.rules) for staged in batch}
            batch_keys = all_keys(keys.values())
            matcher.prefetch(batch_keys)
            candidates = []
            if keyed:
                with self.db.connect() as conn:
                    candidates = store.match_candidates(
                        conn, self.sync, self.object_type, batch_keys
                    )
            for base, members in candidates:
                gone = deleting.get(base.canonical_id, set())
                if gone and self.spec.deletes == "propagate":
                    continue
                members = {system: rid for system, rid in members.items() if system not in gone}
                matcher.add_existing(
                    base.canonical_id, record_keys(base.values, self.rules), members
                )
            assignments: list[tuple[str, str, int]] = []
            duplicates: list[int] = []
            no_longer_duplicates: list[int] = []
            for staged in batch:
                assert staged.system is not None
                assert staged.remote_id is not None
                outcome = matcher.assign(
                    staged.system, staged.remote_id, keys[staged.seq], self._new_id()
                )
                if outcome.duplicate_of is not None:
                    duplicates.append(staged.seq)
                    self.report.count(self.object_type, staged.system, "duplicates")
                    self.engine.observer.duplicate(
                        self.object_type,
                        staged.system,
                        staged.remote_id,
                        outcome.duplicate_of,
                        outcome.rule,
                    )
                    self._dead_letter(
                        staged.system,
                        "duplicate",
                        f"{self.object_type} {staged.remote_id} has the same "
                        f"{outcome.rule.removeprefix('matched on ')} as {staged.system} record "
                        f"{outcome.duplicate_of}; merge the two in {staged.system} (crmhub "
                        "never merges records inside one system)",
                        remote_id=staged.remote_id,
                        payload=staged.values,
                    )
                    continue
                assert outcome.canonical_id is not None
                if outcome.matched:
                    self.report.count(self.object_type, staged.system, "matched")
                assignments.append((outcome.canonical_id, outcome.rule, staged.seq))
                fixed = self.failures.pop((staged.system, "duplicate", staged.remote_id), None)
                if fixed is not None:
                    no_longer_duplicates.append(fixed)
            matcher.flush()
            spool.assign(assignments)
            spool.drop(duplicates)
            self._matched += len(batch)
            self._progress("match", "", self._matched, None)
            if no_longer_duplicates and not self.dry_run:
                with self.db.begin() as conn:
                    store.close_failures(conn, no_longer_duplicates)

    # ------------------------------------------------------------------ 3. reconcile

    def _decide(
        self, page: list[tuple[str, list[Staged]]], *, claim: store.SplitPage | None = None
    ) -> _Decided | None:
        """Plan the page and commit the decisions and the intents of its vendor writes; with
        ``claim``, taking the split run's page row out in the same transaction."""
        now = self.engine.clock()
        # A canonical record minted in this pass has nothing in the store before its page's
        # commit (no base, no link, no conflict): only the others are looked up. A split run's
        # page says which pass minted its new ids.
        minted = claim.page["minted"] if claim is not None else self._id_prefix
        stored = [cid for cid, _ in page if not cid.startswith(minted)]
        bases: dict[str, store.BaseRecord] = {}
        linked: dict[str, dict[str, store.Link]] = {}
        known_conflicts: dict[tuple[str, str], store.ConflictRow] = {}
        if stored:
            with self.db.connect() as conn:
                bases = store.base_records(conn, self.sync, self.object_type, stored)
                linked = store.links_by_canonical(conn, self.sync, self.object_type, stored)
                known_conflicts = store.conflicts_for(
                    conn, self.sync, self.object_type, stored, ("open", "resolved")
                )
        resolutions: dict[str, dict[str, Any]] = defaultdict(dict)
        # Fields waiting for a person, and the value each system held when the wait began.
        waiting: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for (cid, name), row in known_conflicts.items():
            if row.status == "resolved":
                resolutions[cid][name] = row.resolution
            else:
                waiting[cid][name] = {
                    system: candidate.get("value")
                    for system, candidate in (row.candidates or {}).items()
                }
        plans = [
            self._plan(
                cid,
                staged,
                bases.get(cid),
                dict(linked.get(cid, {})),
                resolutions.get(cid),
                waiting.get(cid, {}),
                now,
            )
            for cid, staged in page
        ]
        self._remote_refs = self._canonical_refs_to_remote(plans)
        writes, unwritable = self.planner.writes(plans, self._targets(), self._remote_refs)
        self._dead_letter_unwritable(plans, unwritable)
        if self.dry_run:
            self._report_planned(plans, writes)
            self.engine.observer.planned(self.object_type, plans, writes)
            self._remember_planned_links(plans, writes)
            return None
        # First commit: what the hub decided (identities, base values, conflicts) and the
        # intents of every vendor write it is about to make. A crash after it leaves intents
        # that the next run honours; a crash before it leaves nothing but cursors to re-read.
        decided = store.PageWrites()
        self.ledger.decisions(plans, known_conflicts, decided, now, self.stale, self.stampless)
        intents: list[store.Intent] = [(w.canonical_id, w.system, w.kind) for w in writes]
        intents += self._owed_to_failed(plans)
        run_id = claim.run_id if claim is not None else self.run_id or 0
        with self.db.begin() as conn:
            if claim is not None and not store.take_split_page(
                conn, claim.id, self.engine.claimant
            ):
                raise _ClaimLost
            store.commit_page(conn, self.sync, self.object_type, decided)
            intents_row = store.add_pending(
                conn,
                self.sync,
                self.object_type,
                intents,
                run_id,
                now,
                claimed_by=self.engine.claimant if claim is not None else None,
                claimed_until=now + LEASE_TTL if claim is not None else None,
            )
            if not store.renew_lease(conn, self.sync, self.engine.owner, now, LEASE_TTL):
                raise LeaseHeldError(f"sync {self.sync!r}: lost the lease to another process")
        return _Decided(writes, intents, intents_row, now)

    def _remember_planned_links(self, plans: list[Plan], writes: list[Write]) -> None:
        if self.object_type not in self.engine.referenced:
            return  # nothing later refers to these records (deals)
        links = [
            (system, version.remote_id, plan.canonical_id)
            for plan in plans
            for system, version in plan.new_links.items()
        ]
        links += [(w.system, PLANNED_ID, w.canonical_id) for w in writes if w.kind == "create"]
        self.engine.planned.add(self.object_type, links)

    def _dead_letter_unwritable(self, plans: list[Plan], unwritable: list[Unwritable]) -> None:
        """Records a target's field map cannot write fail alone; the rest of the page goes on."""
        by_id = {plan.canonical_id: plan for plan in plans}
        for item in unwritable:
            self.engine.observer.unwritable(
                self.object_type, item.system, item.canonical_id, item.error
            )
            plan = by_id[item.canonical_id]
            elsewhere = {name: link.remote_id for name, link in plan.links.items()}
            elsewhere.update({name: v.remote_id for name, v in plan.versions.items()})
            elsewhere.pop(item.system, None)
            self.report.count(self.object_type, item.system, "failed")
            self._dead_letter(
                item.system,
                "write",
                reasons.unwritable(
                    item.system,
                    self.object_type,
                    item.remote_id or item.canonical_id,
                    elsewhere,
                    item.error,
                ),
                canonical_id=item.canonical_id,
                remote_id=item.remote_id,
                payload=plan.values,
            )

    def _start_writes(self, decided: _Decided, senders: _Senders) -> _InFlight:
        """Send the page's vendor writes on the writer threads (none may be in flight)."""
        written = store.PageWrites()
        # A lookup before re-creating an interrupted create calls the vendor: here, while no
        # other call is in flight.
        writes = self._recover_interrupted_creates(decided.writes, written, decided.now)
        by_system: dict[str, list[Write]] = defaultdict(list)
        for write in writes:
            by_system[write.system].append(write)
        sent = [
            senders.writers.submit(
                carry_context(self._send_all), name, by_system[name], senders.batches.get(name)
            )
            for name in sorted(by_system, key=self.engine.order.index)
        ]
        return _InFlight(decided, written, writes, sent)

    def _finish(self, in_flight: _InFlight) -> None:
        """Take in the vendors' answers and commit them: the page's second commit."""
        decided, written = in_flight.decided, in_flight.written
        self._absorb(
            [batch for future in in_flight.sent for batch in future.result()], written, decided.now
        )
        with self.db.begin() as conn:
            store.commit_page(conn, self.sync, self.object_type, written)
            for system, merges in sorted(written.merges.items()):
                store.follow_merges(
                    conn, self.sync, self.object_type, system, merges, self.run_id, decided.now
                )
            if decided.intents_row is not None:
                owed = [i for i in decided.intents if (i[0], i[1]) not in written.done]
                store.settle_pending(conn, decided.intents_row, owed)
            helping = self.engine.helping
            if helping is not None and self.run_id is not None:
                # A split run's worker: the run reports what its workers sent.
                counts = self.report.as_dict()["counts"]
                store.add_run_counts(conn, self.run_id, counts)
                self.report.counts.clear()
                helping.add_counts(counts)

    def _plan(
        self,
        cid: str,
        staged: list[Staged],
        base: store.BaseRecord | None,
        links: dict[str, store.Link],
        resolutions: Mapping[str, Any] | None,
        waiting: Mapping[str, Mapping[str, Any]],
        now: datetime,
    ) -> Plan:
        versions: dict[str, Version] = {}
        new_links: dict[str, Version] = {}
        deleted_in: list[str] = []
        for item in staged:
            if item.system is None or item.system not in self.systems:
                continue
            if item.deleted:
                deleted_in.append(item.system)
                continue
            assert item.remote_id is not None
            assert item.hash is not None
            assert item.modified_at is not None
            fresh = item.system not in links
            version = Version(
                item.system, item.remote_id, item.values, item.hash, item.modified_at, fresh
            )
            versions[item.system] = version
            if fresh:
                new_links[item.system] = version
        plan = Plan(
            cid,
            base,
            dict(base.values) if base else {},
            versions,
            links,
            new_links,
            [],
            rules={item.system: item.rule or "" for item in staged if item.system},
            deleted_in=deleted_in,
            held_values=_held_by_system(waiting),
        )
        if deleted_in and self.spec.deletes == "propagate":
            plan.deleted = True
            return plan
        for system in deleted_in:
            # unlink: the other systems keep their record; this one is detached from it.
            versions.pop(system, None)
        if base is not None and base.deleted:
            plan.deleted = True
            return plan
        linked_times = {
            system: link.remote_modified_at
            for system, link in links.items()
            if system not in new_links
        }
        # A capped list (Zoho's one contact per deal) holding the first ids of the base, or at
        # first link of another system's list, is that list, not a removal of the rest.
        merged_from = []
        for version in versions.values():
            fuller: list[Mapping[str, Any]] = [base.values] if base is not None else []
            fuller += [v.values for v in versions.values() if v is not version]
            widened = self.planner.widened(version.system, version.values, fuller)
            merged_from.append(
                version if widened is version.values else replace(version, values=widened)
            )
        result: MergeResult = merge_record(
            self.object_type,
            base.values if base else None,
            merged_from,
            self.planner.coverage,
            linked_times,
            self.spec.policy,
            resolutions,
            waiting,
        )
        plan.values = result.values
        plan.conflicts = result.conflicts
        plan.waiting = result.open_fields
        plan.sources = result.sources
        return plan

    def _targets(self) -> list[str]:
        return [
            name
            for name, runtime in self.systems.items()
            if runtime.writes and self.engine.live(name)
        ]

    def _canonical_refs_to_remote(self, plans: list[Plan]) -> dict[str, dict[str, dict[str, str]]]:
        """For each referenced canonical id: system → remote id, one query per target type."""
        result: dict[str, dict[str, dict[str, str]]] = {}
        for ref_field, target in self.planner.references.items():
            ids: set[str] = set()
            for plan in plans:
                for values in (plan.values, plan.base.values if plan.base else {}):
                    value = values.get(ref_field)
                    if isinstance(value, list):
                        ids.update(value)
                    elif value is not None:
                        ids.add(value)
            if not ids:
                continue
            with self.db.connect() as conn:
                links = store.links_by_canonical(conn, self.sync, target, ids)
            table = result.setdefault(target, {})
            for cid, by_system in links.items():
                table[cid] = {system: link.remote_id for system, link in by_system.items()}
            if self.dry_run and target in self.engine.referenced:
                for cid, planned in self.engine.planned.remote_ids(target, ids).items():
                    table[cid] = {**planned, **table.get(cid, {})}
        return result

    def _owed_to_failed(self, plans: list[Plan]) -> list[tuple[str, str, str]]:
        """Intents for systems dropped from this run, so the next run brings them up to date."""
        owed: list[tuple[str, str, str]] = []
        for name, runtime in self.systems.items():
            if runtime.writes and not self.engine.live(name):
                owed.extend((plan.canonical_id, name, "revisit") for plan in plans)
        return owed

    # ------------------------------------------------------------------ 4. write

    def _recover_interrupted_creates(
        self,
        writes: list[Write],
        page: store.PageWrites,
        now: datetime,
    ) -> list[Write]:
        """A create that an earlier run started but never committed may have happened on the
        vendor: look the record up by its match keys before creating it again."""
        remaining: list[Write] = []
        for write in writes:
            if (
                write.kind != "create"
                or self.stale.get((write.canonical_id, write.system)) != "create"
            ):
                remaining.append(write)
                continue
            runtime = self.systems[write.system]
            if self.object_type in runtime.connector.capabilities.upsert_keys:
                remaining.append(write)  # the vendor upserts: creating again is harmless
                continue
            if not self.engine.live(write.system):
                continue  # dropped from this run: the intent stays for the next one
            try:
                found = self._lookup(runtime, write.view)
            except ConnectorError as exc:
                # Creating it without knowing could duplicate it: the intent stays, and the
                # next run looks again. Refused credentials drop the system, as anywhere else.
                if exc.action is Action.FAIL_RUN:
                    self.engine.fail_system(write.system, exc)
                else:
                    self.report.errors.append(f"{write.system}: {exc.message}")
                continue
            if found is None:
                remaining.append(write)
                continue
            record, values = found
            digest = content_hash(values)
            rule = "recovered after an interrupted create"
            page.new_links.append(
                self.ledger.link_row(
                    write.canonical_id,
                    write.system,
                    record.id,
                    record.modified_at,
                    digest,
                    rule,
                    now,
                )
            )
            page.audit.extend(
                (
                    self.ledger.interrupted_create(
                        write.system, record.id, write.canonical_id, values, now
                    ),
                    self.ledger.audit(
                        write.system, record.id, write.canonical_id, "link", None, rule, now
                    ),
                )
            )
            page.done.add((write.canonical_id, write.system))
            fields = sorted(
                name
                for name in self.planner.writable[write.system]
                if write.view.get(name) != values.get(name)
            )
            if fields:
                payload = self.planner.to_vendor(
                    write.system, write.view, fields, self._remote_refs
                )
                changes = {name: [values.get(name), write.view.get(name)] for name in fields}
                remaining.append(
                    Write(
                        write.canonical_id,
                        write.system,
                        "update",
                        payload,
                        write.view,
                        write.view_hash,
                        changes,
                        remote_id=record.id,
                        reason=write.reason,
                    )
                )
        return remaining

    def _lookup(
        self, runtime: SystemRuntime, view: Mapping[str, Any]
    ) -> tuple[RemoteRecord, dict[str, Any]] | None:
        fieldmap = runtime.fieldmap
        want = content_hash(view)
        own_keys = record_keys(view, self.rules)
        for rule in self.rules:
            for name in rule:
                value = view.get(name)
                if value is None or name in self.planner.references:
                    continue
                vendor_field = fieldmap.vendor_field(self.object_type, name)
                vendor_value = fieldmap.vendor_value(self.object_type, name, value)
                if vendor_field is None or vendor_value is None:
                    continue
                for record in runtime.connector.find(
                    self.object_type, vendor_field, [str(vendor_value)]
                ):
                    try:
                        values = fieldmap.to_canonical(
                            self.object_type, record.fields, default_region=runtime.phone_region
                        )
                    except MappingError:
                        continue
                    with self.db.connect() as conn:
                        self._refs_to_canonical(conn, runtime.name, [values])
                        taken = store.links_by_remote(
                            conn, self.sync, self.object_type, runtime.name, [record.id]
                        )
                    if taken:
                        continue
                    theirs = record_keys(values, self.rules)
                    if content_hash(values) == want or any(
                        own_keys.get(i) == theirs.get(i) is not None for i in own_keys
                    ):
                        return record, values
        return None

    def _send_all(self, system: str, writes: list[Write], batches: Executor | None) -> list[_Sent]:
        """Send one system's writes, batched, and keep each batch's answer in the order the
        batches were made: vendor calls only, so it runs on a writer thread. Deletes go first,
        then updates, then creates; with ``batches``, the batches of one kind go out on it
        side by side. A system that fails for good is sent nothing more (batches already on
        their way finish)."""
        runtime = self.systems[system]
        size = runtime.connector.capabilities.max_batch
        sent: list[_Sent] = []
        given_up = False

        def send(kind: str, chunk: list[Write]) -> _Sent | None:
            nonlocal given_up
            if given_up or not self.engine.live(system):
                return None  # its intents stay: the next run sends it
            try:
                return _Sent(system, kind, chunk, self._send(runtime, kind, chunk))
            except ConnectorError as exc:
                if exc.action not in (Action.RETRY, Action.BACKOFF):
                    given_up = True
                return _Sent(system, kind, chunk, None, exc)

        for kind in ("delete", "update", "create"):
            batch = [write for write in writes if write.kind == kind]
            chunks = [batch[start : start + size] for start in range(0, len(batch), size)]
            if batches is None or len(chunks) == 1:
                answers = [send(kind, chunk) for chunk in chunks]
            else:
                futures = [batches.submit(carry_context(send), kind, chunk) for chunk in chunks]
                answers = [future.result() for future in futures]
            sent.extend(answer for answer in answers if answer is not None)
        return sent

    def _absorb(self, sent: list[_Sent], page: store.PageWrites, now: datetime) -> None:
        """Record what the vendors answered, batch by batch, in the order sent."""
        for batch in sent:
            system, kind, chunk = batch.system, batch.kind, batch.chunk
            if not self.engine.live(system):
                continue
            if batch.error is not None:
                exc = batch.error
                if exc.action in (Action.RETRY, Action.BACKOFF):
                    # The outcome is unknown (a create may have happened): the intents stay,
                    # and the next run looks before it creates again.
                    self.report.errors.append(f"{system}: {exc.message}")
                    log.warning(
                        "%s %s batch to %s failed: %s",
                        kind,
                        self.object_type,
                        system,
                        exc.message,
                        extra={"system": system, "object": self.object_type, "records": len(chunk)},
                    )
                    continue
                self.engine.fail_system(system, exc)
                continue
            results = batch.results or []
            if len(results) != len(chunk):
                self.engine.fail_system(
                    system,
                    ConnectorError(
                        f"answered {len(results)} results for {len(chunk)} records",
                        system=system,
                    ),
                )
                continue
            for write, result in zip(chunk, results, strict=True):
                self._apply_result(write, result, page, now)

    def _send(self, runtime: SystemRuntime, kind: str, chunk: list[Write]) -> list[WriteResult]:
        connector = runtime.connector
        if kind == "create":
            return connector.create(self.object_type, [w.payload for w in chunk])
        if kind == "update":
            return connector.update(
                self.object_type, [(w.remote_id or "", w.payload) for w in chunk]
            )
        return connector.delete(self.object_type, [w.remote_id or "" for w in chunk])

    def _linked_elsewhere(self, canonical_id: str, system: str) -> dict[str, str]:
        """The record's ids on the other systems, so a dead letter names one a person finds."""
        with self.db.connect() as conn:
            linked = store.links_by_canonical(conn, self.sync, self.object_type, [canonical_id])
        return {
            name: link.remote_id
            for name, link in linked.get(canonical_id, {}).items()
            if name != system
        }

    def _apply_result(
        self, write: Write, result: WriteResult, page: store.PageWrites, now: datetime
    ) -> None:
        system, cid = write.system, write.canonical_id
        page.done.add((cid, system))
        if not result.ok:
            assert result.error is not None
            self.report.count(self.object_type, system, "failed")
            refusal = reasons.refused(
                system,
                self.object_type,
                write,
                self._linked_elsewhere(cid, system),
                result.error,
                self.systems[system].fieldmap,
            )
            self._dead_letter(
                system,
                "write",
                refusal,
                canonical_id=cid,
                remote_id=write.remote_id,
                payload=write.payload,
                page=page,
            )
            page.audit.append(
                self.ledger.audit(
                    system, write.remote_id, cid, "reject", write.changes, refusal, now
                )
            )
            return
        if write.kind == "delete":
            page.removed_links.append((cid, system))
            self.report.count(self.object_type, system, "deleted")
            page.audit.append(
                self.ledger.audit(system, write.remote_id, cid, "delete", None, write.reason, now)
            )
            return
        remote_id = result.remote_id or write.remote_id
        assert remote_id is not None
        if write.kind == "update" and write.remote_id and remote_id != write.remote_id:
            # The vendor merged the record and answered for the survivor: the link follows it
            # (or is detached when the survivor is linked already) when the page commits.
            page.merges.setdefault(system, {}).setdefault(remote_id, []).append(write.remote_id)
            self.report.count(self.object_type, system, "updated")
            page.audit.append(
                self.ledger.audit(
                    system, remote_id, cid, "update", write.changes, write.reason, now
                )
            )
            return
        row = self.ledger.link_row(
            cid, system, remote_id, result.modified_at, write.view_hash, "created by crmhub", now
        )
        if write.kind == "create":
            page.new_links.append(row)
            self.report.count(self.object_type, system, "created")
        else:
            page.changed_links.append(link_update(row))
            self.report.count(self.object_type, system, "updated")
        fixed = self.failures.pop((system, "write", cid), None)
        if fixed is not None:
            page.resolved_failures.append(fixed)
        page.audit.append(
            self.ledger.audit(system, remote_id, cid, write.kind, write.changes, write.reason, now)
        )

    # ------------------------------------------------------------------ helpers

    def _advance_cursors(self) -> None:
        if self.dry_run:
            return
        now = self.engine.clock()
        with self.db.begin() as conn:
            # Every record an earlier run left an intent for was revisited in this pass.
            store.drop_pending(conn, self.stale_rows)
            for system, position in self.high_water.items():
                if position is not None and self.engine.live(system):
                    store.set_cursor(conn, self.sync, system, self.object_type, position, now)
            for system, swept_at in self.swept.items():
                if self.engine.live(system):
                    store.mark_swept(conn, self.sync, system, self.object_type, swept_at, swept_at)

    def _report_planned(self, plans: list[Plan], writes: list[Write]) -> None:
        for plan in plans:
            for system in plan.new_links:
                self.report.count(self.object_type, system, "to_link")
            for conflict in plan.conflicts:
                for c in conflict.contenders:
                    if c.system != conflict.winner:
                        self.report.count(self.object_type, c.system, "conflicts")
        for write in writes:
            self.report.count(self.object_type, write.system, f"to_{write.kind}")
            if len(self.report.planned) < 1000:
                self.report.planned.append(
                    {
                        "object": self.object_type,
                        "system": write.system,
                        "action": write.kind,
                        "remote_id": write.remote_id,
                        "canonical_id": write.canonical_id,
                        "changes": write.changes,
                    }
                )

    def _dead_letter(
        self,
        system: str,
        stage: str,
        reason: str,
        *,
        remote_id: str | None = None,
        canonical_id: str | None = None,
        payload: Any = None,
        page: store.PageWrites | None = None,
    ) -> None:
        if stage == "map":
            self.report.count(self.object_type, system, "failed")
        log.info(
            "%s %s %s failed at %s: %s",
            system,
            self.object_type,
            remote_id or canonical_id,
            stage,
            reason,
            extra={
                "system": system,
                "object": self.object_type,
                "record": remote_id or canonical_id,
                "stage": stage,
            },
        )
        if self.dry_run:
            self.report.errors.append(f"{system} {self.object_type} {remote_id}: {reason}")
            return
        with self.db.begin() as conn:
            store.record_dead_letter(
                conn,
                sync=self.sync,
                system=system,
                object_type=self.object_type,
                stage=stage,
                reason=reason,
                remote_id=remote_id,
                canonical_id=canonical_id,
                payload=_jsonable(payload),
                run_id=self.run_id,
                now=self.engine.clock(),
            )

    def _progress(self, phase: str, system: str, done: int, total: int | None) -> None:
        if self.engine.progress is not None:
            self.engine.progress(f"{self.object_type}:{phase}", system, done, total)


def _id_prefix() -> str:
    """The start of the canonical ids a pass mints: the time, then 12 random hex digits."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(6).hex()}"


def _page_row(
    page: list[tuple[str, list[Staged]]],
    systems: Sequence[str],
    stale: Mapping[tuple[str, str], str],
    stampless: set[tuple[str, str]],
) -> dict[str, Any]:
    """A page as a split run stores it for its workers: its records, and what the pass knew of
    them beyond their values (intents earlier runs left, references not yet translated). The
    caller adds ``minted``, the prefix of the canonical ids the pass made."""
    records = [
        [
            cid,
            [
                [
                    s.system,
                    s.remote_id,
                    s.modified_at.isoformat() if s.modified_at else None,
                    s.values,
                    s.hash,
                    s.fresh,
                    s.deleted,
                    s.rule,
                ]
                for s in staged
            ],
        ]
        for cid, staged in page
    ]
    # Looked up per record of the page: the pass's sets may be far larger than one page.
    return {
        "records": records,
        "stale": [
            [cid, system, stale[(cid, system)]]
            for cid, staged in page
            for system in systems
            if (cid, system) in stale
        ],
        "stampless": [
            [s.system, s.remote_id]
            for _, staged in page
            for s in staged
            if (s.system, s.remote_id) in stampless
        ],
    }


def _page_from_row(
    row: Mapping[str, Any],
) -> tuple[list[tuple[str, list[Staged]]], dict[tuple[str, str], str], set[tuple[str, str]]]:
    page = [
        (
            cid,
            [
                Staged(
                    0,
                    system,
                    remote_id,
                    datetime.fromisoformat(modified) if modified else None,
                    values,
                    hash_,
                    cid,
                    fresh,
                    deleted,
                    rule,
                )
                for system, remote_id, modified, values, hash_, fresh, deleted, rule in staged
            ],
        )
        for cid, staged in row["records"]
    ]
    stale = {(cid, system): kind for cid, system, kind in row["stale"]}
    stampless = {(system, remote_id) for system, remote_id in row["stampless"]}
    return page, stale, stampless


def _held_by_system(waiting: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """field -> {system: value} as system -> {field: value}."""
    held: dict[str, dict[str, Any]] = defaultdict(dict)
    for name, by_system in waiting.items():
        for system, value in by_system.items():
            held[system][name] = value
    return dict(held)


def _log_outcome(report: RunReport) -> None:
    """The run's one summary event: how it ended, how long it took, and its counts."""
    seconds = ((report.finished_at or report.started_at) - report.started_at).total_seconds()
    summary = report.as_dict()
    log.info(
        "run %s in %.1f s: %d writes%s",
        report.status,
        seconds,
        report.writes,
        f"; exit {report.exit_code}" if report.exit_code else "",
        extra={
            "status": report.status,
            "seconds": round(seconds, 3),
            "writes": report.writes,
            "exit_code": report.exit_code,
            "dry_run": report.dry_run,
            "counts": summary["counts"],
            "failed_systems": [failure.system for failure in report.failures],
            "open_conflicts": report.open_conflicts,
            "failed_records": report.open_dead_letters,
        },
    )


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
