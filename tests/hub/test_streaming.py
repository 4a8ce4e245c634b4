"""A pass with one reading system reconciles its pages as they come in (a one-way sync, a move).

What a user notices: records arrive in the target while the source is still being read, and
nothing else changes: a duplicate inside the source is still found however far apart the two
are, the mass-delete guard still stands before any write, and a run stopped or killed halfway
is finished by the next without a record made twice.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Engine, select

from hub import admin, store
from hub.engine import MassDeleteError
from hub.tables import audit_entries
from tests.hub.harness import Harness

ONE_WAY = {"source": "read", "target": "write"}


class Killed(BaseException):
    """Stands for the process dying: not an error the engine may catch."""


def one_way(db: Engine, people: int, **options: object) -> Harness:
    # Pages of 10 read, 20 reconciled: a pass of many pages.
    h = Harness(db, ONE_WAY, objects=("contacts",), store_page_size=10, page_size=20, **options)  # type: ignore[arg-type]
    for i in range(people):
        h.add("source", "contacts", firstname=f"P{i}", email=f"p{i}@x.com")
    return h


def emails(h: Harness, system: str) -> Counter[str]:
    return Counter(record["email"] for record in h.records(system, "contacts"))


def test_the_first_records_reach_the_target_before_the_source_is_read_to_the_end(
    db: Engine,
) -> None:
    h = one_way(db, 300)
    calls: list[tuple[str, str]] = []
    for name, connector in h.connectors.items():
        connector.before_call = lambda operation, _type, name=name: calls.append((name, operation))

    report = h.run()

    assert report.exit_code == 0, report.as_dict()
    reads = [i for i, call in enumerate(calls) if call == ("source", "read_changes")]
    assert len(reads) == 30
    assert calls.index(("target", "create")) < reads[-1]
    assert emails(h, "target") == emails(h, "source")
    with db.connect() as conn:  # the next run reads only what changed since
        assert store.get_cursor(conn, "test", "source", "contacts") is not None
    assert h.run_without_writes().writes == 0


def test_a_duplicate_inside_the_source_is_found_pages_after_its_twin(db: Engine) -> None:
    h = one_way(db, 100, unique_emails=False)
    twin = h.add("source", "contacts", firstname="Again", email="p0@x.com")  # the last page

    report = h.run()

    assert report.counts["contacts"]["source"]["duplicates"] == 1
    assert emails(h, "target") == Counter(f"p{i}@x.com" for i in range(100))
    [dead] = admin.list_failed(db)
    assert (dead["stage"], dead["remote_id"]) == ("duplicate", twin)


def test_the_mass_delete_guard_stands_before_any_write(db: Engine) -> None:
    h = one_way(db, 40, deletes="propagate")
    h.run()
    for record in h.stores["source"].all("contacts")[:30]:
        h.stores["source"].delete("contacts", record.id)
    for i in range(10):
        h.add("source", "contacts", firstname=f"New{i}", email=f"new{i}@x.com")

    h.forbid_writes()
    with pytest.raises(MassDeleteError, match="30 of its 40"):
        h.run()
    assert len(h.records("target", "contacts")) == 40


def test_a_stopped_run_is_finished_by_the_next_with_nothing_made_twice(db: Engine) -> None:
    h = one_way(db, 300)
    stop = lambda: len(h.records("target", "contacts")) >= 60  # noqa: E731

    stopped = h.run(should_stop=stop)

    assert stopped.status == "interrupted", stopped.as_dict()
    assert 60 <= len(h.records("target", "contacts")) < 300
    h.run()
    assert emails(h, "target") == emails(h, "source")
    assert set(emails(h, "target").values()) == {1}
    assert h.run_without_writes().writes == 0


def test_a_run_killed_halfway_is_finished_by_the_next_with_nothing_made_twice(
    db: Engine,
) -> None:
    h = one_way(db, 200, unique_emails=False)  # the target would take a second copy
    creates = {"n": 0}

    def die_after_the_third_create(operation: str, object_type: str, results: object) -> None:
        if operation == "create":
            creates["n"] += 1
            if creates["n"] == 3:
                raise Killed()

    h.connectors["target"].after_write = die_after_the_third_create
    with pytest.raises(Killed):
        h.run()
    assert 40 <= len(h.records("target", "contacts")) < 200
    h.connectors["target"].after_write = None

    h.run()

    assert emails(h, "target") == emails(h, "source")
    assert set(emails(h, "target").values()) == {1}
    with db.connect() as conn:
        made = conn.execute(
            select(audit_entries.c.remote_id).where(
                audit_entries.c.system == "target", audit_entries.c.action == "create"
            )
        ).all()
    assert len(made) == 200


def test_a_sample_reads_no_page_past_it(db: Engine) -> None:
    h = one_way(db, 300)
    engine = h.engine()
    engine.systems["source"].read_limit = 25

    report = engine.run()

    assert report.counts["contacts"]["source"]["read"] == 25
    assert h.stores["source"].calls["read_changes"] == 3
    assert len(h.records("target", "contacts")) == 25


def test_the_progress_bar_learns_the_whole_once_the_read_is_over(db: Engine) -> None:
    h = one_way(db, 300)
    updates: list[tuple[str, int, int | None]] = []

    h.run(progress=lambda phase, _system, done, total: updates.append((phase, done, total)))

    moved = [(done, total) for phase, done, total in updates if phase == "contacts:reconcile"]
    assert moved[0][1] is None  # still reading
    assert moved[-1] == (300, 300)


def test_a_record_edited_while_the_pass_pages_is_updated_not_made_twice(db: Engine) -> None:
    # Read by (modified time, id), a record edited after its page was read comes again on the
    # last page, long after the first copy reached the target.
    h = one_way(db, 300, unique_emails=False)  # the target would take a second copy
    first = h.by("source", "contacts", "email", "p0@x.com")["id"]
    reads = {"n": 0}

    def edit_mid_read(operation: str, object_type: str) -> None:
        if operation == "read_changes":
            reads["n"] += 1
            if reads["n"] == 20:
                h.edit("source", "contacts", first, jobtitle="Edited mid-read")

    h.connectors["source"].before_call = edit_mid_read
    report = h.run()

    assert report.exit_code == 0, report.as_dict()
    assert report.counts["contacts"]["source"]["read"] == 301
    [copy] = [r for r in h.records("target", "contacts") if r["email"] == "p0@x.com"]
    assert copy["jobtitle"] == "Edited mid-read"
    assert emails(h, "target") == emails(h, "source")
    assert admin.list_failed(db) == []
