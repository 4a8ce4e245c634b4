"""Benchmark: SuiteCRM sandbox ↔ Bitrix24 sandbox, with Bitrix24's real rate limit.

    .venv/bin/python bench/rate_limited.py                  # 5,000 contacts, the issue's size
    .venv/bin/python bench/rate_limited.py --contacts 1000  # a quick look

Each sandbox holds half of ``--contacts`` people (SuiteCRM people 0..N/2, Bitrix24 people
0.4N..0.9N: a fifth of each side is in the other, typed differently), and the initial two-way
sync of contacts is timed. The Bitrix24 sandbox enforces Bitrix24's own budget (a leaky bucket
of 2 requests a second with a burst of 50), so the run's floor is the requests the page and
batch sizes make necessary, at 2 a second. The figures
are the run's time against that floor, the calls against that minimum, the 503s Bitrix24 sent
(each must have been waited out: the run must succeed) and crmhub's peak RSS.

Target (issue 4): within 1.2 x the floor, with no 503 that was not backed off.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
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

SEED = 31
# Bitrix24's budget: 2 requests a second (and a burst of 50 the floor does not count on).
BITRIX_RATE = 2.0
# What one Bitrix24 request can carry: batch packs 50 commands; a list command returns 50 rows.
BATCH_COMMANDS = 50
LIST_ROWS = 50


def minimum_bitrix_calls(report: RunReport) -> int:
    """The fewest Bitrix24 requests this run's reads and writes allow.

    A full read needs one list command per 50 contacts, 50 commands per batch request; each
    created contact needs a duplicate check (findbycomm, which makes a create idempotent) and
    an add, each updated contact an update; all packed 50 commands a request.
    """
    counts = report.counts["contacts"].get("bitrix24", {})
    reads = math.ceil(max(counts.get("read", 0), 1) / LIST_ROWS)
    writes = 2 * counts.get("created", 0) + counts.get("updated", 0)
    return math.ceil(reads / BATCH_COMMANDS) + math.ceil(writes / BATCH_COMMANDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=5000)
    args = parser.parse_args()
    half = args.contacts // 2
    folder = Path(tempfile.mkdtemp(prefix="crmhub-bench-bitrix-"))
    suitecrm = SandboxProcess("suitecrm", SandboxOptions(seed=SEED, rate_limit=1000))
    # Bitrix24's own budget: no rate_limit override.
    bitrix = SandboxProcess("bitrix24", SandboxOptions(seed=SEED))
    suitecrm.seed(half, SEED, only_contacts=True)
    bitrix.seed(half, SEED, start=half * 4 // 5, typed=True, only_contacts=True)
    suitecrm.reset_calls()
    bitrix.reset_calls()
    config_path = folder / "crmhub.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{folder}/state.db",
                "systems": {"suitecrm": suitecrm.settings, "bitrix24": bitrix.settings},
                "syncs": {"bench": {"systems": ["suitecrm", "bitrix24"], "objects": ["contacts"]}},
            }
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    with PeakRss() as rss:
        started = time.perf_counter()
        report = build_engine(open_database(config.database), config, config.syncs["bench"]).run()
        seconds = time.perf_counter() - started
    routes = bitrix.routes()
    calls = sum(routes.values())
    least = minimum_bitrix_calls(report)
    floor = least / BITRIX_RATE
    result: dict[str, Any] = {
        "contacts": args.contacts,
        "exit_code": report.exit_code,
        "seconds": round(seconds, 1),
        "floor_seconds": round(floor, 1),
        "ratio_to_floor": round(seconds / floor, 2) if floor else None,
        "bitrix24_calls": calls,
        "bitrix24_minimum_calls": least,
        "bitrix24_503s": bitrix.statuses().get(503, 0),
        "suitecrm_calls": suitecrm.calls(),
        "counts": report.as_dict()["counts"],
        "rss_peak_mb": round(rss.peak / 2**20),
    }
    suitecrm.stop()
    bitrix.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
