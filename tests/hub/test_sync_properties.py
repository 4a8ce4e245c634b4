"""Random edits on 2 and 3 CRMs between syncs; after every sync the guarantees must hold.

A Hypothesis state machine creates, edits and deletes contacts at random on each system (so
the same field is often edited on two systems: a conflict), then syncs and checks DESIGN.md's
guarantees: every system holds the same records, no system holds a duplicate, an immediate
second sync writes nothing, and no edit is lost unless a recorded conflict says it lost.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from sqlalchemy import select

from hub.db import open_database
from hub.tables import conflicts
from tests.hub.harness import Harness

EMAILS = [f"person{i}@example.com" for i in range(6)]
FIELDS = {"firstname": "first_name", "jobtitle": "job_title", "phone": "phone"}
VALUES = {
    "firstname": st.sampled_from(["Ann", "Bob", "Cyd", "Dee", None]),
    "jobtitle": st.sampled_from(["CEO", "CTO", "Engineer", "Buyer", None]),
    "phone": st.sampled_from(["+1 415 555 0100", "(415) 555-0101", "415.555.0102", None]),
}


class SyncMachine(RuleBasedStateMachine):
    systems: tuple[str, ...] = ("a", "b")

    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="crmhub-prop-")
        self.db = open_database(f"sqlite:///{self.folder}/state.db")
        self.h = Harness(
            self.db,
            self.systems,
            objects=("contacts",),
            deletes="propagate",
            max_delete_fraction=1.0,
            unique_emails=False,  # only the engine may keep duplicates out
        )
        self.fieldmap = self.h.fieldmaps[self.systems[0]]
        # Since the last sync: the last value each system was given per (email, field).
        self.edits: dict[tuple[str, str, str], Any] = {}
        self.deleted: set[str] = set()
        # What each system held after the last sync, canonical, by (system, email).
        self.synced: dict[tuple[str, str], dict[str, Any]] = {}

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _find(self, system: str, email: str) -> str | None:
        for record in self.h.stores[system].all("contacts"):
            if str(record.fields.get("email", "")).lower() == email:
                return record.id
        return None

    def _canonical_value(self, system: str, record_id: str, field: str) -> Any:
        record = self.h.stores[system].get("contacts", record_id)
        assert record is not None
        return self.fieldmap.to_canonical("contacts", record.fields).get(FIELDS[field])

    @initialize()
    def start(self) -> None:
        self.h.add(self.systems[0], "contacts", firstname="Seed", email=EMAILS[0])
        self.edits[(self.systems[0], EMAILS[0], "firstname")] = "Seed"

    @rule(
        data=st.data(),
        email=st.sampled_from(EMAILS),
        loud=st.booleans(),
    )
    def create(self, data: st.DataObject, email: str, loud: bool) -> None:
        system = data.draw(st.sampled_from(self.systems))
        if self._find(system, email) is not None:
            return
        fields = {name: data.draw(strategy) for name, strategy in VALUES.items()}
        fields = {k: v for k, v in fields.items() if v is not None}
        fields.setdefault("firstname", "New")
        self.h.add(system, "contacts", email=email.upper() if loud else email, **fields)
        for name, value in fields.items():
            self.edits[(system, email, name)] = value

    @rule(data=st.data(), email=st.sampled_from(EMAILS), field=st.sampled_from(list(FIELDS)))
    def edit(self, data: st.DataObject, email: str, field: str) -> None:
        system = data.draw(st.sampled_from(self.systems))
        record_id = self._find(system, email)
        if record_id is None:
            return
        value = data.draw(VALUES[field])
        if field == "firstname" and value is None:
            value = "Named"  # a contact needs a name or an email; keep the record valid
        self.h.edit(system, "contacts", record_id, **{field: value})
        key = (system, email, field)
        now = self._canonical_value(system, record_id, field)
        synced = self.synced.get((system, email))
        if synced is None and now is None:
            # Never synced: at the first link a blank is "unknown", never an erasure.
            self.edits.pop(key, None)
        elif synced is not None and now == synced.get(FIELDS[field]):
            # Edited back to what the last sync left: no change a sync could lose.
            self.edits.pop(key, None)
        else:
            self.edits[key] = value

    @rule(data=st.data(), email=st.sampled_from(EMAILS))
    def delete(self, data: st.DataObject, email: str) -> None:
        system = data.draw(st.sampled_from(self.systems))
        record_id = self._find(system, email)
        if record_id is None:
            return
        self.h.stores[system].delete("contacts", record_id)
        self.deleted.add(email)

    @rule()
    def sync(self) -> None:
        report = self.h.run()
        assert report.exit_code == 0, report.as_dict()
        self._check_convergence()
        self._check_no_lost_updates(report.run_id)
        second = self.h.run_without_writes()
        assert second.writes == 0
        self.edits.clear()
        self.deleted.clear()
        self.synced = {
            (system, email): record
            for system in self.systems
            for email, record in self._canonical_by_email(system).items()
        }

    def _canonical_by_email(self, system: str) -> dict[str, dict[str, Any]]:
        records = self.h.canonical(system, "contacts")
        by_email = {record["email"]: record for record in records}
        assert len(by_email) == len(records), f"{system} holds a duplicate: {records}"
        return by_email

    def _check_convergence(self) -> None:
        views = {system: self._canonical_by_email(system) for system in self.systems}
        first = views[self.systems[0]]
        for system, view in views.items():
            assert set(view) == set(first), (system, sorted(view), sorted(first))
            for email, record in view.items():
                other = first[email]
                assert {k: v for k, v in record.items() if k != "company"} == {
                    k: v for k, v in other.items() if k != "company"
                }, (system, email)

    def _check_no_lost_updates(self, run_id: int | None) -> None:
        with self.db.connect() as conn:
            rows = conn.execute(select(conflicts).where(conflicts.c.run_id == run_id)).all()
        lost = {
            (row.field, system, _freeze(candidate["value"]))
            for row in rows
            for system, candidate in row.candidates.items()
            if system != row.winner
        }
        for (system, email, field), value in self.edits.items():
            if email in self.deleted:
                continue  # deletes: propagate wins over edits, and the audit says so
            canonical_field = FIELDS[field]
            expected = self.fieldmap.to_canonical(
                "contacts", {"email": email, "firstname": "x", field: value}
            ).get(canonical_field)
            record = self._canonical_by_email(system).get(email)
            assert record is not None, (system, email)
            if record.get(canonical_field) == expected:
                continue
            assert (canonical_field, system, _freeze(expected)) in lost, (
                f"{system}'s edit {field}={value!r} of {email} vanished without a conflict"
            )


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class ThreeSystemMachine(SyncMachine):
    systems = ("a", "b", "c")


_settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestTwoSystems = SyncMachine.TestCase
TestTwoSystems.settings = _settings
TestThreeSystems = ThreeSystemMachine.TestCase
TestThreeSystems.settings = _settings
