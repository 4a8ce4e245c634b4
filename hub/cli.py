"""The ``crmhub`` command line.

Public entry points: :data:`app` (the Typer application) and :func:`main` (the console script).

Exit codes, the same for every command: 0 everything synced; 1 some records failed or wait in
conflict (or the sync is running elsewhere); 2 bad configuration or usage; 3 a system could not
be reached or refused our credentials. Errors are one line on stderr naming the culprit.
Progress bars go to stderr and only on a terminal; ``--json`` output is JSON and nothing else.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from connectors.base import ReportsHeadroom
from connectors.errors import ConnectorError
from hub import admin, audit
from hub.config import Config, ConfigError, load_config
from hub.db import DatabaseError, open_database
from hub.engine import LeaseHeldError, MassDeleteError
from hub.logs import LOG_FORMATS, configure_logging, hide_secrets
from hub.migration import MigrationError
from hub.report import RunReport
from hub.runtime import build_connector, run_sync

app = typer.Typer(
    name="crmhub",
    help="Keep several CRMs consistent: deduplicated, audited, N-way sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
conflicts_app = typer.Typer(help="Conflicts waiting for a person, and how to settle them.")
failed_app = typer.Typer(help="Records that could not be synced, in the vendor's own words.")
audit_app = typer.Typer(help="The audit trail's hash chain: check it, archive old entries.")
links_app = typer.Typer(help="How records in different systems are linked, and why.")
migrate_app = typer.Typer(
    help="Move one CRM's records into another: plan, rehearse, run, verify.",
    no_args_is_help=True,
)
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(failed_app, name="failed")
app.add_typer(audit_app, name="audit")
app.add_typer(links_app, name="links")
app.add_typer(migrate_app, name="migrate")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (else $CRMHUB_CONFIG, else ./crmhub.yaml)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SyncFilter = Annotated[str | None, typer.Option("--sync", help="Only this sync.")]

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_UNREACHABLE = 0, 1, 2, 3


def fail(message: str, code: int) -> NoReturn:
    err.print(f"crmhub: {message}", markup=False)
    raise typer.Exit(code)


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except DatabaseError as exc:
        fail(str(exc), EXIT_CONFIG)
    except admin.AdminError as exc:
        fail(str(exc), EXIT_CONFIG)
    except MigrationError as exc:
        fail(str(exc), EXIT_CONFIG)
    except audit.AuditError as exc:
        fail(str(exc), exc.exit_code)
    except LeaseHeldError as exc:
        fail(str(exc), EXIT_PARTIAL)
    except MassDeleteError as exc:
        fail(str(exc), EXIT_PARTIAL)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)


def _config(config_path: Path | None) -> Config:
    config = load_config(config_path)
    hide_secrets(config.secrets)
    return config


def _load(config_path: Path | None) -> tuple[Config, Engine]:
    config = _config(config_path)
    return config, open_database(config.database)


def _require_known_syncs(config: Config, names: Sequence[str] | None) -> None:
    unknown = [name for name in names or [] if name not in config.syncs]
    if unknown:
        fail(
            f"unknown sync {', '.join(map(repr, unknown))} "
            f"(configured: {', '.join(config.syncs) or 'none'})",
            EXIT_CONFIG,
        )


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str) + "\n")


def _emit_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str | None = None
) -> None:
    """A table for a person on a terminal; tab-separated lines, header first, for a pipe."""
    if out.is_terminal:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    if title:
        sys.stdout.write(f"# {title}\n")
    sys.stdout.write("\t".join(columns) + "\n")
    for row in rows:
        sys.stdout.write("\t".join(cell.replace("\n", "; ").replace("\t", " ") for cell in row))
        sys.stdout.write("\n")


_LOG_LEVELS = ("debug", "info", "warning", "error")


@app.callback()
def _main(
    ctx: typer.Context,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (default: warning; info for crmhub run).",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option("--log-format", help="text, or json: one JSON object per line on stderr."),
    ] = "text",
) -> None:
    if log_level is not None and log_level.lower() not in _LOG_LEVELS:
        fail(f"--log-level: {log_level!r} is not one of {', '.join(_LOG_LEVELS)}", EXIT_CONFIG)
    if log_format not in LOG_FORMATS:
        fail(f"--log-format: {log_format!r} is not one of {', '.join(LOG_FORMATS)}", EXIT_CONFIG)
    configure_logging(getattr(logging, (log_level or "warning").upper()), log_format)
    ctx.obj = {"log_level_given": log_level is not None}


# --------------------------------------------------------------------------- sync


@app.command()
def sync(
    names: Annotated[list[str] | None, typer.Argument(help="Syncs to run (default: all).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and plan; write nothing anywhere.")
    ] = False,
    allow_mass_delete: Annotated[
        bool, typer.Option("--allow-mass-delete", help="Propagate deletes past the guard.")
    ] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run syncs once, now."""
    with _errors_to_exit_codes():
        config, db = _load(config_path)
        _require_known_syncs(config, names)
        with _progress(enabled=not as_json) as progress, _interrupt_message():
            reports = run_sync(
                db,
                config,
                names,
                dry_run=dry_run,
                allow_mass_delete=allow_mass_delete,
                progress=progress,
            )
    if as_json:
        _print_json([report.as_dict() for report in reports])
    else:
        for report in reports:
            _print_report(report)
    raise typer.Exit(max((report.exit_code for report in reports), default=0))


