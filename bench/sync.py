"""Benchmark: HubSpot sandbox ↔ Zoho sandbox over HTTP, through the real connectors.

    .venv/bin/python bench/sync.py                       # the issue's sizes
    .venv/bin/python bench/sync.py --contacts 2000       # a quick look
    .venv/bin/pip install hubspot-api-client             # for the side-by-side paging figure

1. **Two-way**: each sandbox holds half of ``--contacts`` people (HubSpot people 0..N/2, Zoho
   people 0.4N..0.9N, so a fifth of each side is in the other, typed differently), with their
   companies (one per ten people) and deals (one per five). The initial two-way sync of all
   three object types is timed; records/s counts the records read from both sides. Every API
   call each sandbox answered is counted and compared with the minimum the vendors' page and
   batch sizes allow for what the run read and wrote. The next run reads that sync's own writes
   back and drops them as echoes (they are newer than the cursors); then, an hour later on the
   vendors' clocks, 100 edits (50 a side) and an incremental run, which still re-reads the
   initial sync's writes inside the overlap window behind the cursors; an hour later again,
   100 more edits and the steady-state incremental run. Time, writes and calls of each.
2. **One-way**: a HubSpot sandbox of ``--contacts`` contacts synced into an empty Zoho sandbox
   (contacts only), in records/s, beside the official ``hubspot-api-client`` merely paging
   through the same contacts on the same sandbox (when it is installed).

Each sandbox runs in its own process, as a vendor is another machine, with a raised request
budget (``--rate-limit``, requests/s) so the figures measure crmhub rather than the vendors'
throttles; HubSpot's search budget (5/s) is kept, since it is what an incremental read costs.
``--latency-ms`` delays every answer of both sandboxes, as a network and a vendor's own work do
(0 by default: the figures are then CPU alone, on a machine that also runs both sandboxes).
Peak RSS is crmhub's process.

Targets (issue 3): API calls at most 1.05 x the minimum; the one-way sync at least as fast, in
records/s, as hubspot-api-client paging the same contacts; peak RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from peak_rss import PeakRss
from sandbox_process import SandboxProcess

from connectors.sandbox import SandboxOptions
from hub.config import load_config
from hub.db import open_database
from hub.report import RunReport
from hub.runtime import build_engine
from mappings.fieldmap import load_default_map

SEED = 21
OBJECTS = ("companies", "contacts", "deals")
# Records per read call and per write call, as each connector uses its vendor's API.
READ_PAGE = {"hubspot": 100, "zoho": 200}
WRITE_BATCH = {"hubspot": 100, "zoho": 100}
# Extra calls per page read or batch written, for references the vendor keeps apart from the
# record: HubSpot's v4 associations (one call per target type); Zoho's lookups are inline.
ASSOCIATION_CALLS = {
    "hubspot": {"companies": 0, "contacts": 1, "deals": 2},
    "zoho": {"companies": 0, "contacts": 0, "deals": 0},
}


def start(vendor: str, rate_limit: float, latency_ms: float) -> SandboxProcess:
    options = SandboxOptions(seed=SEED, rate_limit=rate_limit, latency_ms=latency_ms)
    return SandboxProcess(vendor, options)


def write_config(
    folder: Path, sandboxes: dict[str, SandboxProcess], objects: list[str], modes: Any
) -> Path:
    config = {
        "database": f"sqlite:///{folder}/state.db",
        "systems": {name: box.settings for name, box in sandboxes.items()},
        "syncs": {"bench": {"systems": modes, "objects": objects, "conflicts": "newest"}},
    }
    path = folder / "crmhub.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def minimum_calls(report: RunReport, systems: list[str]) -> dict[str, int]:
    """The fewest calls the page and batch sizes allow for what this run read and wrote."""
    least: dict[str, int] = {}
    for system in systems:
        calls = 1  # one access token
        for object_type in report.counts:
            counts = report.counts[object_type].get(system, {})
            extra = ASSOCIATION_CALLS[system][object_type]
            read = counts.get("read", 0)
            calls += max(math.ceil(read / READ_PAGE[system]), 1) * (1 + extra)
            for kind in ("created", "updated"):
                batches = math.ceil(counts.get(kind, 0) / WRITE_BATCH[system])
                calls += batches * (1 + extra)
        least[system] = calls
    return least


class HubClock:
    """crmhub's clock: wall time, moved on with the vendors' when the benchmark lets an hour
    pass, so the engine sees the same time the sandboxes stamp."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def run(config_path: Path, clock: HubClock | None = None) -> tuple[RunReport, float]:
    config = load_config(config_path)
    db = open_database(config.database)
    started = time.perf_counter()
    engine = build_engine(db, config, config.syncs["bench"], clock=clock or HubClock())
    report = engine.run()
    seconds = time.perf_counter() - started
    db.dispose()
    if report.exit_code != 0:
        raise SystemExit(f"the run failed: {json.dumps(report.as_dict(), default=str)[:2000]}")
    return report, seconds


