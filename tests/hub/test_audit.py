"""The audit trail: what it records, its hash chain, prune, export formats and links show.

The chain is tampered with the way someone with database access would: SQLAlchemy updates and
deletes on ``audit_entries``, then ``crmhub audit verify`` must name each culprit by id.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from connectors.errors import RecordRejected
from connectors.memory.store import MemoryStore
from hub import admin, audit, store
from hub import db as hub_db
from hub.cli import app
from hub.db import open_database
from hub.tables import audit_chain, audit_entries
from tests.hub.harness import Harness

runner = CliRunner(env={"COLUMNS": "500"})


# --------------------------------------------------------------------------- helpers


def write_config(folder: Path, *, conflicts: str = "newest") -> Path:
    config = folder / "crmhub.yaml"
    config.write_text(
        "database: sqlite:///state.db\n"
        "systems:\n"
        "  a:\n    connector: memory\n    path: a.json\n"
        "  b:\n    connector: memory\n    path: b.json\n"
        "syncs:\n"
        "  main:\n"
        "    systems: [a, b]\n"
        f"    conflicts: {conflicts}\n",
        encoding="utf-8",
    )
    return config


def cli(config: Path | None, *args: str) -> Result:
    return runner.invoke(app, [*args, *(["--config", str(config)] if config else [])])


def cli_json(config: Path | None, *args: str, code: int = 0) -> Any:
    result = cli(config, *args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def vendor(folder: Path, name: str) -> MemoryStore:
    return MemoryStore(path=folder / f"{name}.json")


def synced(folder: Path, *, conflicts: str = "newest") -> tuple[Path, dict[str, str]]:
    """Two runs' worth of entries (13): a company and five contacts created in a, linked there
    and created in b, then a title edited in a and copied to b."""
    config = write_config(folder, conflicts=conflicts)
    a = vendor(folder, "a")
    acme = a.create("companies", {"name": "Acme", "domain": "acme.com"})
    ann = a.create(
        "contacts",
        {
            "firstname": "Ann",
            "email": "ann@acme.com",
            "jobtitle": "Engineer",
            "company_id": acme.id,
        },
    )
    for name in ("Bob", "Cat", "Dan", "Eve"):
        email = f"{name.lower()}@acme.com"
        a.create("contacts", {"firstname": name, "email": email, "company_id": acme.id})
    a.save()
    assert cli(config, "sync").exit_code == 0
    a = vendor(folder, "a")
    a.update("contacts", ann.id, {"jobtitle": "CTO"})
    a.save()
    assert cli(config, "sync").exit_code == 0
    return config, {"acme": acme.id, "ann": ann.id}


def state(folder: Path) -> Engine:
    return open_database(f"sqlite:///{folder}/state.db")


def entry_ids(db: Engine) -> list[int]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(audit_entries.c.id).order_by("id")).scalars())


def problems(config: Path, *args: str) -> list[tuple[int, int | None, str]]:
    report = cli_json(config, "audit", "verify", *args, code=1)
    assert report["ok"] is False
    return [(p["id"], p["through"], p["problem"]) for p in report["problems"]]


# --------------------------------------------------------------------------- verify


def test_an_untouched_chain_verifies(tmp_path: Path):
    config, _ = synced(tmp_path)
    ids = entry_ids(state(tmp_path))

    report = cli_json(config, "audit", "verify")
    text = cli(config, "audit", "verify")

    assert len(ids) == 13
    assert ids == list(range(1, len(ids) + 1))  # given one after another
    assert report["ok"] is True
    assert (report["entries"], report["first_id"], report["last_id"]) == (len(ids), 1, ids[-1])
    assert report["problems"] == []
    assert text.exit_code == 0
    assert "audit chain intact" in text.stdout


def test_verify_names_an_edited_entry(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        conn.execute(
            sa.update(audit_entries).where(audit_entries.c.id == 4).values(reason="nothing to see")
        )

    assert problems(config) == [(4, None, "edited")]
    text = cli(config, "audit", "verify")
    assert text.exit_code == 1
    assert "entry 4 edited: its content no longer matches its hash" in text.stdout


def test_verify_names_an_entry_edited_then_rehashed_to_match(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        row = dict(
            conn.execute(sa.select(audit_entries).where(audit_entries.c.id == 6)).one()._mapping
        )
        row["changes"] = {"job_title": ["Engineer", "Intern"]}
        conn.execute(
            sa.update(audit_entries)
            .where(audit_entries.c.id == 6)
            .values(changes=row["changes"], hash=audit.entry_hash(row, row["prev_hash"]))
        )

    assert problems(config) == [(6, None, "edited")]


def test_verify_names_removed_entries(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.id.in_([5, 6, 7])))

    assert problems(config) == [(5, 7, "removed")]
    assert (
        "entries 5 to 7 removed: entry 8 was appended after"
        in cli(config, "audit", "verify").stdout
    )


def test_verify_names_the_first_and_the_newest_entries_removed(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    newest = entry_ids(db)[-1]
    with db.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.id.in_([1, newest])))

    assert problems(config) == [(1, None, "removed"), (newest, None, "removed")]


def test_verify_names_entries_swapped_in_place(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        for old, new in ((3, -3), (8, 3), (-3, 8)):
            conn.execute(sa.update(audit_entries).where(audit_entries.c.id == old).values(id=new))

    found = problems(config)
    assert {(entry, problem) for entry, _, problem in found} >= {(3, "reordered"), (8, "reordered")}
    assert {problem for _, _, problem in found} == {"reordered"}  # nothing was edited


def test_verify_names_every_culprit_at_once(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        conn.execute(
            sa.update(audit_entries).where(audit_entries.c.id == 2).values(action="update")
        )
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.id == 9))
        conn.execute(
            sa.update(audit_entries).where(audit_entries.c.id == 12).values(system="elsewhere")
        )

    assert problems(config) == [(2, None, "edited"), (9, None, "removed"), (12, None, "edited")]


def test_verify_walks_a_long_chain_in_batches(db: Engine):
    # Longer than a batch, on SQLite and PostgreSQL: the walk streams.
    entries = [_entry(n) for n in range(5000)]
    with db.begin() as conn:
        store.append_audit(conn, entries)
    with db.begin() as conn:
        conn.execute(sa.delete(audit_entries).where(audit_entries.c.id == 4321))

    checked = audit.verify(db, batch=700)

    assert checked.entries == 4999
    assert [(f.id, f.problem) for f in checked.findings] == [(4321, "removed")]


def _entry(n: int, sync: str = "main") -> dict[str, Any]:
    return {
        "at": datetime(2026, 5, 1, 12, 0, 0, n % 1_000_000, tzinfo=UTC),
        "run_id": 1,
        "sync": sync,
        "system": "a",
        "object_type": "contacts",
        "remote_id": str(n),
        "canonical_id": f"c{n}",
        "action": "update",
        "changes": {"job_title": [None, f"title {n}"], "score": [1.5, n]},
        "reason": "a test",
    }


# --------------------------------------------------------------------------- concurrency

_APPENDER = """
import sys, time
from datetime import UTC, datetime
from hub import store
from hub.db import open_database

url, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = open_database(url, upgrade=False)
for n in range(rounds):
    with db.begin() as conn:
        entry = {"at": datetime.now(UTC), "run_id": n, "sync": name, "system": name,
                 "object_type": "contacts", "action": "update", "reason": "concurrent"}
        store.append_audit(conn, [entry, entry])
        if n % 2:
            time.sleep(0.002)  # hold the lock: a second writer must wait, not fork the chain
db.dispose()
print("done")
"""


def test_two_processes_appending_at_once_keep_the_chain_linear(db: Engine):
    url = db.url.render_as_string(hide_password=False)
    rounds = 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, url, name, str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    outputs = [writer.communicate(timeout=120) for writer in writers]

    assert [writer.returncode for writer in writers] == [0, 0], outputs
    checked = audit.verify(db)
    assert checked.ok, checked.findings
    assert checked.entries == 2 * 2 * rounds
    assert entry_ids(db) == list(range(1, 4 * rounds + 1))
    with db.connect() as conn:
        syncs = list(
            conn.execute(sa.select(audit_entries.c.sync).order_by(audit_entries.c.id)).scalars()
        )
    assert syncs[0::2] == syncs[1::2]  # each transaction's pair is contiguous
    assert set(syncs) == {"one", "two"}


# --------------------------------------------------------------------------- what is recorded


def test_a_vendor_rejection_is_audited_with_the_vendors_words(db: Engine):
    h = Harness(db)
    h.add("a", "contacts", firstname="Bob", email="bob@x.com")
    original = h.stores["b"].create

    def create(object_type: str, fields: dict[str, Any]) -> object:
        raise RecordRejected("Property values were not valid: phone", code="INVALID")

    h.stores["b"].create = create  # type: ignore[method-assign]
    h.run()

    [rejected] = list(admin.audit_entries(db, admin.AuditFilter(action="reject")))
    assert rejected["system"] == "b"
    assert rejected["canonical_id"]
    assert "Property values were not valid" in rejected["reason"]
    assert rejected["changes"]["email"] == [None, "bob@x.com"]
    h.stores["b"].create = original  # type: ignore[method-assign]
    assert audit.verify(db).ok


def test_a_persons_choice_in_a_conflict_is_audited_when_made(tmp_path: Path):
    config, _ = synced(tmp_path, conflicts="manual")
    for name, title in (("a", "CEO"), ("b", "Founder")):
        account = vendor(tmp_path, name)
        [ann] = [r for r in account.all("contacts") if r.fields["email"] == "ann@acme.com"]
        account.update("contacts", ann.id, {"jobtitle": title})
        account.save()
    assert cli(config, "sync").exit_code == 1
    [conflict] = cli_json(config, "conflicts", "list")

    assert cli(config, "conflicts", "resolve", str(conflict["id"]), "--system", "b").exit_code == 0

    log = cli(config, "log", "--action", "choose", "--format", "jsonl")
    [chosen] = [json.loads(line) for line in log.stdout.splitlines()]
    assert chosen["system"] == "b"
    assert chosen["run_id"] is None
    assert chosen["changes"] == {"job_title": ["CTO", "Founder"]}
    assert f"conflict {conflict['id']}" in chosen["reason"]
    assert cli(config, "audit", "verify").exit_code == 0


def test_a_persons_retry_and_discard_of_failed_records_are_audited_once_each(tmp_path: Path):
    config, _ = synced(tmp_path)
    a = vendor(tmp_path, "a")
    bad = []
    for name in ("zed", "yan"):
        record = a.create("contacts", {"firstname": name})
        record.fields["email"] = f"{name}@@acme.com"  # imported around the vendor's own check
        bad.append(record.id)
    a.save()
    assert cli(config, "sync").exit_code == 1
    failed = {row["remote_id"]: row for row in cli_json(config, "failed", "list")}
    zed, yan = failed[bad[0]], failed[bad[1]]

    assert cli(config, "failed", "retry", str(zed["id"])).exit_code == 0
    assert cli(config, "failed", "discard", str(yan["id"])).exit_code == 0
    # Already discarded: nothing changes, so nothing more is audited.
    assert cli(config, "failed", "discard", str(yan["id"])).exit_code == 0

    def entries(action: str) -> list[dict[str, Any]]:
        log = cli(config, "log", "--action", action, "--format", "jsonl")
        return [json.loads(line) for line in log.stdout.splitlines()]

    [retried] = entries("retry")
    [discarded] = entries("discard")
    for entry, row in ((retried, zed), (discarded, yan)):
        assert (entry["system"], entry["object_type"]) == ("a", "contacts")
        assert entry["remote_id"] == row["remote_id"]
        assert entry["run_id"] is None
        assert f"failed record {row['id']} (map)" in entry["reason"]
        assert "It failed: " in entry["reason"]
        assert "@@acme.com" in entry["reason"]  # what was wrong, without a second lookup
    assert "tried again on the next run" in retried["reason"]
    assert "discarded" in discarded["reason"]
    assert "no longer retried" in discarded["reason"]
    assert cli(config, "audit", "verify").exit_code == 0


# --------------------------------------------------------------------------- prune


def _times(db: Engine) -> list[datetime]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(audit_entries.c.at).order_by("id")).scalars())


def test_prune_archives_old_entries_and_what_remains_still_verifies(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    times = _times(db)
    second_run = max(times)  # the second sync's entries are the newest
    kept = sum(1 for at in times if at >= second_run)
    export = tmp_path / "audit-2026.jsonl"

    pruned = cli_json(
        config, "audit", "prune", "--before", second_run.isoformat(), "--export", str(export)
    )

    lines = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert pruned["entries"] == len(times) - kept == len(lines)
    assert [line["id"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(len(line["hash"]) == 64 for line in lines)
    assert pruned["anchor"] == lines[-1]["hash"]
    assert len(_times(db)) == kept
    report = cli_json(config, "audit", "verify")
    assert report["ok"] is True
    assert report["first_id"] == len(lines) + 1
    assert report["start_hash"] == lines[-1]["hash"]
    archived = cli_json(config, "audit", "verify", "--file", str(export))
    assert (archived["ok"], archived["entries"]) == (True, len(lines))
    assert archived["start_hash"] == audit.GENESIS
    assert archived["head_hash"] == report["start_hash"]

    # A later prune chains on from the first: everything still verifies.
    rest = tmp_path / "audit-rest.jsonl"
    later = cli_json(config, "audit", "prune", "--before", "0m", "--export", str(rest))
    assert later["entries"] == kept
    after = cli_json(config, "audit", "verify")
    assert after["ok"] is True
    assert after["entries"] == 0
    assert len(after["anchors"]) == 2
    assert (
        cli_json(config, "audit", "verify", "--file", str(rest))["start_hash"] == (pruned["anchor"])
    )
    assert cli(config, "sync").exit_code == 0
    vendor_a = vendor(tmp_path, "a")
    vendor_a.create("contacts", {"firstname": "Cy", "email": "cy@acme.com"})
    vendor_a.save()
    assert cli(config, "sync").exit_code == 0
    assert cli_json(config, "audit", "verify")["ok"] is True  # appends go on from the head


def test_prune_needs_an_export_file_it_does_not_have_to_replace(tmp_path: Path):
    config, _ = synced(tmp_path)
    count = len(entry_ids(state(tmp_path)))
    existing = tmp_path / "old.jsonl"
    existing.write_text("precious\n", encoding="utf-8")

    without = cli(config, "audit", "prune", "--before", "0m")
    onto = cli(config, "audit", "prune", "--before", "0m", "--export", str(existing))

    assert without.exit_code == 2
    assert "--export" in without.output
    assert onto.exit_code == 2
    assert "exists" in onto.output
    assert existing.read_text(encoding="utf-8") == "precious\n"
    assert len(entry_ids(state(tmp_path))) == count


def test_prune_refuses_to_destroy_a_chain_that_does_not_verify(tmp_path: Path):
    config, _ = synced(tmp_path)
    db = state(tmp_path)
    with db.begin() as conn:
        conn.execute(sa.update(audit_entries).where(audit_entries.c.id == 3).values(reason="x"))
    count = len(entry_ids(db))
    export = tmp_path / "out.jsonl"

    result = cli(config, "audit", "prune", "--before", "0m", "--export", str(export))

    assert result.exit_code == 1
    assert "entry 3 edited" in result.output
    assert not export.exists()
    assert not list(tmp_path.glob("out.jsonl*"))
    assert len(entry_ids(db)) == count


def test_verify_file_names_an_edited_archived_entry_and_a_damaged_file(tmp_path: Path):
    config, _ = synced(tmp_path)
    export = tmp_path / "archive.jsonl"
    cli_json(config, "audit", "prune", "--before", "0m", "--export", str(export))
    lines = export.read_text(encoding="utf-8").splitlines()
    edited = json.loads(lines[4])
    edited["reason"] = "rewritten"
    lines[4] = json.dumps(edited)
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert problems(None, "--file", str(export)) == [(edited["id"], None, "edited")]

    export.write_text(lines[0] + "\nnot json\n", encoding="utf-8")
    damaged = cli(None, "audit", "verify", "--file", str(export))
    assert damaged.exit_code == 1
    assert "line 2 is not an audit entry" in damaged.output


# --------------------------------------------------------------------------- log formats


def test_log_exports_csv_and_json_lines_with_the_same_entries(tmp_path: Path):
    config, _ = synced(tmp_path)

    jsonl = cli(config, "log", "--format", "jsonl")
    legacy = cli(config, "log", "--json")
    as_csv = cli(config, "log", "--format", "csv", "--action", "update")

    assert jsonl.exit_code == legacy.exit_code == as_csv.exit_code == 0
    assert jsonl.stdout == legacy.stdout
    entries = [json.loads(line) for line in jsonl.stdout.splitlines()]
    updates = [e for e in entries if e["action"] == "update"]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(rows[0]) == [
        "id",
        "at",
        "run_id",
        "sync",
        "system",
        "object_type",
        "remote_id",
        "canonical_id",
        "action",
        "changes",
        "reason",
        "prev_hash",
        "hash",
    ]
    assert [int(row["id"]) for row in rows] == [e["id"] for e in updates]
    assert [json.loads(row["changes"]) for row in rows] == [e["changes"] for e in updates]
    assert {row["hash"] for row in rows} == {e["hash"] for e in updates}
    assert any(json.loads(row["changes"]).get("job_title") == ["Engineer", "CTO"] for row in rows)


def test_log_refuses_an_unknown_format_and_json_with_another_format(tmp_path: Path):
    config, _ = synced(tmp_path)

    unknown = cli(config, "log", "--format", "xml")
    mixed = cli(config, "log", "--json", "--format", "csv")

    assert unknown.exit_code == mixed.exit_code == 2
    assert "table, jsonl, csv" in unknown.output
    assert "--json" in mixed.output


# --------------------------------------------------------------------------- links show


def test_links_show_the_canonical_record_and_how_each_system_was_linked(tmp_path: Path):
    config, ids = synced(tmp_path)
    [ann_in_b] = [
        r for r in vendor(tmp_path, "b").all("contacts") if r.fields["email"] == "ann@acme.com"
    ]

    [record] = cli_json(config, "links", "show", "a", ids["ann"], "--object", "contacts")
    [from_b] = cli_json(config, "links", "show", "b", ann_in_b.id, "--object", "contacts")
    table = cli(config, "links", "show", "a", ids["ann"], "--object", "contacts")

    assert record["canonical_id"] == from_b["canonical_id"]
    assert (record["sync"], record["object_type"]) == ("main", "contacts")
    assert record["base"]["email"] == "ann@acme.com"
    assert record["base"]["job_title"] == "CTO"
    by_system = {link["system"]: link for link in record["links"]}
    assert sorted(by_system) == ["a", "b"]
    assert (by_system["a"]["remote_id"], by_system["b"]["remote_id"]) == (ids["ann"], ann_in_b.id)
    assert (by_system["a"]["named"], by_system["b"]["named"]) == (True, False)
    assert [link["named"] for link in from_b["links"]] == [False, True]
    assert by_system["a"]["rule"] == "new record from a"
    assert by_system["b"]["rule"] == "created by crmhub"
    assert (by_system["a"]["audit"]["action"], by_system["b"]["audit"]["action"]) == (
        "link",
        "create",
    )
    assert by_system["b"]["audit"]["run_id"] == 1
    assert by_system["b"]["audit"]["at"] == by_system["b"]["linked_at"]
    assert table.exit_code == 0
    assert "new record from a" in table.stdout
    assert "created by crmhub" in table.stdout


def test_links_show_every_object_an_id_names_unless_told_which(tmp_path: Path):
    config, ids = synced(tmp_path)
    assert ids["acme"] == ids["ann"]  # the memory CRM numbers each object type from 1

    records = cli_json(config, "links", "show", "a", ids["ann"])

    assert [r["object_type"] for r in records] == ["companies", "contacts"]
    assert records[0]["base"]["name"] == "Acme"


def test_links_show_of_an_unknown_record_names_it(tmp_path: Path):
    config, _ = synced(tmp_path)

    missing = cli(config, "links", "show", "a", "nope")
    elsewhere = cli(config, "links", "show", "zz", "1")

    assert missing.exit_code == elsewhere.exit_code == 2
    assert "'nope'" in missing.output
    assert "configured systems: a, b" in elsewhere.output


# --------------------------------------------------------------------------- migration


def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/state.db"
    old = open_database(url, upgrade=False)
    command.upgrade(hub_db._alembic_config(old), "0004")
    with old.begin() as conn:
        for n in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO audit_entries (at, sync, object_type, action, changes, reason) "
                    "VALUES (:at, 'main', 'contacts', 'update', :changes, 'before the chain')"
                ),
                {"at": f"2026-01-0{n + 1} 10:00:00.000000", "changes": '{"name": ["x", "y"]}'},
            )
    old.dispose()

    db = open_database(url)
    with db.begin() as conn:
        store.append_audit(conn, [_entry(1)])

    checked = audit.verify(db)
    assert checked.ok, checked.findings
    assert (checked.entries, checked.last_id) == (4, 4)
    with db.connect() as conn:
        assert conn.execute(sa.select(audit_chain.c.last_id)).scalar_one() == 4


@pytest.mark.parametrize("field", ["changes", "at"])
def test_hashes_survive_the_round_trip_through_the_database(db: Engine, field: str):
    # What is hashed before the insert is what verify reads back, on both databases.
    entry = _entry(7)
    if field == "at":
        entry["at"] = datetime(2026, 5, 1, 23, 59, 59, 999_999, tzinfo=UTC)
    else:
        entry["changes"] = {"amount": [0.1, 1e-7], "tags": [["a", "é"], None], "n": [2**53, True]}
    with db.begin() as conn:
        store.append_audit(conn, [entry])

    assert audit.verify(db).ok