@contextmanager
def _interrupt_message() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        # What was committed stays; intents and cursors make the next run resume cleanly.
        fail("interrupted; what was committed stays, and the next sync resumes from there", 130)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, str, int, int | None], None] | None]:
    if not enabled or not err.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>8,.0f}{task.fields[of]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(phase: str, system: str, done: int, total: int | None) -> None:
        label = f"{phase} {system}".strip()
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total, of="")
        bar.update(tasks[label], completed=done, total=total, of=f" / {total:,}" if total else "")

    with bar:
        yield update


_COLUMNS = (
    "read",
    "unchanged",
    "matched",
    "created",
    "updated",
    "deleted",
    "conflicts",
    "failed",
    "duplicates",
)
_DRY_COLUMNS = (
    "read",
    "unchanged",
    "to_link",
    "to_create",
    "to_update",
    "to_delete",
    "conflicts",
    "failed",
    "duplicates",
)


def _print_report(report: RunReport) -> None:
    columns = _DRY_COLUMNS if report.dry_run else _COLUMNS
    title = f"sync {report.sync}" + (" (dry run: nothing was written)" if report.dry_run else "")
    if report.run_id:
        title += f" — run {report.run_id}, {report.status}"
    _emit_table(
        ["object", "system", *(c.replace("_", " ") for c in columns)],
        (
            [object_type, system, *(_n(counter.get(c, 0)) for c in columns)]
            for object_type, systems in report.counts.items()
            for system, counter in systems.items()
        ),
        title=title,
    )
    for failure in report.failures:
        out.print(f"[red]✗ {failure.system}[/red]: {failure.message}")
    for error in report.errors[:20]:
        out.print(f"[yellow]! {error}[/yellow]", markup=True)
    if report.open_conflicts:
        out.print(f"{report.open_conflicts} conflict(s) wait for a person: crmhub conflicts list")
    if report.open_dead_letters:
        out.print(f"{report.open_dead_letters} record(s) failed: crmhub failed list")


def _n(value: int) -> str:
    return f"{value:,}" if value else "·"


# --------------------------------------------------------------------------- status


