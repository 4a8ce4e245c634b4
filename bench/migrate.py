"""Benchmark: ``crmhub migrate`` from a HubSpot sandbox into a Zoho sandbox, command by command.

    .venv/bin/python bench/migrate.py                      # 20,000 people, the issue's size
    .venv/bin/python bench/migrate.py --contacts 2000      # a quick look
    .venv/bin/python bench/migrate.py --contacts 2000 --json

The HubSpot sandbox holds ``--contacts`` people with their companies (one per ten people) and
deals (one per five); the Zoho sandbox already holds the last tenth of those people, typed
differently (phones formatted, emails in mixed case), as a company half-way through a move does
and as ``tests/hub/test_migration.py`` seeds it. Both accounts are seeded an hour back on the
vendors' clocks: a migration moves data older than the sync's overlap window, so the delta pass
does not re-read the whole source only because it was typed a minute before the move.

Each ``crmhub migrate`` command runs as a real ``crmhub`` process, as a user runs it:

1. ``plan --json --report``: wall time, the process's peak RSS, the API calls each sandbox
   answered, beside the calls the plan itself estimates for the move. The values the plan
   cannot map (Zoho's Industry picklist does not list the sandbox's industries) are filled in
   its starter values file with the first value Zoho lists, as a person would, and that file
   goes to every later command with ``--values``.
2. ``run --json``, the full move: wall time, records/s (source records read per second), peak
   RSS, and the calls per sandbox against the plan's estimate.
3. 100 edits in HubSpot (job titles), then ``run`` again, the delta pass: time and calls. This
   first delta pass also reads back every record the move wrote into Zoho (they are newer than
   Zoho's cursor) and drops them as echoes; the records read per side say how many.
4. ``verify --json``: time, peak RSS, calls, and that it is clean (exit 0).

Each sandbox runs in its own process, as a vendor is another machine, with a raised request
budget (``--rate-limit``, requests/s) so the figures measure crmhub rather than the vendors'
throttles; HubSpot's search budget (5/s) is kept, since it is what an incremental read costs.
The 429s and 503s each sandbox sent are counted, to show when a throttle did hold a phase back.
Peak RSS is the ``crmhub`` process's, sampled every 20 ms. ``--json`` adds the calls by route.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
import yaml
from sandbox_process import SandboxProcess

from connectors.sandbox import SandboxOptions
from mappings.fieldmap import load_default_map

SEED = 21
SOURCE, TARGET = "hubspot", "zoho"
OBJECTS = ("companies", "contacts", "deals")
EDITS = 100
# How far back on the vendors' clocks the accounts are seeded: beyond the overlap window (5 min).
SEEDED_AGO = 3600.0
SAMPLE_EVERY = 0.02  # seconds between RSS samples of the crmhub process


@dataclass
class Measured:
    """One ``crmhub migrate`` command as it ran: its output and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    rss_peak: int  # bytes
    calls: dict[str, int]
    routes: dict[str, dict[str, int]]  # sandbox -> calls by route
    throttled: dict[str, int]  # 429s and 503s each sandbox sent

    def data(self) -> dict[str, Any]:
        if not self.stdout.strip():
            raise SystemExit(f"crmhub printed nothing (exit {self.returncode}): {self.stderr}")
        result: dict[str, Any] = json.loads(self.stdout)
        return result


def start(vendor: str, rate_limit: float) -> SandboxProcess:
    return SandboxProcess(vendor, SandboxOptions(seed=SEED, rate_limit=rate_limit))


def seed(boxes: dict[str, SandboxProcess], contacts: int) -> dict[str, dict[int, str]]:
    """HubSpot holds everyone; Zoho the last tenth, typed by hand; all of it an hour old."""
    shared = contacts // 10
    for box in boxes.values():
        box.advance(-SEEDED_AGO)
    ids = boxes[SOURCE].seed(contacts, SEED)
    boxes[TARGET].seed(shared, SEED, start=contacts - shared, typed=True)
    for box in boxes.values():
        box.advance(SEEDED_AGO)
    return ids


