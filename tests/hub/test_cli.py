"""The ``crmhub`` command line, driven as a user drives it: config files, JSON stores, exit codes.

Exit codes are the contract: 0 all synced; 1 some records failed or wait in conflict; 2 bad
config or usage; 3 a system could not be reached or refused credentials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from connectors.memory.store import MemoryStore
from hub import cli as hub_cli
from hub.cli import app

# A wide terminal, so the content of messages is checked apart from how they wrap; the one test
# about wrapping sets its own width.
runner = CliRunner(env={"COLUMNS": "500"})


@pytest.fixture(autouse=True)
def _stderr_width_from_each_tests_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich freezes a console's width when COLUMNS is set at import time; let each test decide.
    monkeypatch.setattr(hub_cli.err, "_width", None)


BAD_YAML = """\
database: sqlite:///state.db
systems:
  a:
    connector: memory
   path: a.json
"""


def write_config(
    folder: Path,
    *,
    conflicts: str = "newest",
    systems: str | None = None,
    sync_extra: str = "",
) -> Path:
    systems = systems or (
        "  a:\n    connector: memory\n    path: a.json\n"
        "  b:\n    connector: memory\n    path: b.json\n"
    )
    config = folder / "crmhub.yaml"
    config.write_text(
        "database: sqlite:///state.db\n"
        f"systems:\n{systems}"
        "syncs:\n"
        "  main:\n"
        "    systems: [a, b]\n"
        f"    conflicts: {conflicts}\n"
        f"{sync_extra}",
        encoding="utf-8",
    )
    return config


def store(folder: Path, name: str) -> MemoryStore:
    """The system's account as the next crmhub process will see it."""
    return MemoryStore(path=folder / f"{name}.json")


def seed(folder: Path, *, bad_email: bool = False) -> dict[str, str]:
    """A company, two contacts at it and a deal in system a; b is empty."""
    a = store(folder, "a")
    acme = a.create("companies", {"name": "Acme", "domain": "acme.com"})
    ann = a.create(
        "contacts",
        {
            "firstname": "Ann",
            "lastname": "Lee",
            "email": "ann@acme.com",
            "jobtitle": "Engineer",
            "company_id": acme.id,
        },
    )
    bob = a.create("contacts", {"firstname": "Bob", "email": "bob@acme.com", "company_id": acme.id})
    a.create(
        "deals",
        {
            "dealname": "Rockets",
            "amount": "1000",
            "dealstage": "qualifiedtobuy",
            "company_id": acme.id,
        },
    )
    ids = {"acme": acme.id, "ann": ann.id, "bob": bob.id}
    if bad_email:
        bad = a.create("contacts", {"firstname": "Dwight"})
        bad.fields["email"] = "dwight@@acme"  # imported around the vendor's own check
        ids["bad"] = bad.id
    a.save()
    return ids


def cli(config: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, [*args, "--config", str(config)], env=env)