@app.command()
def status(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Each sync's last run, next run, open conflicts and failed records, and each system's
    rate-limit headroom where its vendor reports it."""
    with _errors_to_exit_codes():
        config, db = _load(config_path)
        rows = admin.sync_status(db, list(config.syncs))
        migrations = admin.sync_status(db, admin.migration_names(db, list(config.syncs)))
        in_syncs = {name for sync in config.syncs.values() for name in sync.systems}
        headroom = admin.rate_limit_headroom(db, [s for s in config.systems if s in in_syncs])
    now = datetime.now(UTC)
    for row in migrations:
        # Run by hand (crmhub migrate run), never on a schedule.
        row.update(migration=True, headroom={}, schedule=None, next_run=None)
    for row in rows:
        row["migration"] = False
        row["headroom"] = {system: headroom[system] for system in config.syncs[row["sync"]].systems}
        schedule = config.syncs[row["sync"]].schedule
        row["schedule"] = str(schedule) if schedule else None
        # When crmhub run (or run --once) runs it next: due now, or its schedule's next time
        # after the last run began.
        last_start = row["last_run"]["started_at"] if row["last_run"] else None
        upcoming = admin.next_run_at(
            schedule, datetime.fromisoformat(last_start) if last_start else None, now
        )
        row["next_run"] = upcoming.isoformat() if upcoming else None
    rows += migrations
    if as_json:
        _print_json(rows)
        return
    table: list[list[str]] = []
    for row in rows:
        last = row["last_run"]
        counts = last["counts"] if last else {}
        writes = sum(counts.get(k, 0) for k in ("created", "updated", "deleted"))
        table.append(
            [
                row["sync"],
                "migration" if row["migration"] else row["schedule"] or "manual",
                last["started_at"][:19].replace("T", " ") if last else "never",
                "by hand" if row["migration"] else _next_run(row["next_run"], now),
                f"{last['seconds']:.1f}s" if last and last["seconds"] is not None else "",
                last["status"] if last else "",
                f"{writes:,}" if last else "",
                str(row["open_conflicts"]),
                str(row["failed_records"]),
            ]
        )
    columns = [
        "sync",
        "schedule",
        "last run",
        "next run",
        "took",
        "outcome",
        "writes",
        "conflicts",
        "failed",
    ]
    _emit_table(columns, table)
    _emit_table(
        ["system", "budget", "remaining / limit", "window", "as of"],
        _headroom_rows(config, headroom),
        title="rate-limit headroom",
    )


def _headroom_rows(config: Config, headroom: dict[str, dict[str, Any] | None]) -> list[list[str]]:
    rows: list[list[str]] = []
    for system, seen in headroom.items():
        if seen is None:
            factory = config.systems[system].connector_class
            reports = isinstance(factory, type) and issubclass(factory, ReportsHeadroom)
            what = "none reported yet" if reports else "not reported by the vendor"
            rows.append([system, "", what, "", ""])
            continue
        as_of = seen["observed_at"][:19].replace("T", " ")
        for name, figures in seen["budgets"].items():
            budget = f"{name} ({figures['scope']})" if figures.get("scope") else name
            window = figures.get("window", "")
            if figures.get("resets_at"):
                window += f", frees from {figures['resets_at'][:19].replace('T', ' ')}"
            rows.append([system, budget, _budget_figures(figures), window, as_of])
    return rows


def _budget_figures(figures: dict[str, Any]) -> str:
    """``98 / 100``, or for a budget the vendor reports as spent, ``12.3 s used / 480 s``."""
    unit = " s" if figures.get("unit") == "seconds" else ""
    limit = f" / {_figure(figures['limit'])}{unit}" if "limit" in figures else ""
    if "remaining" in figures:
        return f"{_figure(figures['remaining'])}{unit}{limit}"
    if "used" in figures:
        return f"{_figure(figures['used'])}{unit} used{limit}"
    return ""


def _figure(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _next_run(when: str | None, now: datetime) -> str:
    if when is None:
        return "when asked"
    moment = datetime.fromisoformat(when)
    return "due now" if moment <= now else moment.isoformat()[:19].replace("T", " ")


# --------------------------------------------------------------------------- log


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return admin.parse_moment(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", EXIT_CONFIG)


@app.command("log")
def log_command(
    sync_name: SyncFilter = None,
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    object_type: Annotated[
        str | None, typer.Option("--object", help="companies, contacts or deals.")
    ] = None,
    record: Annotated[
        str | None, typer.Option(help="A remote id or canonical id: its whole history.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="create, update, delete, reject, link, unlink, relink, detach, conflict, "
            "choose, resolve."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time, or an age like 2h.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time, or an age.")] = None,
    run: Annotated[int | None, typer.Option(help="Only this run id.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the newest N entries.")] = None,
    config_path: ConfigOption = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="table (default), jsonl (one JSON entry a line) or csv (a header, then one "
            "entry a row; changes as JSON in one column).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format jsonl.")] = False,
) -> None:
    """The audit log: every write, link, conflict and delete, with before and after."""
    if output is not None and output not in _LOG_FORMATS:
        fail(f"--format: {output!r} is not one of {', '.join(_LOG_FORMATS)}", EXIT_CONFIG)
    if as_json and output not in (None, "jsonl"):
        fail(f"--json means --format jsonl; it cannot go with --format {output}", EXIT_CONFIG)
    wanted = admin.AuditFilter(
        sync=sync_name,
        system=system,
        object_type=object_type,
        record=record,
        action=action,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        run_id=run,
        limit=limit,
    )
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        entries = admin.audit_entries(db, wanted)
        output = "jsonl" if as_json else output or "table"
        if output == "jsonl":
            for entry in entries:
                sys.stdout.write(json.dumps(entry, default=str) + "\n")
            return
        if output == "csv":
            _write_csv(entries)
            return
        _emit_table(
            ["time", "run", "system", "object", "remote id", "action", "changes", "why"],
            (
                [
                    entry["at"][:19].replace("T", " "),
                    str(entry["run_id"] or ""),
                    entry["system"] or "",
                    entry["object_type"],
                    entry["remote_id"] or "",
                    entry["action"],
                    _changes(entry["changes"]),
                    entry["reason"] or "",
                ]
                for entry in entries
            ),
        )


_LOG_FORMATS = ("table", "jsonl", "csv")


def _write_csv(entries: Iterable[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(audit.ENTRY_COLUMNS)
    for entry in entries:
        changes = entry.get("changes")
        writer.writerow(
            [
                json.dumps(changes, ensure_ascii=False, default=str)
                if name == "changes" and changes is not None
                else entry.get(name)
                for name in audit.ENTRY_COLUMNS
            ]
        )


def _changes(changes: dict[str, Any] | None) -> str:
    if not changes:
        return ""
    return "\n".join(
        f"{name}: {_short(before)} → {_short(after)}" for name, (before, after) in changes.items()
    )


def _short(value: Any) -> str:
    if value is None:
        return "∅"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- conflicts


@conflicts_app.command("list")
def conflicts_list(
    sync_name: SyncFilter = None,
    include_settled: Annotated[
        bool, typer.Option("--all", help="Also conflicts a policy settled.")
    ] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Conflicts waiting for a person (with --all, also those a policy settled)."""
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        rows = admin.list_conflicts(db, sync_name, include_settled=include_settled)
    if as_json:
        _print_json(rows)
        return
    table: list[list[str]] = []
    for row in rows:
        values = "\n".join(
            f"{system}: {_short(c['value'])}" for system, c in row["candidates"].items()
        )
        outcome = (
            f"{row['winner']} ({row['policy']})"
            if row["winner"]
            else (_short(row["resolution"]) if row["status"] != "open" else "")
        )
        table.append(
            [
                str(row["id"]),
                row["sync"],
                row["object_type"],
                row["canonical_id"],
                row["field"],
                values,
                row["status"],
                outcome,
            ]
        )
    _emit_table(["id", "sync", "object", "record", "field", "values", "status", "outcome"], table)
    if rows and not include_settled:
        out.print("settle one: crmhub conflicts resolve ID --system NAME  (or --value TEXT)")


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[int, typer.Argument(help="The conflict's id (crmhub conflicts list).")],
    system: Annotated[str | None, typer.Option(help="Take this system's value.")] = None,
    value: Annotated[str | None, typer.Option(help="Take this value instead.")] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Settle a conflict; the next sync writes the chosen value everywhere."""
    if (system is None) == (value is None):
        fail("conflicts resolve: give exactly one of --system or --value", EXIT_CONFIG)
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        row = admin.resolve_conflict(db, conflict_id, system=system, value=value)
    if as_json:
        _print_json(row)
    else:
        out.print(
            f"conflict {conflict_id} resolved: {row['field']} = {_short(row['resolution'])}"
            "; the next sync writes it to every system."
        )


# --------------------------------------------------------------------------- failed


@failed_app.command("list")
def failed_list(
    sync_name: SyncFilter = None,
    include_closed: Annotated[
        bool, typer.Option("--all", help="Also resolved and discarded ones.")
    ] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Records that failed to map or that a vendor refused, and why."""
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        rows = admin.list_failed(db, sync_name, include_closed=include_closed)
    if as_json:
        _print_json(rows)
        return
    _emit_table(
        ["id", "sync", "system", "object", "record", "stage", "why", "tries", "status"],
        (
            [
                str(row["id"]),
                row["sync"],
                row["system"],
                row["object_type"],
                row["remote_id"] or row["canonical_id"] or "",
                row["stage"],
                row["reason"],
                str(row["attempts"]),
                row["status"],
            ]
            for row in rows
        ),
    )


@failed_app.command("retry")
def failed_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids to retry.")] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every failed record.")] = False,
    config_path: ConfigOption = None,
) -> None:
    """Retry failed records on the next sync instead of waiting for their backoff."""
    if not ids and not retry_all:
        fail("failed retry: name record ids, or --all", EXIT_CONFIG)
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        count = admin.retry_failed(db, None if retry_all else list(ids or []))
    out.print(f"{count} record(s) will be retried on the next sync.")


