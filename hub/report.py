"""What one run of a sync did: counts per object type and system, failures, what waits.

Public entry points: :class:`RunReport`, :class:`SystemFailure`, :class:`RunObserver`.

The engine fills a report as it goes; the CLI prints it, ``--json`` serialises it (and a Celery
worker returns it so, read back by :meth:`RunReport.from_dict`), and its exit code is the
command's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hub.planning import Plan, Write
    from mappings.errors import MappingError


@dataclass
class SystemFailure:
    system: str
    message: str
    exit_code: int


@dataclass
class RunReport:
    """What one run did, by object type and system, plus what still needs a person."""

    sync: str
    run_id: int | None
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    counts: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Counter))
    )
    failures: list[SystemFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)
    open_conflicts: int = 0
    open_dead_letters: int = 0

    def count(self, object_type: str, system: str, what: str, n: int = 1) -> None:
        self.counts[object_type][system][what] += n

    def add_counts(self, counts: Mapping[str, Mapping[str, Mapping[str, int]]]) -> None:
        """Add counts shaped as :meth:`as_dict` gives them (object type → system → n)."""
        for object_type, systems in counts.items():
            for system, counter in systems.items():
                for what, n in counter.items():
                    self.count(object_type, system, what, n)

    def total(self, what: str) -> int:
        return sum(c[what] for systems in self.counts.values() for c in systems.values())

    @property
    def writes(self) -> int:
        return sum(self.total(kind) for kind in ("created", "updated", "deleted"))

    @property
    def exit_code(self) -> int:
        if self.failures:
            return max(f.exit_code for f in self.failures)
        if self.errors or self.open_conflicts or self.open_dead_letters:
            return 1
        return 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sync": self.sync,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": {
                obj: {system: dict(counter) for system, counter in systems.items()}
                for obj, systems in self.counts.items()
            },
            "failures": [f.__dict__ for f in self.failures],
            "errors": self.errors,
            "open_conflicts": self.open_conflicts,
            "failed_records": self.open_dead_letters,
            "planned": self.planned,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        """The report :meth:`as_dict` described, as a worker returns it to the scheduler."""
        report = cls(
            sync=data["sync"],
            run_id=data["run_id"],
            dry_run=data["dry_run"],
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=(
                datetime.fromisoformat(data["finished_at"]) if data["finished_at"] else None
            ),
            status=data["status"],
            failures=[SystemFailure(**failure) for failure in data["failures"]],
            errors=list(data["errors"]),
            planned=list(data["planned"]),
            open_conflicts=data["open_conflicts"],
            open_dead_letters=data["failed_records"],
        )
        report.add_counts(data["counts"])
        return report


class RunObserver:
    """Hooks through which a caller watches a run record by record (the migration planner
    tallies what a dry run saw). Every hook does nothing here; the engine calls them on its
    own thread, in the order it sees things."""

    def mapped(self, object_type: str, system: str, values: Sequence[Mapping[str, Any]]) -> None:
        """Records of ``system`` read and mapped to canonical values (references as canonical
        ids where the hub knows them)."""

    def unmappable(
        self, object_type: str, system: str, remote_id: str, error: MappingError
    ) -> None:
        """A record the system's field map cannot read; it is dead-lettered."""

    def duplicate(
        self, object_type: str, system: str, remote_id: str, duplicate_of: str, rule: str
    ) -> None:
        """A record with the same match key as another record of the same system."""

    def unwritable(
        self, object_type: str, system: str, canonical_id: str, error: MappingError
    ) -> None:
        """A record a target's field map cannot write (a value it has no vendor value for)."""

    def planned(self, object_type: str, plans: Sequence[Plan], writes: Sequence[Write]) -> None:
        """A dry run's decisions for one page: the merged records and the writes they need."""