def two_way(contacts: int, rate_limit: float, latency_ms: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="crmhub-bench-sync-"))
    half = contacts // 2
    boxes = {name: start(name, rate_limit, latency_ms) for name in ("hubspot", "zoho")}
    ids = {
        "hubspot": boxes["hubspot"].seed(half, SEED),
        "zoho": boxes["zoho"].seed(half, SEED, start=half * 4 // 5, typed=True),
    }
    config = write_config(folder, boxes, list(OBJECTS), ["hubspot", "zoho"])
    clock = HubClock()
    with PeakRss() as rss:
        report, seconds = run(config, clock)
        calls = {name: box.calls() for name, box in boxes.items()}
        least = minimum_calls(report, list(boxes))
        read = sum(c.get("read", 0) for by in report.counts.values() for c in by.values())

        # The next run reads the initial sync's own writes back (they are newer than the
        # cursors) and drops them as echoes.
        for box in boxes.values():
            box.reset_calls()
        echo, echo_seconds = run(config, clock)
        echo_calls = {name: box.calls() for name, box in boxes.items()}

        # An hour passes, 100 edits (50 a side), then an incremental run: the first one still
        # re-reads the initial sync's writes inside the overlap window behind the cursors;
        # the second, an hour later again, is the steady state.
        maps = {name: load_default_map(name) for name in boxes}
        rounds = []
        for round_no in (1, 2):
            clock.advance(3600)
            for name, box in boxes.items():
                box.advance(3600)
                people = sorted(ids[name]["contacts"].items())
                chosen = people[:50] if name == "hubspot" else people[-50:]
                field = maps[name].vendor_field("contacts", "job_title")
                assert field is not None
                for _, record_id in chosen:
                    box.modify("contacts", record_id, {field: f"Edit {round_no} in {name}"})
                box.reset_calls()
            incremental, incremental_seconds = run(config, clock)
            rounds.append(
                {
                    "seconds": round(incremental_seconds, 2),
                    "writes": incremental.writes,
                    "calls": {name: box.calls() for name, box in boxes.items()},
                }
            )
    for box in boxes.values():
        box.stop()
    return {
        "contacts": contacts,
        "latency_ms": latency_ms,
        "records_read": read,
        "initial_seconds": round(seconds, 2),
        "records_per_second": round(read / seconds),
        "writes": report.writes,
        "calls": calls,
        "minimum_calls": least,
        "calls_ratio": round(sum(calls.values()) / sum(least.values()), 3),
        "echo_run_seconds": round(echo_seconds, 2),
        "echo_run_writes": echo.writes,
        "echo_run_calls": echo_calls,
        "first_incremental": rounds[0],
        "incremental": rounds[1],
        "rss_peak_mb": round(rss.peak / 2**20),
    }


def one_way(contacts: int, rate_limit: float, latency_ms: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="crmhub-bench-oneway-"))
    boxes = {name: start(name, rate_limit, latency_ms) for name in ("hubspot", "zoho")}
    boxes["hubspot"].seed(contacts, SEED, only_contacts=True)
    config = write_config(folder, boxes, ["contacts"], {"hubspot": "read", "zoho": "write"})
    with PeakRss() as rss:
        report, seconds = run(config)
    created = report.counts["contacts"]["zoho"].get("created", 0)
    result: dict[str, Any] = {
        "contacts": contacts,
        "latency_ms": latency_ms,
        "crmhub_seconds": round(seconds, 2),
        "crmhub_records_per_second": round(contacts / seconds),
        "created_in_zoho": created,
        "calls": {name: box.calls() for name, box in boxes.items()},
        "rss_peak_mb": round(rss.peak / 2**20),
    }
    result.update(official_client_paging(boxes["hubspot"], contacts))
    if "official_client_seconds" in result:
        result["speed_against_official_client"] = round(
            result["official_client_seconds"] / seconds, 2
        )
    for box in boxes.values():
        box.stop()
    return result


def official_client_paging(hubspot: SandboxProcess, contacts: int) -> dict[str, Any]:
    """hubspot-api-client paging the same contacts with the same properties, if installed."""
    try:
        from hubspot import HubSpot  # type: ignore[import-not-found]
    except ImportError:
        return {"official_client": "not installed (pip install hubspot-api-client)"}
    # The sandbox's private-app token, as a user of the official client would hold one.
    token = hubspot.attribute("private_app_token")
    properties = load_default_map("hubspot").vendor_fields("contacts")
    client = HubSpot(access_token=token, host=hubspot.url)
    started = time.perf_counter()
    seen, after = 0, None
    while True:
        page = client.crm.contacts.basic_api.get_page(
            limit=100, after=after, properties=[p for p in properties if p != "company_id"]
        )
        seen += len(page.results)
        after = page.paging.next.after if page.paging and page.paging.next else None
        if not after:
            break
    seconds = time.perf_counter() - started
    assert seen == contacts, (seen, contacts)
    return {
        "official_client_seconds": round(seconds, 2),
        "official_client_records_per_second": round(seen / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--rate-limit", type=float, default=2000.0, help="requests/s per sandbox")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay of every sandbox answer"
    )
    parser.add_argument("--only", choices=["two-way", "one-way"])
    parser.add_argument("--child", choices=["two-way", "one-way"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure = two_way if args.child == "two-way" else one_way
        print(json.dumps(measure(args.contacts, args.rate_limit, args.latency_ms)))
        return
    results: dict[str, Any] = {}
    for part in [args.only] if args.only else ["two-way", "one-way"]:
        # Each part in a fresh process, so one's memory never shows in the other's peak.
        command = [sys.executable, __file__, "--child", part, "--contacts", str(args.contacts)]
        command += ["--rate-limit", str(args.rate_limit), "--latency-ms", str(args.latency_ms)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[part] = json.loads(output.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