@failed_app.command("discard")
def failed_discard(
    ids: Annotated[list[int], typer.Argument(help="Ids to stop retrying.")],
    config_path: ConfigOption = None,
) -> None:
    """Stop retrying failed records (they stay listed with --all)."""
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        count = admin.discard_failed(db, ids)
    out.print(f"{count} record(s) discarded.")


# --------------------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="Check this file written by crmhub audit prune instead of the database.",
        ),
    ] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk the audit chain and name every edited, removed or reordered entry: exit 0 when it
    is intact, 1 when it is not."""
    with _errors_to_exit_codes():
        if export is not None:
            checked = audit.verify_file(export)
        else:
            _, db = _load(config_path)
            checked = audit.verify(db)
    if as_json:
        _print_json(checked.as_dict())
    else:
        for finding in checked.findings:
            which = f"entries {finding.id} to {finding.through}" if finding.through else None
            out.print(
                f"{which or f'entry {finding.id}'} {finding.problem}: {finding.detail}",
                markup=False,
            )
        out.print(_verdict(checked, export), markup=False)
    raise typer.Exit(EXIT_OK if checked.ok else EXIT_PARTIAL)


def _verdict(checked: audit.Verification, export: Path | None) -> str:
    what = f"export {export}" if export else "audit chain"
    if not checked.ok:
        return f"{what} broken: {len(checked.findings)} problem(s) in {checked.entries:,} entries"
    span = f" (ids {checked.first_id} to {checked.last_id})" if checked.entries else ""
    text = f"{what} intact: {checked.entries:,} entries{span}"
    if export:
        return f"{text}; it follows {checked.start_hash} and ends at {checked.head_hash}"
    if checked.anchors:
        last = checked.anchors[-1]
        text += (
            f"; {len(checked.anchors)} prune(s), the last to {last['export']} "
            f"(entries {last['first_id']} to {last['last_id']})"
        )
    return f"{text}; head {checked.head_hash}"


@audit_app.command("prune")
def audit_prune(
    before: Annotated[
        str,
        typer.Option(
            "--before", help="Archive entries older than this date/time, or an age like 365d."
        ),
    ],
    export: Annotated[
        Path,
        typer.Option(
            "--export",
            dir_okay=False,
            help="New JSON Lines file to archive them to, first (required: entries are never "
            "deleted without a copy).",
        ),
    ],
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Archive the oldest entries to a file, then delete them; what remains still verifies."""
    cutoff = _when(before, "--before")
    assert cutoff is not None
    with _errors_to_exit_codes():
        _, db = _load(config_path)
        pruned = audit.prune(db, cutoff, export)
    if as_json:
        _print_json(pruned.as_dict())
    elif not pruned.entries:
        out.print(f"nothing to prune: no entry before {cutoff.isoformat()}", markup=False)
    else:
        out.print(
            f"pruned {pruned.entries:,} entries (ids {pruned.first_id} to {pruned.last_id}) "
            f"into {export}; the remaining chain follows {pruned.anchor}",
            markup=False,
        )


# --------------------------------------------------------------------------- links


