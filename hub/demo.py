"""``crmhub demo``: a real two-way sync between two seeded in-memory CRMs.

Public entry points: :func:`run_demo`, :func:`seed_demo`.

The demo writes an ordinary config file, two memory-connector accounts persisted as JSON files
and a SQLite state database into one folder, and runs the same code path as ``crmhub sync``. So
after it, ``crmhub log``, ``crmhub conflicts list`` and ``crmhub failed list`` work on what it
did, with ``--config <folder>/crmhub.yaml``.

The seed data is small and deliberately untidy: the same people in both CRMs with emails in
different case and phone numbers in different formats, companies known by their website in one
CRM and their domain in the other, a malformed email, and a duplicate inside one CRM.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from connectors.memory.store import MemoryStore, shifted_clock
from hub.config import load_config
from hub.db import open_database
from hub.report import RunReport
from hub.runtime import run_sync

CONFIG = """\
# Written by `crmhub demo`: two in-memory CRMs kept in sync. Copy it to start your own.
database: sqlite:///crmhub.db
phone_region: US
systems:
  sales:                       # the sales team's CRM
    connector: memory
    path: sales.json
  support:                     # the support team's CRM; it has duplicate emails, like many do
    connector: memory
    path: support.json
    unique_emails: false
syncs:
  demo:
    systems: [sales, support]  # both read and write; on a tie, sales wins
    objects: [companies, contacts, deals]
    conflicts: newest          # the most recent edit wins; the loser is in the audit log
    deletes: ignore