def write_config(folder: Path, boxes: dict[str, SandboxProcess]) -> Path:
    config = {
        "database": f"sqlite:///{folder}/state.db",
        "systems": {name: box.settings for name, box in boxes.items()},
        "syncs": {},
    }
    path = folder / "crmhub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def crmhub(config: Path, boxes: dict[str, SandboxProcess], *args: str) -> Measured:
    """``crmhub migrate ARGS`` in its own process, timed, its RSS sampled, its calls counted."""
    command = [sys.executable, "-c", "from hub.cli import main; main()", "migrate", *args]
    command += ["--from", SOURCE, "--to", TARGET, "--config", str(config)]
    for box in boxes.values():
        box.reset_calls()
    before = {name: box.statuses() for name, box in boxes.items()}
    folder = config.parent
    with (folder / "stdout").open("w+") as out, (folder / "stderr").open("w+") as err:
        started = time.perf_counter()
        # Files, not pipes: a pipe nobody reads while we sample would fill and stall crmhub.
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=err, text=True)
        peak = peak_rss(process)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    after = {name: box.statuses() for name, box in boxes.items()}
    return Measured(
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        rss_peak=peak,
        calls={name: box.calls() for name, box in boxes.items()},
        routes={name: box.routes() for name, box in boxes.items()},
        throttled={
            name: sum(after[name].get(s, 0) - before[name].get(s, 0) for s in (429, 503))
            for name in boxes
        },
    )


def peak_rss(process: subprocess.Popen[str]) -> int:
    """The highest RSS of ``process`` seen until it exits (PeakRss watches its own process)."""
    watched = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(SAMPLE_EVERY)
    process.wait()
    return peak


def fill_in(starter: Path, plan: dict[str, Any]) -> int:
    """Fill every null of the starter values file as a person would (as the migration test
    does): a source stage with a canonical stage, a value the target does not list with the
    first one it does. Returns how many values were filled."""
    data = yaml.safe_load(starter.read_text(encoding="utf-8"))
    filled = 0
    for item in plan["objects"]:
        for gap in item["value_gaps"]:
            if gap["fix"] is None:
                continue
            system, *path = gap["fix"].split(".")
            node = data[system]
            for part in path:
                node = node[part]
            node[gap["value"]] = "negotiation" if gap["side"] == "source" else gap["choices"][0]
            filled += 1
    starter.write_text(yaml.safe_dump(data), encoding="utf-8")
    return filled