@links_app.command("show")
def links_show(
    system: Annotated[str, typer.Argument(help="The system the record is in.")],
    remote_id: Annotated[str, typer.Argument(help="The record's id in that system.")],
    object_type: Annotated[
        str | None, typer.Option("--object", help="companies, contacts or deals.")
    ] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The canonical record a system's record is linked to, every record linked to it in the
    other systems, and the rule and time that linked each."""
    with _errors_to_exit_codes():
        config, db = _load(config_path)
        try:
            records = admin.record_links(db, system, remote_id, object_type)
        except admin.NotFoundError as exc:
            if system not in config.systems:
                known = ", ".join(config.systems) or "none"
                raise admin.NotFoundError(f"{exc} (configured systems: {known})") from None
            raise
    if as_json:
        _print_json(records)
        return
    for record in records:
        state = ", deleted" if record["deleted"] else ""
        _emit_table(
            ["field", "value"],
            ([name, _full(value)] for name, value in sorted((record["base"] or {}).items())),
            title=f"{record['object_type']} {record['canonical_id']} in sync {record['sync']}"
            f"{state}: the values every system last agreed on",
        )
        _emit_table(
            ["system", "remote id", "rule", "linked at", "run", "audit entry", "state"],
            (
                [
                    link["system"],
                    link["remote_id"],
                    link["rule"],
                    link["linked_at"][:19].replace("T", " "),
                    str(link["audit"]["run_id"] or "") if link["audit"] else "",
                    str(link["audit"]["id"]) if link["audit"] else "pruned",
                    "detached" if link["detached"] else "linked",
                ]
                for link in record["links"]
            ),
            title="linked records",
        )


def _full(value: Any) -> str:
    if value is None:
        return "∅"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- check


@app.command()
def check(config_path: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Validate the config, open the database, and reach every system with its credentials."""
    with _errors_to_exit_codes():
        config, _ = _load(config_path)
    results: list[dict[str, Any]] = []
    for name, system in config.systems.items():
        try:
            connector = build_connector(system)
            try:
                connector.check()
            finally:
                connector.close()
            results.append(
                {
                    "system": name,
                    "connector": system.connector,
                    "ok": True,
                    "error": None,
                    "exit_code": 0,
                }
            )
        except ConnectorError as exc:
            results.append(
                {
                    "system": name,
                    "connector": system.connector,
                    "ok": False,
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                }
            )
    code = max((int(r["exit_code"]) for r in results), default=0)
    if as_json:
        _print_json({"config": str(config.source), "systems": results})
    else:
        out.print(f"config {config.source}: valid; database reachable")
        for r in results:
            mark = "[green]✓[/green]" if r["ok"] else "[red]✗[/red]"
            out.print(
                f"{mark} {r['system']} ({r['connector']})" + ("" if r["ok"] else f": {r['error']}")
            )
    raise typer.Exit(code)


# --------------------------------------------------------------------------- run


QueueOption = Annotated[
    str | None, typer.Option("--queue", help="Celery queue to send runs to (default: crmhub).")
]


@app.command("run")
def run_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None, typer.Argument(help="Syncs to run (default: every scheduled one).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run every sync that is due once, then exit.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="inprocess: run syncs here; celery: enqueue them for crmhub worker processes "
            "(the config's broker).",
        ),
    ] = "inprocess",
    queue: QueueOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every sync on its schedule until SIGTERM or Ctrl-C (the current page finishes)."""
    from hub.scheduler import EXECUTORS, run_daemon, run_due_once

    if executor not in EXECUTORS:
        fail(f"--executor: {executor!r} is not one of {', '.join(EXECUTORS)}", EXIT_CONFIG)
    if queue is not None and executor != "celery":
        fail("--queue goes with --executor celery", EXIT_CONFIG)
    if not once and not (ctx.obj or {}).get("log_level_given"):
        # A daemon reports every run it starts and how it ended; one-off commands print their
        # own report and log only what went wrong.
        logging.getLogger("crmhub").setLevel(logging.INFO)
    with _errors_to_exit_codes():
        config = _config(config_path)
        _require_known_syncs(config, names)
        if executor == "celery":
            _run_on_workers(config, names, once=once, queue=queue, as_json=as_json)
        if not once:
            raise typer.Exit(run_daemon(config.source, names))
        reports = run_due_once(config.source, names)
    _print_reports(reports, as_json=as_json)
    raise typer.Exit(max((report.exit_code for report in reports), default=0))


def _print_reports(reports: Sequence[RunReport], *, as_json: bool) -> None:
    if as_json:
        _print_json([report.as_dict() for report in reports])
    else:
        for report in reports:
            _print_report(report)
        if not reports:
            err.print("crmhub: no sync was due", markup=False)


def _run_on_workers(
    config: Config, names: Sequence[str] | None, *, once: bool, queue: str | None, as_json: bool
) -> NoReturn:
    """``crmhub run --executor celery``: the daemon enqueues; ``--once`` also waits, and exits
    as ``run --once`` does."""
    from hub.scheduler import enqueue_due_once, run_daemon
    from hub.workers import BrokerError

    try:
        if not once:
            raise typer.Exit(run_daemon(config.source, names, executor="celery", queue=queue))
        outcomes = enqueue_due_once(config.source, names, queue=queue)
    except BrokerError as exc:
        fail(str(exc), exc.exit_code)
    reports = [outcome.report for outcome in outcomes if outcome.report is not None]
    _print_reports(reports, as_json=as_json)
    for outcome in outcomes:
        if outcome.skipped:
            err.print(f"crmhub: sync {outcome.sync} was running elsewhere; skipped", markup=False)
        elif outcome.error is not None:
            err.print(f"crmhub: sync {outcome.sync} not run: {outcome.error}", markup=False)
    raise typer.Exit(max((outcome.exit_code for outcome in outcomes), default=0))


# --------------------------------------------------------------------------- worker


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-n",
            min=1,
            help="Syncs this worker runs at once, each in its own process (default: 1).",
        ),
    ] = 1,
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-Q", help="Queues to take runs from (default: crmhub)."),
    ] = None,
    config_path: ConfigOption = None,
) -> None:
    """Run syncs that crmhub run --executor celery enqueues, until SIGTERM (running syncs
    stop after their current page; SIGQUIT or a second Ctrl-C stops at once, and their runs
    go to other workers)."""
    from hub.workers import DEFAULT_QUEUE, BrokerError, run_worker

    if not (ctx.obj or {}).get("log_level_given"):
        logging.getLogger("crmhub").setLevel(logging.INFO)
    chosen = [name for item in queues or [DEFAULT_QUEUE] for name in item.split(",") if name]
    with _errors_to_exit_codes():
        config = _config(config_path)
        try:
            code = run_worker(config, concurrency=concurrency, queues=chosen)
        except BrokerError as exc:
            fail(str(exc), exc.exit_code)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- serve


@app.command()
def serve(
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on (0: any free port).")
    ] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    hash_password: Annotated[
        bool,
        typer.Option(
            "--hash-password",
            help="Read a password (asked for, or one line on stdin), print its hash for "
            "dashboard.admin_password_hash, and exit.",
        ),
    ] = False,
    config_path: ConfigOption = None,
) -> None:
    """Serve the admin dashboard, its JSON API under /api/ and Prometheus metrics at /metrics.

    The admin password is $CRMHUB_ADMIN_PASSWORD or the hash under dashboard.admin_password_hash;
    scripts may call the API with Authorization: Bearer $CRMHUB_API_TOKEN."""
    from hub.dashboard import auth

    if hash_password:
        try:
            sys.stdout.write(auth.hash_password(_new_password()) + "\n")
        except ValueError as exc:
            fail(str(exc), EXIT_CONFIG)
        return
    import uvicorn

    from hub.dashboard.app import create_app

    with _errors_to_exit_codes():
        config, db = _load(config_path)
        credentials = auth.load_credentials(config)
    hide_secrets(
        value for value in (os.environ.get(auth.PASSWORD_ENV), credentials.api_token) if value
    )
    try:
        listener = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_CONFIG)
    bound = listener.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    err.print(f"crmhub dashboard on http://{where}:{bound}/ ; Ctrl-C stops it.", markup=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, db, credentials),
            log_config=None,  # our own handlers (configure_logging) take uvicorn's lines
            server_header=False,
            proxy_headers=True,  # from a TLS proxy on this machine: https, so Secure cookies
        )
    )
    # uvicorn stops gracefully on SIGINT or SIGTERM, then raises the signal again for the
    # handler it found: make both a plain stop, exit 0, as for crmhub run.
    signal.signal(signal.SIGTERM, _interrupt)
    with suppress(KeyboardInterrupt):
        server.run(sockets=[listener])


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _new_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Admin password", hide_input=True, confirmation_prompt=True)
    return password


# --------------------------------------------------------------------------- sandbox


@app.command()
def sandbox(
    vendor: Annotated[
        str, typer.Argument(help="Which vendor's API to emulate: hubspot, zoho, ...")
    ],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port).")] = 0,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; loopback unless you mean otherwise.")
    ] = "127.0.0.1",
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed the account with N contacts (and N/10 companies, N/5 deals)."
        ),
    ] = 100,
    random_seed: Annotated[
        int, typer.Option("--random-seed", help="Makes the data and the random faults repeatable.")
    ] = 0,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Delay added to every answer.")
    ] = 0.0,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit", help="Requests per second the vendor allows (default: its own budget)."
        ),
    ] = None,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            help="Share of requests answered with a fault: 5xx, 429, reset, HTML, cut-off JSON.",
        ),
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Serve a local emulator of a vendor's API, to try crmhub without an account."""
    from connectors.sandbox import SandboxOptions, load_sandbox

    try:
        options = SandboxOptions(
            records=seed,
            seed=random_seed,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fault_rate=fault_rate,
        )
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    with _errors_to_exit_codes():
        try:
            server = load_sandbox(vendor, options, port=port, host=host)
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_CONFIG)
    system = server.connector_settings()
    if as_json:
        _print_json({"vendor": vendor, "url": server.url, "system": system})
    else:
        err.print(
            f"{vendor} sandbox on {server.url}: {seed:,} contacts; Ctrl-C stops it.\n"
            "Its credentials are the sandbox's own. A crmhub.yaml system for it:",
            markup=False,
        )
        out.print(yaml.safe_dump({"systems": {f"{vendor}-sandbox": system}}, sort_keys=False))
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its config, data and database.")
    ] = Path("crmhub-demo"),
) -> None:
    """Sync two seeded CRMs, edit both, sync again, and show what happened."""
    from hub.demo import run_demo

    with _errors_to_exit_codes():
        run_demo(directory, out)


