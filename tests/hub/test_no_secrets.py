"""No credential ever leaves crmhub: not in a log line, the state database, or an error message.

Six sandboxes, faults on, tokens expired between runs and one system given a wrong secret;
every command an admin would run, with debug logs in both formats. Then everything those
commands produced — stdout, stderr, every file next to the config — is searched for every
secret the run knew or was handed: the config's, and each access and refresh token the
sandboxes minted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connectors.bitrix24.sandbox import Bitrix24Api
from connectors.sampledata import sample_account
from connectors.sandbox import Sandbox, SandboxOptions, load_sandbox
from hub.demo import seed_sandbox
from mappings.fieldmap import load_default_map
from tests.hub.test_sandbox_sync import SEED, configure

pytestmark = pytest.mark.slow

VENDORS = ("hubspot", "zoho", "suitecrm", "bitrix24", "insightly", "apptivo")
OAUTH = ("hubspot", "zoho", "suitecrm", "bitrix24")  # they mint access tokens
SECRET_SETTINGS = (
    "client_secret",
    "refresh_token",
    "access_token",
    "password",
    "token",
    "api_key",
    "access_key",
)
CRMHUB = str(Path(sys.executable).with_name("crmhub"))


@pytest.fixture
def boxes() -> Iterator[dict[str, Sandbox]]:
    started = {
        vendor: load_sandbox(vendor, SandboxOptions(seed=SEED, fault_rate=0.1))
        for vendor in VENDORS
    }
    for box in started.values():
        box.start()
    yield started
    for box in started.values():
        box.stop()


def crmhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CRMHUB, *args], capture_output=True, text=True, timeout=120, check=False)


def known_secrets(boxes: dict[str, Sandbox], *configs: Path) -> set[str]:
    found: set[str] = set()
    for config in configs:
        systems = yaml.safe_load(config.read_text(encoding="utf-8"))["systems"]
        for settings in systems.values():
            found.update(str(settings[key]) for key in SECRET_SETTINGS if key in settings)
    for vendor in OAUTH:
        box = boxes[vendor]
        found.update(box.api.tokens.minted())  # type: ignore[attr-defined]
        if isinstance(box.api, Bitrix24Api):
            found.update(box.api.refresh_tokens_issued())
    return found


def test_no_secret_appears_in_logs_database_or_messages(
    tmp_path: Path, boxes: dict[str, Sandbox]
) -> None:
    for n, (vendor, box) in enumerate(boxes.items()):
        seed_sandbox(box.api, load_default_map(vendor), sample_account(15, SEED, start=10 * n))
    config = configure(tmp_path, boxes)
    # The same systems, one with a secret the vendor refuses: its error must not quote it.
    wrong = yaml.safe_load(config.read_text(encoding="utf-8"))
    wrong["systems"]["zoho"]["client_secret"] = "wrong-" + wrong["systems"]["zoho"]["client_secret"]
    wrong_config = tmp_path / "wrong.yaml"
    wrong_config.write_text(yaml.safe_dump(wrong), encoding="utf-8")

    debug_json = ("--log-level", "debug", "--log-format", "json")
    outputs = [
        crmhub(*debug_json, "check", "--config", str(config)),
        crmhub(*debug_json, "sync", "--config", str(config), "--json"),
    ]
    for box in boxes.values():
        box.api.expire_tokens()
    outputs += [
        crmhub("--log-level", "debug", "sync", "--config", str(config)),
        crmhub(*debug_json, "sync", "--dry-run", "--config", str(config), "--json"),
        crmhub(*debug_json, "sync", "--config", str(wrong_config), "--json"),
        crmhub("--log-level", "debug", "check", "--config", str(wrong_config)),
        crmhub("status", "--config", str(config), "--json"),
        crmhub("log", "--config", str(config), "--json"),
        crmhub("log", "--config", str(config)),
        crmhub("failed", "list", "--all", "--config", str(config), "--json"),
        crmhub("conflicts", "list", "--all", "--config", str(config), "--json"),
    ]

    # The runs did what they claim, so there was something to leak: tokens were refreshed,
    # vendors faulted, records were written and the wrong secret was refused with exit 3.
    secrets = known_secrets(boxes, config, wrong_config)
    assert all(len(boxes[v].api.tokens.minted()) >= 2 for v in OAUTH)  # type: ignore[attr-defined]
    assert sum(box.calls.faults.total() for box in boxes.values()) > 0
    assert json.loads(outputs[1].stdout)[0]["counts"]["contacts"]["zoho"]["created"] > 0
    assert outputs[4].returncode == 3
    assert "zoho" in outputs[4].stderr
    assert any('"sync": "main"' in line for line in outputs[1].stderr.splitlines())

    produced = {
        f"command {n} {stream}": text
        for n, o in enumerate(outputs)
        for stream, text in (("stdout", o.stdout), ("stderr", o.stderr))
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and path not in (config, wrong_config):
            produced[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    assert any(path.endswith("state.db") for path in produced)
    leaks = sorted(
        f"{where}: …{secret[:4]}…"
        for where, text in produced.items()
        for secret in secrets
        if secret in text
    )
    assert not leaks
