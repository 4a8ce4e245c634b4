"""The dashboard in a real browser: headless Debian chromium driven by Playwright.

An admin signs in, looks at a run, opens an audit entry's before and after, settles a conflict,
retries a failed record, and sees both land after the next sync. Every page visited is kept as
a screenshot in tests/output/dashboard/ (git-ignored), for a person to look at after the run.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from hub import admin
from hub.dashboard.app import create_app
from tests.dashboard.world import CREDENTIALS, PASSWORD, World

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "dashboard"

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="playwright is not installed (pip install -e '.[dev]')",
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)",
    ),
]


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """The dashboard over the world, served on a free loopback port; its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(world.config, world.db, CREDENTIALS), log_config=None)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the dashboard did not start")
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(served: str) -> Iterator[Any]:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            tab = browser.new_page(base_url=served, viewport={"width": 1400, "height": 900})
            tab.set_default_timeout(10_000)
            yield tab
        finally:
            browser.close()


def go(page: Any, section: str) -> None:
    """Follow a link of the navigation bar (its name may end in a count: "Conflicts 1")."""
    name = re.compile(rf"^{re.escape(section)}( \d+)?$")
    page.get_by_role("navigation").get_by_role("link", name=name).click()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_admin_settles_a_conflict_and_retries_a_failure_and_the_next_sync_applies_both(
    page: Any, world: World
):
    expect = sync_api.expect

    # Sign in: any page leads to the login form first.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    shot(page, "01-login")
    page.fill("#password", "not the password")
    page.click("text=Sign in")
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    page.fill("#password", PASSWORD)
    page.click("text=Sign in")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#sync-main")).to_contain_text("attention")
    shot(page, "02-overview")

    # See a run: the chart and the table, then the run itself.
    go(page, "Runs")
    expect(page.locator("figure.chart svg g.run")).to_have_count(2)
    shot(page, "03-runs")
    page.click("#run-1 >> text=1")
    expect(page.locator("h1")).to_have_text("Run 1")
    expect(page.locator("main")).to_contain_text("Every audit entry of this run")
    shot(page, "04-run")

    # Open an audit entry's diff: what run 1 created in b, found through the filters.
    go(page, "Audit log")
    page.select_option("select[name=system]", "b")
    page.fill("input[name=action]", "create")
    page.select_option("select[name=object]", "companies")
    page.click("text=Filter")
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    shot(page, "05-audit")
    page.click("table.audit tbody tr >> a >> nth=0")
    expect(page.locator("h2")).to_have_text("Before and after")
    expect(page.locator("table.diff")).to_contain_text("acme.com")
    expect(page.locator("table.diff ins").first).to_be_visible()
    shot(page, "06-audit-entry")

    # Settle the conflict with b's value.
    go(page, "Conflicts")
    conflict = page.locator("section.conflict")
    expect(conflict).to_contain_text("CTO")
    expect(conflict).to_contain_text("CEO")
    shot(page, "07-conflicts")
    conflict.get_by_role("button", name="Keep b's value").click()
    expect(page.get_by_role("status")).to_contain_text("resolved")
    expect(page.locator("main")).to_contain_text("No conflict waits for a person.")

    # The admin fixes b's missing property, then retries the record b refused.
    world.give_b_the_priority_property()
    go(page, "Failed records")
    expect(page.locator("table.failed")).to_contain_text("Property 'priority' does not exist")
    shot(page, "08-failed")
    page.locator("table.failed").get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text("1 record(s) will be retried")

    # The next sync writes both; the dashboard shows it.
    report = world.sync()
    assert report.status == "succeeded"
    go(page, "Overview")
    expect(page.locator("#sync-main")).to_contain_text("healthy")
    shot(page, "09-overview-after-sync")
    assert world.contact("a", "bob@acme.com")["jobtitle"] == "CEO"
    assert world.deal("b", "Rockets") is not None
    assert admin.list_conflicts(world.db) == []
    assert admin.list_failed(world.db) == []

    # The record view shows Bob in both systems with the value the admin chose.
    go(page, "Records")
    page.fill("input[name=id]", world.ids["bob"])
    page.select_option("select[name=system]", "a")
    page.click("text=Find")
    expect(page.locator("table.links tbody tr")).to_have_count(2)
    expect(page.locator("table.values")).to_contain_text("CEO")
    shot(page, "10-record")

    go(page, "Config")
    expect(page.locator("pre.config")).to_contain_text('"connector": "memory"')
    shot(page, "11-config")
    page.click("text=Sign out")
    expect(page.locator("h1")).to_have_text("crmhub")
    assert sorted(p.name for p in SCREENSHOTS.iterdir())[0] == "01-login.png"
