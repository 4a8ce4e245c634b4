"""The ``crmhub`` command line.

Public entry points: :data:`app` (the Typer application) and :func:`main` (the console script).

Exit codes, the same for every command: 0 everything synced; 1 some records failed or wait in
conflict (or the sync is running elsewhere); 2 bad configuration or usage; 3 a system could not
be reached or refused our credentials. Errors are one line on stderr naming the culprit.
Progress bars go to stderr and only on a terminal; ``--json`` output is JSON and nothing else.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from connectors.errors import ConnectorError
from hub import admin
from hub.config import Config, ConfigError, load_config
from hub.db import DatabaseError, open_database
from hub.engine import LeaseHeldError, MassDeleteError
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
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(failed_app, name="failed")

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
    except LeaseHeldError as exc:
        fail(str(exc), EXIT_PARTIAL)
    except MassDeleteError as exc:
        fail(str(exc), EXIT_PARTIAL)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)


def _load(config_path: Path | None) -> tuple[Config, Engine]:
    config = load_config(config_path)
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


@app.callback()
def _main(
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "warning",
) -> None:
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        fail(f"--log-level: {log_level!r} is not one of debug, info, warning, error", 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


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
    """Each sync's last run, next run, open conflicts and failed records."""
    with _errors_to_exit_codes():
        config, db = _load(config_path)
        rows = admin.sync_status(db, list(config.syncs))
    now = datetime.now(UTC)
    for row in rows:
        schedule = config.syncs[row["sync"]].schedule
        row["schedule"] = str(schedule) if schedule else None
        # When crmhub run (or run --once) runs it next: due now, or its schedule's next time
        # after the last run began.
        last_start = row["last_run"]["started_at"] if row["last_run"] else None
        upcoming = (
            schedule.next_after(datetime.fromisoformat(last_start))
            if schedule and last_start
            else None
        )
        row["next_run"] = (
            None
            if schedule is None
            else (upcoming.isoformat() if upcoming and upcoming > now else now.isoformat())
        )
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
                row["schedule"] or "manual",
                last["started_at"][:19].replace("T", " ") if last else "never",
                _next_run(row["next_run"], now),
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


def _next_run(when: str | None, now: datetime) -> str:
    if when is None:
        return "when asked"
    moment = datetime.fromisoformat(when)
    return "due now" if moment <= now else moment.isoformat()[:19].replace("T", " ")


# --------------------------------------------------------------------------- log

_RELATIVE = re.compile(r"^(\d+)([mhdw])$")


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        span = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]
        return datetime.now(UTC) - timedelta(**{span: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"{option}: {text!r} is neither a date/time (2026-01-31T12:00) nor an age like 2h",
            EXIT_CONFIG,
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
        str | None, typer.Option(help="create, update, delete, link, unlink, conflict, resolve.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time, or an age like 2h.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time, or an age.")] = None,
    run: Annotated[int | None, typer.Option(help="Only this run id.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the newest N entries.")] = None,
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one entry a line.")] = False,
) -> None:
    """The audit log: every write, link, conflict and delete, with before and after."""
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
        if as_json:
            for entry in entries:
                sys.stdout.write(json.dumps(entry, default=str) + "\n")
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


@app.command("run")
def run_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Syncs to run (default: every scheduled one).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run every sync that is due once, then exit.")
    ] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every sync on its schedule until SIGTERM or Ctrl-C (the current page finishes)."""
    from hub.scheduler import run_daemon, run_due_once

    # The daemon says what it runs and when, whatever the global log level.
    logging.getLogger("crmhub.scheduler").setLevel(logging.INFO)
    with _errors_to_exit_codes():
        config = load_config(config_path)
        _require_known_syncs(config, names)
        if not once:
            raise typer.Exit(run_daemon(config.source, names))
        reports = run_due_once(config.source, names)
    if as_json:
        _print_json([report.as_dict() for report in reports])
    else:
        for report in reports:
            _print_report(report)
        if not reports:
            err.print("crmhub: no sync was due", markup=False)
    raise typer.Exit(max((report.exit_code for report in reports), default=0))


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


def main() -> None:
    app()
