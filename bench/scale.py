"""Benchmark: a large initial sync on 1, 2 and 4 Celery workers (issue 7).

    .venv/bin/python bench/scale.py                                  # the issue's sizes
    .venv/bin/python bench/scale.py --contacts 10000 --workers 1 2   # a quick look
    .venv/bin/python bench/scale.py --limits off                     # skip the rate-limited part

The initial two-way sync of ``--contacts`` distinct people between a HubSpot sandbox and a Zoho
sandbox (HubSpot holds people 0..0.55N, Zoho 0.45N..N, so a tenth are in both, typed
differently), contacts only, on PostgreSQL with a Redis broker and one shared rate-limit budget
in Redis. Each sandbox runs in its own process and answers every request after
``--latency-ms`` (20 ms), as a vendor across the internet would.

For each worker count, fresh sandboxes, a fresh database schema and that many ``crmhub worker``
processes (one task at a time each); the sync is configured with ``split: {tasks: 3,
min_records: 5000}``, so its run decides every record, then it and up to three tasks on the
other workers send the writes. The time is from enqueueing the run to its result. A first row
runs the same sync unsplit on one worker: the speed-ups are against it.

``--limits off``: the sandboxes allow any request rate. ``--limits on``: each enforces its
vendor's real limit (HubSpot: 190 requests per 10 s for the account; Zoho: its daily credits),
and the floor is the HubSpot requests the run made at 19 a second; every row is also given as a
multiple of that floor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
import yaml
from sandbox_process import SandboxProcess

from connectors.hubspot.sandbox import DEFAULT_PER_TEN_SECONDS
from connectors.sandbox import SandboxOptions
from hub.report import RunReport
from hub.workers import create_app, enqueue, wait_for

SEED = 41
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
CRMHUB = Path(sys.executable).parent / "crmhub"
UNLIMITED = 50_000.0  # requests per second: no limit a run can reach
RESULT_TIMEOUT = 3600.0


@contextmanager
def schema() -> Iterator[str]:
    """A private PostgreSQL schema, as a database URL."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    url = sa.engine.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@contextmanager
def workers(config: Path, queue: str, count: int) -> Iterator[None]:
    """``count`` worker processes taking one task at a time, answering before this yields."""
    logs = config.parent
    processes = []
    for n in range(count):
        with (logs / f"worker-{n}.log").open("wb") as sink:
            command = [str(CRMHUB), "worker", "--config", str(config), "--queues", queue]
            command += ["--concurrency", "1"]
            processes.append(subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT))
    app = create_app(REDIS)
    try:
        deadline = time.monotonic() + 60
        while len({node for reply in app.control.ping(timeout=0.5) for node in reply}) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"workers not up in 60 s; see {logs}/worker-*.log")
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def measure(contacts: int, workers_count: int, split: bool, limits: bool, latency: float) -> dict:
    rate = None if limits else UNLIMITED
    options = SandboxOptions(seed=SEED, latency_ms=latency, rate_limit=rate)
    boxes = {"hubspot": SandboxProcess("hubspot", options), "zoho": SandboxProcess("zoho", options)}
    folder = Path(tempfile.mkdtemp(prefix="crmhub-bench-scale-"))
    try:
        hubspot_people = contacts * 55 // 100
        boxes["hubspot"].seed(hubspot_people, SEED, only_contacts=True)
        zoho_start = contacts * 45 // 100
        boxes["zoho"].seed(
            contacts - zoho_start, SEED, start=zoho_start, typed=True, only_contacts=True
        )
        for box in boxes.values():
            box.reset_calls()
        queue = f"crmhub-bench-{uuid.uuid4().hex[:8]}"
        sync: dict[str, Any] = {"systems": ["hubspot", "zoho"], "objects": ["contacts"]}
        if split:
            sync["split"] = {"tasks": 3, "min_records": 5000}
        with schema() as database:
            config = {
                "database": database,
                "broker": REDIS,
                "rate_limit_storage": REDIS,
                "systems": {name: box.settings for name, box in boxes.items()},
                "syncs": {"scale": sync},
            }
            path = folder / "crmhub.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            # The state store's tables exist before the clock starts, as on a running site.
            status = subprocess.run(
                [str(CRMHUB), "status", "--config", str(path)], capture_output=True, text=True
            )
            if status.returncode not in (0, 1):
                raise SystemExit(f"crmhub status: {status.stderr.strip()}")
            with workers(path, queue, workers_count):
                app = create_app(REDIS)
                started = time.perf_counter()
                [outcome] = wait_for(
                    ["scale"], enqueue(app, path, ["scale"], queue=queue), timeout=RESULT_TIMEOUT
                )
                seconds = time.perf_counter() - started
        if outcome.report is None or outcome.exit_code != 0:
            raise SystemExit(f"the run failed: {outcome}")
        report: RunReport = outcome.report
        calls = {name: box.calls() for name, box in boxes.items()}
        counts = report.counts["contacts"]
        result = {
            "workers": workers_count,
            "split": split,
            "seconds": round(seconds, 1),
            "read": sum(counts[name].get("read", 0) for name in boxes),
            "created": {name: counts[name].get("created", 0) for name in boxes},
            "updated": {name: counts[name].get("updated", 0) for name in boxes},
            "calls": calls,
        }
        if limits:
            floor = calls["hubspot"] / (DEFAULT_PER_TEN_SECONDS / 10)
            result["floor_seconds"] = round(floor, 1)
            result["times_floor"] = round(seconds / floor, 2)
        return result
    finally:
        for box in boxes.values():
            box.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--limits", choices=["off", "on", "both"], default="both")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    for limits in {"off": [False], "on": [True], "both": [False, True]}[args.limits]:
        rows = [measure(args.contacts, 1, False, limits, args.latency_ms)]
        for count in args.workers:
            rows.append(measure(args.contacts, count, True, limits, args.latency_ms))
        for row in rows:  # against the same sync unsplit on one worker
            row["speed_up"] = round(rows[0]["seconds"] / row["seconds"], 2)
        results["real rate limits" if limits else "no rate limits"] = rows
        print(json.dumps(rows, indent=2), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