def cli_json(config: Path, *args: str) -> Any:
    result = cli(config, *args, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def log_entries(config: Path, *filters: str) -> list[dict[str, Any]]:
    result = cli(config, "log", *filters, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def error_of(result: Result, code: int) -> str:
    """The one error message, after checking the exit code and that stdout stayed clean."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("crmhub: ")
    return result.stderr.strip()


def by_email(folder: Path, system: str) -> dict[str, dict[str, Any]]:
    return {
        str(r.fields.get("email", "")).lower(): r.fields
        for r in store(folder, system).all("contacts")
    }


# --------------------------------------------------------------------------- bad config: exit 2


def test_malformed_yaml_exits_2_naming_the_file_and_the_line(tmp_path: Path):
    config = tmp_path / "crmhub.yaml"
    config.write_text(BAD_YAML, encoding="utf-8")
    message = error_of(cli(config, "sync"), 2)
    assert f"{config} line 5" in message
    assert "\n" not in message  # one line (at a width where it fits)


def test_an_error_is_one_line_on_stderr_even_where_no_terminal_sets_the_width(tmp_path: Path):
    config = tmp_path / "crmhub.yaml"
    config.write_text(BAD_YAML, encoding="utf-8")
    result = runner.invoke(app, ["sync", "--config", str(config)], env={"COLUMNS": "80"})
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_an_unknown_connector_exits_2_naming_it_and_the_installed_ones(tmp_path: Path):
    config = write_config(
        tmp_path,
        systems="  a:\n    connector: hubspott\n  b:\n    connector: memory\n    path: b.json\n",
    )
    message = error_of(cli(config, "sync"), 2)
    assert "systems.a.connector" in message
    assert "'hubspott'" in message
    assert "did you mean 'hubspot'?" in message
    assert "memory" in message.split("installed:")[1]
    assert not (tmp_path / "state.db").exists()  # stopped before touching anything


def test_an_unset_credential_variable_exits_2_naming_the_variable_and_the_key(tmp_path: Path):
    config = write_config(
        tmp_path,
        systems=(
            "  a:\n    connector: memory\n    token: ${CRMHUB_TEST_SECRET_TOKEN}\n"
            "  b:\n    connector: memory\n"
        ),
    )
    result = cli(config, "check", env={"CRMHUB_TEST_SECRET_TOKEN": None})
    message = error_of(result, 2)
    assert "systems.a.token" in message
    assert "CRMHUB_TEST_SECRET_TOKEN" in message
    assert "not set" in message


def test_a_bad_schedule_exits_2_naming_it(tmp_path: Path):
    config = write_config(tmp_path, sync_extra="    schedule: every tuesday\n")
    message = error_of(cli(config, "status"), 2)
    assert "syncs.main.schedule" in message
    assert "'every tuesday'" in message


def test_an_unknown_sync_exits_2_naming_it_and_the_configured_ones(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path)
    message = error_of(cli(config, "sync", "mian"), 2)
    assert "'mian'" in message
    assert "configured: main" in message
    assert store(tmp_path, "b").all("contacts") == []


# --------------------------------------------------------------------------- sync


def test_sync_copies_every_record_to_the_other_system_and_exits_0(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path)

    result = cli(config, "sync")

    assert result.exit_code == 0, result.output
    assert "sync main" in result.stdout
    assert "succeeded" in result.stdout
    b = store(tmp_path, "b")
    [acme] = b.all("companies")
    assert acme.fields == {"name": "Acme", "domain": "acme.com"}
    contacts = by_email(tmp_path, "b")
    assert sorted(contacts) == ["ann@acme.com", "bob@acme.com"]
    assert contacts["ann@acme.com"]["jobtitle"] == "Engineer"
    assert {c["company_id"] for c in contacts.values()} == {acme.id}  # b's own id
    [deal] = b.all("deals")
    assert deal.fields["dealname"] == "Rockets"
    assert deal.fields["company_id"] == acme.id


def test_sync_json_is_a_list_of_reports_with_counts_and_an_exit_code(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path)

    result = cli(config, "sync", "--json")

    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)  # stdout is the JSON and nothing else
    assert report["sync"] == "main"
    assert report["exit_code"] == 0
    assert report["dry_run"] is False
    counts = report["counts"]
    assert counts["companies"]["b"]["created"] == 1
    assert counts["contacts"]["a"]["read"] == 2
    assert counts["contacts"]["b"]["created"] == 2
    assert counts["deals"]["b"]["created"] == 1

    [again] = cli_json(config, "sync")
    assert again["exit_code"] == 0
    assert all(
        counter.get(kind, 0) == 0
        for systems in again["counts"].values()
        for counter in systems.values()
        for kind in ("created", "updated", "deleted")
    )


def test_a_record_with_an_invalid_email_exits_1_and_is_listed_with_why_until_discarded(
    tmp_path: Path,
):
    config = write_config(tmp_path)
    ids = seed(tmp_path, bad_email=True)

    result = cli(config, "sync")

    assert result.exit_code == 1, result.output
    assert "1 record(s) failed: crmhub failed list" in result.stdout
    assert sorted(by_email(tmp_path, "b")) == ["ann@acme.com", "bob@acme.com"]  # the rest synced
    [failed] = cli_json(config, "failed", "list")
    assert failed["system"] == "a"
    assert failed["object_type"] == "contacts"
    assert failed["remote_id"] == ids["bad"]
    assert "dwight@@acme" in failed["reason"]
    assert "email" in failed["reason"]
    assert failed["status"] == "open"

    discarded = cli(config, "failed", "discard", str(failed["id"]))

    assert discarded.exit_code == 0, discarded.output
    assert cli_json(config, "failed", "list") == []
    [kept] = cli_json(config, "failed", "list", "--all")
    assert (kept["id"], kept["status"]) == (failed["id"], "discarded")
    assert error_of(cli(config, "failed", "discard", "999"), 2).endswith("999")


def test_a_discarded_record_stays_discarded_on_the_next_sync(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path, bad_email=True)
    assert cli(config, "sync").exit_code == 1
    [failed] = cli_json(config, "failed", "list")
    assert cli(config, "failed", "discard", str(failed["id"])).exit_code == 0

    result = cli(config, "sync")

    assert result.exit_code == 0, result.output
    assert cli_json(config, "failed", "list") == []


def test_a_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path)
    b = store(tmp_path, "b")
    b.create("companies", {"name": "Globex", "domain": "globex.com"})
    b.save()
    before = {name: (tmp_path / f"{name}.json").read_bytes() for name in "ab"}

    result = cli(config, "sync", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert report["dry_run"] is True
    planned = {
        (p["object"], p["system"], p["action"], p["changes"].get("email", [None, None])[1])
        for p in report["planned"]
    }
    assert ("contacts", "b", "create", "ann@acme.com") in planned
    assert ("contacts", "b", "create", "bob@acme.com") in planned
    assert ("companies", "a", "create", None) in planned  # Globex
    assert report["counts"]["contacts"]["b"]["to_create"] == 2
    assert {name: (tmp_path / f"{name}.json").read_bytes() for name in "ab"} == before
    assert log_entries(config) == []

    assert cli(config, "sync").exit_code == 0
    assert sorted(by_email(tmp_path, "b")) == ["ann@acme.com", "bob@acme.com"]


# --------------------------------------------------------------------------- log


LOG_KEYS = {
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
}


def test_log_json_prints_one_entry_a_line_with_before_and_after(tmp_path: Path):
    config = write_config(tmp_path)
    ids = seed(tmp_path)
    assert cli(config, "sync").exit_code == 0

    entries = log_entries(config)

    assert entries
    for entry in entries:
        assert set(entry) >= LOG_KEYS
        assert entry["sync"] == "main"
        datetime.fromisoformat(entry["at"])
    [ann_created] = [
        e
        for e in entries
        if e["action"] == "create" and (e["changes"] or {}).get("email") == [None, "ann@acme.com"]
    ]
    assert ann_created["system"] == "b"
    assert ann_created["object_type"] == "contacts"
    assert ann_created["changes"]["job_title"] == [None, "Engineer"]
    assert ann_created["reason"]
    [ann_linked] = [
        e
        for e in entries
        if (e["system"], e["object_type"], e["remote_id"]) == ("a", "contacts", ids["ann"])
    ]
    assert ann_linked["action"] == "link"
    assert ann_linked["canonical_id"] == ann_created["canonical_id"]


def test_log_filters_by_system_action_record_time_and_count(tmp_path: Path):
    config = write_config(tmp_path)
    a = store(tmp_path, "a")
    ann = a.create("contacts", {"firstname": "Ann", "email": "ann@acme.com"})
    a.create("contacts", {"firstname": "Bob", "email": "bob@acme.com"})
    a.save()
    b = store(tmp_path, "b")  # used ids, so b's ids never equal a's
    for i in range(5):
        b.delete("contacts", b.create("contacts", {"firstname": f"Gone{i}"}).id)
    b.save()
    assert cli(config, "sync").exit_code == 0
    between = datetime.now(UTC)
    a = store(tmp_path, "a")
    a.update("contacts", ann.id, {"jobtitle": "CTO"})
    a.save()
    assert cli(config, "sync").exit_code == 0
    everything = log_entries(config)
    ann_b = store(tmp_path, "b").find("contacts", "email", ["ann@acme.com"])[0].id
    assert ann_b != ann.id

    only_b = log_entries(config, "--system", "b")
    assert only_b
    assert {e["system"] for e in only_b} == {"b"}
    assert len(only_b) == sum(e["system"] == "b" for e in everything)

    creates = log_entries(config, "--action", "create")
    assert [(e["system"], e["action"]) for e in creates] == [("b", "create"), ("b", "create")]

    history = log_entries(config, "--record", ann.id)
    assert {e["system"] for e in history} == {"a", "b"}  # one entity, every system
    assert {e["remote_id"] for e in history} == {ann.id, ann_b}
    assert len({e["canonical_id"] for e in history}) == 1
    assert {e["action"] for e in history} >= {"link", "create", "update"}
    assert log_entries(config, "--record", ann_b) == history
    assert log_entries(config, "--record", history[0]["canonical_id"]) == history

    assert log_entries(config, "--since", "1h") == everything
    recent = log_entries(config, "--since", between.isoformat())
    assert recent
    assert {e["run_id"] for e in recent} == {everything[-1]["run_id"]}
    assert [e["changes"] for e in recent if e["action"] == "update"] == [
        {"job_title": [None, "CTO"]}
    ]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert log_entries(config, "--since", future) == []

    assert log_entries(config, "--limit", "2") == everything[-2:]


def test_log_with_a_bad_since_exits_2_naming_the_option(tmp_path: Path):
    config = write_config(tmp_path)
    message = error_of(cli(config, "log", "--since", "yesterday"), 2)
    assert "--since" in message
    assert "'yesterday'" in message


# --------------------------------------------------------------------------- conflicts


def _edit_both_sides(folder: Path, field: str, a_value: str, b_value: str) -> None:
    for system, value in (("a", a_value), ("b", b_value)):
        account = store(folder, system)
        [ann] = account.find("contacts", "email", ["ann@acme.com"])
        account.update("contacts", ann.id, {field: value})
        account.save()


def test_a_manual_conflict_exits_1_until_a_person_picks_a_side_then_both_agree(
    tmp_path: Path,
):
    config = write_config(tmp_path, conflicts="manual")
    seed(tmp_path)
    assert cli(config, "sync").exit_code == 0
    _edit_both_sides(tmp_path, "jobtitle", "CTO", "CEO")

    waiting = cli(config, "sync")

    assert waiting.exit_code == 1, waiting.output
    assert "1 conflict(s) wait for a person" in waiting.stdout
    [conflict] = cli_json(config, "conflicts", "list")
    assert conflict["status"] == "open"
    assert conflict["object_type"] == "contacts"
    assert conflict["field"] == "job_title"
    assert {s: c["value"] for s, c in conflict["candidates"].items()} == {"a": "CTO", "b": "CEO"}
    assert by_email(tmp_path, "a")["ann@acme.com"]["jobtitle"] == "CTO"  # nobody overwritten
    assert by_email(tmp_path, "b")["ann@acme.com"]["jobtitle"] == "CEO"
    assert cli(config, "sync").exit_code == 1  # still waiting

    resolved = cli(config, "conflicts", "resolve", str(conflict["id"]), "--system", "b")

    assert resolved.exit_code == 0, resolved.output
    assert cli_json(config, "conflicts", "list") == []
    after = cli(config, "sync")
    assert after.exit_code == 0, after.output
    for system in "ab":
        assert by_email(tmp_path, system)["ann@acme.com"]["jobtitle"] == "CEO"
    [settled] = cli_json(config, "conflicts", "list", "--all")
    assert (settled["winner"], settled["resolution"]) == ("b", "CEO")
    [audited] = log_entries(config, "--action", "resolve")
    assert audited["changes"]["job_title"][1] == "CEO"
    assert cli(config, "sync").exit_code == 0  # settled for good


def test_the_audit_log_shows_what_a_resolution_replaced(tmp_path: Path):
    config = write_config(tmp_path, conflicts="manual")
    seed(tmp_path)
    cli(config, "sync")
    _edit_both_sides(tmp_path, "jobtitle", "CTO", "CEO")
    cli(config, "sync")
    [conflict] = cli_json(config, "conflicts", "list")
    cli(config, "conflicts", "resolve", str(conflict["id"]), "--system", "b")
    cli(config, "sync")

    [audited] = log_entries(config, "--action", "resolve")

    assert audited["changes"] == {"job_title": ["Engineer", "CEO"]}


def test_a_resolved_conflict_on_a_field_both_sides_filled_in_is_written_everywhere(
    tmp_path: Path,
):
    config = write_config(tmp_path, conflicts="manual")
    seed(tmp_path)
    assert cli(config, "sync").exit_code == 0
    _edit_both_sides(tmp_path, "mobilephone", "+1 415 555 0100", "+1 415 555 0199")
    assert cli(config, "sync").exit_code == 1
    [conflict] = cli_json(config, "conflicts", "list")
    assert conflict["field"] == "mobile"
    assert cli(config, "conflicts", "resolve", str(conflict["id"]), "--system", "b").exit_code == 0

    assert cli(config, "sync").exit_code == 0

    for system in "ab":
        mobile = by_email(tmp_path, system)["ann@acme.com"].get("mobilephone")
        assert mobile is not None
        assert mobile.replace(" ", "").endswith("4155550199")


def test_resolving_needs_an_existing_open_conflict_and_exactly_one_choice(tmp_path: Path):
    config = write_config(tmp_path, conflicts="manual")
    seed(tmp_path)
    cli(config, "sync")
    _edit_both_sides(tmp_path, "jobtitle", "CTO", "CEO")
    cli(config, "sync")
    [conflict] = cli_json(config, "conflicts", "list")
    cid = str(conflict["id"])

    assert "no conflict with id 999" in error_of(
        cli(config, "conflicts", "resolve", "999", "--system", "b"), 2
    )
    both = error_of(cli(config, "conflicts", "resolve", cid, "--system", "b", "--value", "X"), 2)
    assert "exactly one of --system or --value" in both
    error_of(cli(config, "conflicts", "resolve", cid), 2)
    assert "'c'" in error_of(cli(config, "conflicts", "resolve", cid, "--system", "c"), 2)
    assert cli_json(config, "conflicts", "list") == [conflict]  # still open, untouched

    by_value = cli(config, "conflicts", "resolve", cid, "--value", "Chief", "--json")
    assert by_value.exit_code == 0, by_value.output
    assert json.loads(by_value.stdout)["resolution"] == "Chief"
    assert "not open" in error_of(cli(config, "conflicts", "resolve", cid, "--system", "a"), 2)


# --------------------------------------------------------------------------- status, check


def test_status_json_shows_each_syncs_last_run_and_what_waits(tmp_path: Path):
    config = write_config(tmp_path, sync_extra="    schedule: 5m\n")
    seed(tmp_path, bad_email=True)

    [never] = cli_json(config, "status")
    assert never["sync"] == "main"
    assert never["last_run"] is None
    assert datetime.fromisoformat(never["next_run"]) <= datetime.now(UTC)  # due now

    cli(config, "sync")
    [row] = cli_json(config, "status")

    assert row["schedule"] == "every 5m"
    started = datetime.fromisoformat(row["last_run"]["started_at"])
    assert datetime.fromisoformat(row["next_run"]) == started + timedelta(minutes=5)
    assert row["failed_records"] == 1
    assert row["open_conflicts"] == 0
    last = row["last_run"]
    assert last["status"] == "succeeded"
    assert last["counts"]["created"] == 4  # company, two contacts, deal in b
    assert last["counts"]["failed"] == 1
    assert last["seconds"] >= 0


def test_check_exits_0_and_names_each_system(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path)

    result = cli(config, "check")

    assert result.exit_code == 0, result.output
    assert str(config) in result.stdout
    assert "✓ a (memory)" in result.stdout
    assert "✓ b (memory)" in result.stdout


def test_check_exits_2_naming_a_system_whose_store_file_is_corrupt(tmp_path: Path):
    config = write_config(tmp_path)
    (tmp_path / "a.json").write_text('{"contacts": ', encoding="utf-8")

    result = cli(config, "check", "--json")

    assert result.exit_code == 2, result.output
    systems = {s["system"]: s for s in json.loads(result.stdout)["systems"]}
    assert systems["a"]["ok"] is False
    assert str(tmp_path / "a.json") in systems["a"]["error"]
    assert systems["b"]["ok"] is True


# --------------------------------------------------------------------------- config discovery


def test_the_crmhub_config_variable_is_used_when_no_config_option_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = write_config(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    found = runner.invoke(app, ["check", "--json"], env={"CRMHUB_CONFIG": str(config)})
    missing = runner.invoke(app, ["check"], env={"CRMHUB_CONFIG": None})

    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["config"] == str(config)
    message = error_of(missing, 2)
    assert "CRMHUB_CONFIG" in message
    assert "--config" in message


# --------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    folder = tmp_path_factory.mktemp("demo") / "crmhub-demo"
    return folder, runner.invoke(app, ["demo", "--dir", str(folder)])


def test_the_demo_syncs_tells_of_the_conflict_and_where_to_look_next(
    demo_dir: tuple[Path, Result],
):
    folder, result = demo_dir
    assert result.exit_code == 0, result.output
    assert "conflict" in result.stdout
    assert "Where to look next" in result.stdout
    config = folder / "crmhub.yaml"
    assert f"crmhub conflicts list --all --config {config}" in result.stdout

    settled = cli_json(config, "conflicts", "list", "--all")
    [title] = [c for c in settled if c["field"] == "job_title"]
    assert title["status"] == "settled"
    assert title["policy"] == "newest"
    assert set(title["candidates"]) == {"hubspot", "zoho"}
    assert cli_json(config, "conflicts", "list") == []  # nothing left for a person


def test_the_demo_conflict_goes_to_the_newer_edit(demo_dir: tuple[Path, Result]):
    folder, _ = demo_dir
    settled = cli_json(folder / "crmhub.yaml", "conflicts", "list", "--all")
    [title] = [c for c in settled if c["field"] == "job_title"]
    times = {s: datetime.fromisoformat(c["modified_at"]) for s, c in title["candidates"].items()}
    assert times["zoho"] > times["hubspot"]
    assert title["winner"] == "zoho"
    assert title["resolution"] == "Head of Engineering"


def test_the_demo_reports_the_person_zoho_holds_twice(
    demo_dir: tuple[Path, Result],
):
    folder, _ = demo_dir
    config = folder / "crmhub.yaml"
    [duplicate] = [f for f in cli_json(config, "failed", "list") if f["stage"] == "duplicate"]
    assert duplicate["system"] == "zoho"
    assert "same email" in duplicate["reason"]


# --------------------------------------------------------------------------- a real process


def test_piped_output_has_no_colour_codes_and_no_progress_bars(tmp_path: Path):
    config = write_config(tmp_path)
    seed(tmp_path, bad_email=True)
    crmhub = Path(sys.executable).parent / "crmhub"
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "CLICOLOR_FORCE")
    }

    done = subprocess.run(
        [str(crmhub), "sync", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    for stream in (done.stdout, done.stderr):
        assert "\x1b" not in stream
        assert "\r" not in stream
        assert "━" not in stream
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# sync main")
    assert lines[1].split("\t")[:3] == ["object", "system", "read"]
    assert "contacts\tb\t" in done.stdout
    assert "1 record(s) failed: crmhub failed list" in done.stdout


def test_a_sandbox_serves_until_interrupted_and_its_printed_entry_works(tmp_path: Path):
    crmhub = Path(sys.executable).parent / "crmhub"
    server = subprocess.Popen(
        [str(crmhub), "sandbox", "zoho", "--seed", "30", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        announced = json.loads(server.stdout.readline())
        assert announced["url"].startswith("http://127.0.0.1:")
        system = announced["system"]
        assert system["connector"] == "zoho"
        config = tmp_path / "crmhub.yaml"
        config.write_text(
            json.dumps(
                {
                    "database": f"sqlite:///{tmp_path}/state.db",
                    "systems": {"crm": system, "mem": {"connector": "memory", "path": "m.json"}},
                    "syncs": {"main": {"systems": ["crm", "mem"], "objects": ["contacts"]}},
                }
            )
        )
        checked = cli(config, "check", "--json")
        assert checked.exit_code == 0, checked.output
        synced = cli(config, "sync", "--json")
        assert synced.exit_code == 0, synced.output
        [report] = json.loads(synced.stdout)
        assert report["counts"]["contacts"]["crm"]["read"] == 30
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=10) == 0