# --------------------------------------------------------------------------- migrate

FromOption = Annotated[str, typer.Option("--from", help="The system to move records out of.")]
ToOption = Annotated[str, typer.Option("--to", help="The system to move records into.")]
ObjectsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--objects", help="Object types to move (repeat or comma-separate; default: all)."
    ),
]
ValuesOption = Annotated[
    Path | None,
    typer.Option("--values", help="Values file mapping what the default maps do not know."),
]


def _migration(
    config: Config, source: str, target: str, objects: list[str] | None, values: Path | None
) -> Any:
    from hub.migration import Migration

    wanted = [part.strip() for item in objects or [] for part in item.split(",") if part.strip()]
    return Migration.from_config(config, source, target, wanted or None, values)


@migrate_app.command("plan")
def migrate_plan(
    source: FromOption,
    target: ToOption,
    objects: ObjectsOption = None,
    values: ValuesOption = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the plan as FILE.html and FILE.csv."),
    ] = None,
    starter: Annotated[
        Path | None,
        typer.Option(
            "--starter",
            help="Where to write the values file for unmapped values "
            "(default: migrate-FROM-to-TO-values.yaml here).",
        ),
    ] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read both systems, write nothing, and tell what a migration would do."""
    from hub.migration import load_values, plan_migration, starter_values
    from hub.migration_report import report_paths, write_csv, write_html

    with _errors_to_exit_codes():
        config, db = _load(config_path)
        migration = _migration(config, source, target, objects, values)
        try:
            paths = report_paths(report) if report is not None else None
        except ValueError as exc:
            fail(f"--report: {exc}", EXIT_CONFIG)
        # Found out now, not after reading two whole accounts.
        for path in (*(paths or ()), starter):
            if path is not None and not path.parent.is_dir():
                fail(f"cannot write {path}: no folder {path.parent}", EXIT_CONFIG)
        starter_path = starter or Path(f"{migration.name}-values.yaml")
        # A starter a person has begun to fill keeps what they wrote.
        kept = migration.values
        if starter_path.exists() and not kept:
            kept = load_values(starter_path, (source, target), unfilled_ok=True)
        with _phase_progress(enabled=not as_json) as progress, _interrupt_message():
            plan = plan_migration(db, migration, progress=progress)
    text = starter_values(plan, kept)
    try:
        if text is not None:
            starter_path.write_text(text, encoding="utf-8")
        if paths is not None:
            write_html(plan, paths[0])
            write_csv(plan, paths[1])
    except OSError as exc:
        if as_json:
            _print_json(plan.as_dict())
        fail(f"cannot write {exc.filename}: {exc.strerror}", EXIT_CONFIG)
    if as_json:
        data = plan.as_dict()
        data["values_file"] = str(starter_path) if text is not None else None
        data["report"] = [str(path) for path in paths] if paths else None
        _print_json(data)
    else:
        _print_plan(plan)
        if text is not None:
            out.print(
                f"Values with no mapping: fill them in {starter_path}, then pass it back "
                f"with --values {starter_path}"
            )
        if paths is not None:
            out.print(f"Report: {paths[0]} and {paths[1]}")
    raise typer.Exit(plan.exit_code)


def _print_plan(plan: Any) -> None:
    _emit_table(
        [
            "object",
            f"in {plan.source}",
            f"in {plan.target}",
            "to create",
            "to match",
            "to update",
            "unchanged",
            "duplicates",
            "unreadable",
            "value gaps",
            "dropped fields",
        ],
        (
            [
                p.object_type,
                _n(p.source_records),
                _n(p.target_records),
                _n(p.to_create),
                _n(p.matched)
                + (
                    " (" + ", ".join(f"{n:,} on {rule}" for rule, n in p.to_match.items()) + ")"
                    if p.to_match
                    else ""
                ),
                _n(p.to_match_changed + p.to_update),
                _n(p.unchanged),
                _n(p.duplicates),
                _n(sum(p.unreadable.values()) + p.blocked),
                _n(len(p.gaps)),
                ", ".join(d.field_name for d in p.dropped) or "·",
            ]
            for p in plan.objects
        ),
        title=f"migration plan {plan.source} → {plan.target} (nothing was written)",
    )
    _emit_table(
        ["system", "API calls", "least time at its rate limit"],
        (
            [
                system,
                f"{calls:,}",
                _least_time(plan.seconds.get(system)),
            ]
            for system, calls in plan.calls.items()
        ),
        title="calls",
    )
    if plan.gaps:
        _emit_table(
            ["object", "side", "field", "value", "records", "fix in the values file"],
            (
                [
                    gap.object_type,
                    gap.side,
                    gap.field_name + (f" ({gap.vendor_field})" if gap.vendor_field else ""),
                    gap.value,
                    f"{gap.records:,}",
                    gap.fix or f"in systems.{plan.target}.map (the target's own values)",
                ]
                for gap in plan.gaps
            ),
            title="values with no mapping",
        )
    duplicates = [d for p in plan.objects for d in p.listed_duplicates]
    if duplicates:
        _emit_table(
            ["object", f"{plan.source} id", "same as", "rule"],
            ([d.object_type, d.remote_id, d.duplicate_of, d.rule] for d in duplicates[:20]),
            title="duplicates inside the source (merge them there; crmhub moves one)",
        )
    for p in plan.objects:
        for reason, count in p.unreadable.most_common(5):
            out.print(f"[yellow]! {count:,} record(s): {reason}[/yellow]", markup=True)
    for note in plan.notes:
        out.print(f"· {note}", markup=False)
    for error in plan.errors:
        out.print(f"[red]✗ {error}[/red]", markup=True)


def _least_time(seconds: float | None) -> str:
    from hub.migration_report import duration

    return "no client-side limit" if seconds is None else duration(seconds)


@migrate_app.command("run")
def migrate_run(
    source: FromOption,
    target: ToOption,
    objects: ObjectsOption = None,
    values: ValuesOption = None,
    sample: Annotated[
        int | None,
        typer.Option("--sample", min=1, help="Move only the first N records of each type."),
    ] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move the records, in dependency order; run it again for a delta pass.

    Ctrl-C stops after the page in hand; what was moved stays moved, and the next run goes on
    from there.
    """
    from hub.migration import run_migration

    stopping = _StopOnInterrupt()
    with _errors_to_exit_codes():
        config, db = _load(config_path)
        migration = _migration(config, source, target, objects, values)
        with _phase_progress(enabled=not as_json) as progress, stopping, _interrupt_message():
            report = run_migration(
                db, migration, sample=sample, progress=progress, should_stop=stopping
            )
    if as_json:
        _print_json(report.as_dict())
    else:
        _print_report(report)
        if report.status == "interrupted":
            out.print("Stopped part-way: run the same command again to go on from here.")
        elif sample is not None:
            out.print(
                f"Rehearsal of {sample:,} per type done: check it in {target}, then run "
                "without --sample to move the rest."
            )
        else:
            out.print(
                f"Check it: crmhub migrate verify --from {source} --to {target}"
                + "".join(f" --objects {name}" for name in objects or [])
            )
    raise typer.Exit(report.exit_code or (130 if report.status == "interrupted" else 0))