"""

SALES_COMPANIES: list[dict[str, Any]] = [
    {
        "name": "Acme Corporation",
        "domain": "acme.com",
        "industry": "Manufacturing",
        "city": "Springfield",
        "country": "United States",
        "numberofemployees": 1200,
    },
    {
        "name": "Initech",
        "domain": "initech.com",
        "industry": "Software",
        "city": "Austin",
        "country": "USA",
        "numberofemployees": 300,
    },
    {
        "name": "Globex",
        "domain": "globex.com",
        "industry": "Energy",
        "city": "Cypress Creek",
        "country": "US",
    },
    {
        "name": "Hooli",
        "domain": "hooli.com",
        "industry": "Internet",
        "city": "Palo Alto",
        "country": "US",
        "annualrevenue": "125000000",
    },
    {
        "name": "Wonka Industries",
        "domain": "wonka.co.uk",
        "industry": "Food",
        "city": "London",
        "country": "UK",
    },
]
SUPPORT_COMPANIES: list[dict[str, Any]] = [
    {"name": "ACME Corp.", "website": "https://www.acme.com/", "phone": "(555) 010-0100"},
    {"name": "Initech LLC", "website": "initech.com", "city": "Austin", "country": "US"},
    {
        "name": "Vandelay Industries",
        "domain": "vandelay.com",
        "industry": "Import/Export",
        "city": "New York",
        "country": "US",
    },
    {
        "name": "Dunder Mifflin",
        "domain": "dundermifflin.com",
        "industry": "Paper",
        "city": "Scranton",
        "country": "US",
    },
]
SALES_CONTACTS = [
    ("Peter", "Gibbons", "peter.gibbons@initech.com", "(512) 555-0142", "initech.com"),
    ("Samir", "Nagheenanajar", "samir@initech.com", "512-555-0143", "initech.com"),
    ("Wile E.", "Coyote", "wile@acme.com", "+1 206 555 0101", "acme.com"),
    ("Hank", "Scorpio", "hank@globex.com", "206.555.0199", "globex.com"),
    ("Gavin", "Belson", "gavin@hooli.com", "650 555 0110", "hooli.com"),
    ("Charlie", "Bucket", "charlie@wonka.co.uk", "020 7946 0321", "wonka.co.uk"),
]
SUPPORT_CONTACTS = [
    ("Peter", "Gibbons", "Peter.Gibbons@Initech.com", "+15125550142", "initech.com"),
    ("Wile", "Coyote", "WILE@ACME.COM", "(206) 555-0101", "acme.com"),
    ("Art", "Vandelay", "art@vandelay.com", "212-555-0175", "vandelay.com"),
    ("Michael", "Scott", "m.scott@dundermifflin.com", "570-555-0111", "dundermifflin.com"),
    ("Mike", "Scott", "M.Scott@dundermifflin.com", "570-555-0112", "dundermifflin.com"),
    ("Dwight", "Schrute", "dwight@@dundermifflin", "570-555-0113", "dundermifflin.com"),
]
SALES_DEALS = [
    (
        "Initech - TPS report automation",
        "48000",
        "USD",
        "presentationscheduled",
        "initech.com",
        ["peter.gibbons@initech.com"],
    ),
    ("Acme - rocket skates", "12500.50", "USD", "qualifiedtobuy", "acme.com", ["wile@acme.com"]),
]
SUPPORT_DEALS = [
    (
        "Vandelay - latex import",
        "9900",
        "USD",
        "appointmentscheduled",
        "vandelay.com",
        ["art@vandelay.com"],
    ),
]


def seed_demo(sales: MemoryStore, support: MemoryStore) -> None:
    """Fill two empty accounts with overlapping, differently formatted records."""
    for store, companies, contacts, deals in (
        (sales, SALES_COMPANIES, SALES_CONTACTS, SALES_DEALS),
        (support, SUPPORT_COMPANIES, SUPPORT_CONTACTS, SUPPORT_DEALS),
    ):
        company_ids: dict[str, str] = {}
        for company in companies:
            record = store.create("companies", company)
            key = company.get("domain") or str(company["website"]).split("www.")[-1]
            company_ids[key.strip("/").removeprefix("https://")] = record.id
        contact_ids: dict[str, str] = {}
        for first, last, email, phone, company_key in contacts:
            contact_ids[email.lower()] = _create_unchecked(
                store,
                "contacts",
                {
                    "firstname": first,
                    "lastname": last,
                    "email": email,
                    "phone": phone,
                    "company_id": company_ids.get(company_key),
                },
            )
        for name, amount, currency, stage, company_key, people in deals:
            store.create(
                "deals",
                {
                    "dealname": name,
                    "amount": amount,
                    "deal_currency_code": currency,
                    "dealstage": stage,
                    "pipeline": "default",
                    "company_id": company_ids.get(company_key),
                    "contact_ids": [contact_ids[p] for p in people if p in contact_ids],
                },
            )
        store.save()


def _create_unchecked(store: MemoryStore, object_type: str, fields: dict[str, Any]) -> str:
    # A real CRM imported from spreadsheets holds malformed emails; the demo's does too.
    values = {k: v for k, v in fields.items() if v is not None}
    email = values.get("email", "")
    if "@@" in email:
        values.pop("email")
        record = store.create(object_type, values)
        record.fields["email"] = email
        return record.id
    return store.create(object_type, values).id


def run_demo(directory: Path, console: Console) -> list[RunReport]:
    """Seed, sync, edit both sides, sync again; print what happened and where to look."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    config_path = directory / "crmhub.yaml"
    config_path.write_text(CONFIG, encoding="utf-8")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    sales = MemoryStore(
        path=directory / "sales.json", clock=shifted_clock(start, timedelta(seconds=1))
    )
    support = MemoryStore(
        path=directory / "support.json",
        unique_emails=False,
        clock=shifted_clock(start, timedelta(seconds=1)),
    )
    seed_demo(sales, support)
    console.print(
        f"[bold]crmhub demo[/bold] in {directory}/ — two CRMs, [cyan]sales[/cyan] "
        "and [cyan]support[/cyan], with overlapping, differently formatted records.\n"
    )

    config = load_config(config_path)
    db = open_database(config.database)
    reports = run_sync(db, config)
    console.print(
        "[bold]1. First sync[/bold]: records matched across the two CRMs by email "
        "(contacts), domain then name (companies), name within company (deals)."
    )
    _summary(console, reports[-1])

    # Edit both sides between runs, as people do: one change each, and one field both edited.
    # One clock for both, a second apart, so "a moment later" is true whatever the machine.
    edits = shifted_clock(datetime.now(UTC).replace(microsecond=0), timedelta(seconds=1))
    sales = MemoryStore(path=directory / "sales.json", clock=edits)
    support = MemoryStore(path=directory / "support.json", unique_emails=False, clock=edits)
    peter_sales = sales.find("contacts", "email", ["peter.gibbons@initech.com"])[0]
    sales.update(
        "contacts", peter_sales.id, {"jobtitle": "Software Engineer", "mobilephone": "512 555 0199"}
    )
    sales.save()
    peter_support = support.find("contacts", "email", ["peter.gibbons@initech.com"])[0]
    support.update("contacts", peter_support.id, {"mobilephone": "(512) 555-0100"})
    support.save()
    console.print(
        "\n[bold]2. Edits[/bold]: in sales, Peter Gibbons gets a job title and a "
        "mobile number; a moment later support types a different mobile number."
    )

    reports += run_sync(db, config)
    console.print(
        "\n[bold]3. Second sync[/bold]: the job title flows to support; the mobile "
        "number is a conflict, settled by the `newest` policy (support's edit won)."
    )
    _summary(console, reports[-1])

    third = run_sync(db, config)[-1]
    console.print(f"\n[bold]4. Third sync[/bold]: {third.writes} writes — the CRMs agree.")
    crmhub = _crmhub_command()
    cfg = f"--config {config_path}"
    console.print(
        "\n[bold]Where to look next[/bold]\n"
        f"  {crmhub} log {cfg}                      every write, link and conflict, with why\n"
        f"  {crmhub} log {cfg} --action conflict    the conflict and who won\n"
        f"  {crmhub} conflicts list --all {cfg}     conflicts, settled and open\n"
        f"  {crmhub} failed list {cfg}              the malformed email and the duplicate\n"
        f"  {crmhub} status {cfg}                   the runs\n"
    )
    return reports


def _crmhub_command() -> str:
    """How the user runs crmhub: after `make demo` it is in .venv/bin, not on PATH."""
    if shutil.which("crmhub"):
        return "crmhub"
    script = Path(sys.executable).parent / "crmhub"
    if not script.exists():
        return "crmhub"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


def _summary(console: Console, report: RunReport) -> None:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in (
        "object",
        "system",
        "read",
        "matched",
        "created",
        "updated",
        "conflicts",
        "failed",
        "duplicates",
    ):
        table.add_column(column, justify="left" if column in ("object", "system") else "right")
    for object_type, systems in report.counts.items():
        for system, counter in systems.items():
            table.add_row(
                object_type,
                system,
                *(
                    str(counter.get(c, 0) or "·")
                    for c in (
                        "read",
                        "matched",
                        "created",
                        "updated",
                        "conflicts",
                        "failed",
                        "duplicates",
                    )
                ),
            )
    console.print(table)