def edit_source(box: SandboxProcess, people: dict[int, str]) -> None:
    """EDITS job titles in HubSpot, spread over the whole account."""
    field = load_default_map(SOURCE).vendor_field("contacts", "job_title")
    assert field is not None
    chosen = sorted(people.items())
    step = max(1, len(chosen) // EDITS)
    for _, record_id in chosen[::step][:EDITS]:
        box.modify("contacts", record_id, {field: "Head of Migrations"})


def require(measured: Measured, what: str) -> None:
    if measured.returncode != 0:
        raise SystemExit(
            f"{what} exited {measured.returncode}:\n{measured.stderr[-3000:]}"
            f"\n{measured.stdout[:3000]}"
        )


def read_counts(report: dict[str, Any]) -> dict[str, int]:
    """Records read per system over all object types."""
    return {
        system: sum(report["counts"].get(o, {}).get(system, {}).get("read", 0) for o in OBJECTS)
        for system in (SOURCE, TARGET)
    }


def written(report: dict[str, Any]) -> dict[str, int]:
    """Records created and updated in the target over all object types."""
    counts = [report["counts"].get(o, {}).get(TARGET, {}) for o in OBJECTS]
    return {kind: sum(c.get(kind, 0) for c in counts) for kind in ("created", "updated")}


def phase(measured: Measured, estimate: dict[str, int] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "seconds": round(measured.seconds, 2),
        "rss_peak_mb": round(measured.rss_peak / 2**20),
        "calls": measured.calls,
        "calls_by_route": measured.routes,
        "throttled": measured.throttled,
        "exit_code": measured.returncode,
    }
    if estimate is not None:
        result["calls_estimated"] = estimate
        result["calls_ratio"] = {
            name: round(measured.calls[name] / estimate[name], 2) if estimate.get(name) else None
            for name in measured.calls
        }
    return result


def measure(contacts: int, rate_limit: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crmhub-bench-migrate-") as folder:
        return measure_in(Path(folder), contacts, rate_limit)


def measure_in(folder: Path, contacts: int, rate_limit: float) -> dict[str, Any]:
    boxes = {SOURCE: start(SOURCE, rate_limit), TARGET: start(TARGET, rate_limit)}
    try:
        ids = seed(boxes, contacts)
        config = write_config(folder, boxes)

        planned = crmhub(config, boxes, "plan", "--json", "--report", "plan")
        require(planned, "migrate plan")
        plan = planned.data()
        estimate: dict[str, int] = plan["calls"]
        values: list[str] = []
        filled = 0
        if plan["values_file"]:
            starter = folder / plan["values_file"]
            filled = fill_in(starter, plan)
            values = ["--values", str(starter)]

        moved = crmhub(config, boxes, "run", "--json", *values)
        require(moved, "migrate run")
        move = moved.data()
        source_read = read_counts(move)[SOURCE]

        edit_source(boxes[SOURCE], ids["contacts"])
        delta_run = crmhub(config, boxes, "run", "--json", *values)
        require(delta_run, "migrate run (delta pass)")
        delta = delta_run.data()

        verified = crmhub(config, boxes, "verify", "--json", *values)
        verification = verified.data()
    finally:
        for box in boxes.values():
            box.stop()
    return {
        "contacts": contacts,
        "rate_limit": rate_limit,
        "plan": {
            **phase(planned, estimate),
            "planning_seconds": plan["planning_seconds"],
            "least_seconds_at_vendor_limits": plan["seconds_at_rate_limits"],
            "source_records": sum(o["source_records"] for o in plan["objects"]),
            "to_create": sum(o["to_create"] for o in plan["objects"]),
            "to_match": sum(sum(o["to_match"].values()) for o in plan["objects"]),
            "value_gaps": sum(len(o["value_gaps"]) for o in plan["objects"]),
            "values_filled": filled,
        },
        "move": {
            **phase(moved, estimate),
            "records_per_second": round(source_read / moved.seconds),
            "read": read_counts(move),
            "written": written(move),
        },
        "delta": {
            **phase(delta_run),
            "edits": EDITS,
            "read": read_counts(delta),
            "written": written(delta),
        },
        "verify": {
            **phase(verified),
            "clean": verified.returncode == 0 and verification["clean"],
            "records": {
                SOURCE: sum(o["source_records"] for o in verification["objects"]),
                TARGET: sum(o["target_records"] for o in verification["objects"]),
            },
            "matching": sum(o["matching"] for o in verification["objects"]),
            "missing": sum(o["missing"] for o in verification["objects"]),
            "differing": sum(o["differing"] for o in verification["objects"]),
        },
    }


def note(name: str, item: dict[str, Any]) -> str:
    """What a phase found, in a few words, for the table's last column."""
    if name == "plan":
        return (
            f"to create {item['to_create']:,}, to match {item['to_match']:,}; "
            f"{item['value_gaps']} value gaps, {item['values_filled']} filled in"
        )
    if name == "verify":
        return ("clean" if item["clean"] else "NOT CLEAN") + (
            f", {item['matching']:,} matching; read "
            + ", ".join(f"{system} {n:,}" for system, n in item["records"].items())
        )
    read = ", ".join(f"{system} {n:,}" for system, n in item["read"].items())
    wrote = "created {created:,}, updated {updated:,}".format(**item["written"])
    edits = f"after {item['edits']} edits; " if "edits" in item else ""
    return f"{edits}read {read}; {wrote}"


def table(result: dict[str, Any]) -> str:
    rows = [
        ["phase", "seconds", "records/s", "peak RSS", f"{SOURCE} calls", f"{TARGET} calls", "note"]
    ]
    for name in ("plan", "move", "delta", "verify"):
        item = result[name]
        estimate = item.get("calls_estimated", {})
        calls = [
            f"{item['calls'][s]:,}" + (f" (est. {estimate[s]:,})" if s in estimate else "")
            for s in (SOURCE, TARGET)
        ]
        throttled = sum(item["throttled"].values())
        rows.append(
            [
                name,
                f"{item['seconds']:.2f}",
                f"{item['records_per_second']:,}" if "records_per_second" in item else "",
                f"{item['rss_peak_mb']} MB",
                *calls,
                note(name, item) + (f"; {throttled} throttled" if throttled else ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"crmhub migrate {SOURCE} → {TARGET}: {result['contacts']:,} people "
        f"(sandboxes at {result['rate_limit']:,.0f} requests/s; est. = the plan's estimate)"
    ]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--rate-limit", type=float, default=2000.0, help="requests/s per sandbox")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = measure(args.contacts, args.rate_limit)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