class _StopOnInterrupt:
    """The first Ctrl-C asks the run to stop after its page; a second one stops it at once."""

    def __init__(self) -> None:
        self.asked = False
        self._previous: Any = None

    def __call__(self) -> bool:
        return self.asked

    def __enter__(self) -> _StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        err.print("crmhub: stopping after this page (Ctrl-C again to stop at once)", markup=False)


@migrate_app.command("verify")
def migrate_verify(
    source: FromOption,
    target: ToOption,
    objects: ObjectsOption = None,
    values: ValuesOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare every migrated record field by field; exit 0 only when all match."""
    from hub.migration_verify import verify_migration

    with _errors_to_exit_codes():
        config, db = _load(config_path)
        migration = _migration(config, source, target, objects, values)
        with _phase_progress(enabled=not as_json) as progress, _interrupt_message():
            verification = verify_migration(db, migration, progress=progress)
    if as_json:
        _print_json(verification.as_dict())
        raise typer.Exit(verification.exit_code)
    _emit_table(
        [
            "object",
            f"in {source}",
            f"in {target}",
            "matching",
            "missing",
            "differing",
            "extra",
            f"only in {target}",
        ],
        (
            [
                c.object_type,
                _n(c.source_records),
                _n(c.target_records),
                _n(c.matching),
                _n(c.missing),
                _n(c.differing),
                _n(c.extra),
                _n(c.only_in_target),
            ]
            for c in verification.objects
        ),
        title=f"verify {source} → {target}",
    )
    findings = [
        [m.object_type, "missing", m.source_id, m.target_id or "—", m.reason]
        for c in verification.objects
        for m in c.listed_missing
    ]
    findings += [
        [
            d.object_type,
            "differing",
            d.source_id,
            d.target_id,
            "; ".join(
                f"{name}: {_short(mine)} ≠ {_short(theirs)}"
                for name, (mine, theirs) in d.fields.items()
            ),
        ]
        for c in verification.objects
        for d in c.listed_differing
    ]
    findings += [
        [e.object_type, "extra", e.source_id or "—", e.target_id, e.reason]
        for c in verification.objects
        for e in c.listed_extra
    ]
    if findings:
        _emit_table(
            ["object", "finding", f"{source} id", f"{target} id", "detail"],
            findings[:50],
            title="findings"
            + (f" (first 50 of {len(findings)}; --json for all)" if len(findings) > 50 else ""),
        )
        out.print(f"See one record on both sides: crmhub links show {source} <{source} id>")
    for error in verification.errors:
        out.print(f"[red]✗ {error}[/red]", markup=True)
    if verification.clean:
        out.print(f"Every {source} record is in {target} with the same values.")
    raise typer.Exit(verification.exit_code)


@contextmanager
def _phase_progress(
    enabled: bool,
) -> Iterator[Callable[[str, str, int, int | None], None] | None]:
    """One bar per phase of a migration (read, match, move), with an ETA once the total is
    known; on a terminal only."""
    if not enabled or not err.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed:>9,.0f}{task.fields[of]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )
    tasks: dict[str, TaskID] = {}
    verbs = {"read": "read", "match": "match", "reconcile": "move", "verify": "read"}

    def update(phase: str, system: str, done: int, total: int | None) -> None:
        object_type, _, step = phase.partition(":")
        label = f"{object_type}: {verbs.get(step, step)} {system}".strip()
        if label not in tasks:
            tasks[label] = bar.add_task(label, total=total, of="")
        bar.update(tasks[label], completed=done, total=total, of=f" / {total:,}" if total else "")

    with bar:
        yield update


def main() -> None:
    app()
