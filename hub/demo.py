"""``crmhub demo``: a real two-way sync between a HubSpot and a Zoho CRM sandbox.

Public entry points: :func:`run_demo`, :func:`seed_sandbox`, :func:`sample_records`.

The demo starts both vendors' sandboxes (local emulators of their APIs, see
``connectors/sandbox.py``) on free loopback ports, seeds them with overlapping companies,
contacts and deals, writes an ordinary config file and a SQLite state database into one folder,
and runs the same code path as ``crmhub sync``, over HTTP, through the real connectors. So after
it, ``crmhub log``, ``crmhub conflicts list`` and ``crmhub failed list`` work on what it did,
with ``--config <folder>/crmhub.yaml``.

The data is deliberately untidy, as real CRMs are: the people both CRMs know have their phone
numbers typed differently and their emails in other case in Zoho, Zoho holds one person twice,
and after the first sync both sides edit the same field of one person (a conflict) while each
also makes an ordinary change.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import phonenumbers
import yaml
from rich.console import Console
from rich.table import Table

from connectors.sampledata import SampleAccount, sample_account
from connectors.sandbox import Sandbox, SandboxOptions, VendorApi, load_sandbox
from hub.config import load_config
from hub.db import open_database
from hub.report import RunReport
from hub.runtime import run_sync
from mappings.fieldmap import FieldMap, load_default_map

# The people each sandbox holds: HubSpot 0-39, Zoho 30-69, so ten people (and their company
# and deals) are in both.
DEMO_SEED = 11
HUBSPOT_PEOPLE = (0, 40)
ZOHO_PEOPLE = (30, 40)

Styler = Callable[[str, dict[str, Any]], dict[str, Any]]


def sample_records(account: SampleAccount) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """The account as flat canonical records, keyed by their universe key; references as keys."""
    companies = [
        (
            c.key,
            {
                "name": c.name,
                "domain": c.domain,
                "website": c.website,
                "phone": c.phone,
                "industry": c.industry,
                "employees": c.employees,
                "annual_revenue": str(c.annual_revenue),
                "address.city": c.city,
                "address.country": c.country,
            },
        )
        for c in account.companies
    ]
    contacts = [
        (
            p.key,
            {
                "first_name": p.first_name,
                "last_name": p.last_name,
                "email": p.email,
                "phone": p.phone,
                "mobile": p.mobile,
                "job_title": p.job_title,
                "company": p.company_key,
                "address.city": p.city,
                "address.country": p.country,
            },
        )
        for p in account.contacts
    ]
    deals = [
        (
            d.key,
            {
                "name": d.name,
                "amount": str(d.amount),
                "currency": d.currency,
                "stage": d.stage,
                "close_date": d.close_date.isoformat(),
                "company": d.company_key,
                "contacts": list(d.contact_keys),
            },
        )
        for d in account.deals
    ]
    return {"companies": companies, "contacts": contacts, "deals": deals}


def typed_by_hand(object_type: str, flat: dict[str, Any]) -> dict[str, Any]:
    """Values as people type them: phones with spaces and dashes (national format for the
    account's own region, US, international for the rest), emails in mixed case."""
    styled = dict(flat)
    for name in ("phone", "mobile"):
        value = styled.get(name)
        if isinstance(value, str) and value.startswith("+"):
            number = phonenumbers.parse(value)
            style = (
                phonenumbers.PhoneNumberFormat.NATIONAL
                if number.country_code == 1
                else phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
            styled[name] = phonenumbers.format_number(number, style)
    email = styled.get("email")
    if isinstance(email, str):
        local, _, domain = email.partition("@")
        styled["email"] = f"{local.title()}@{domain.capitalize()}"
    return styled


def seed_sandbox(
    api: VendorApi,
    fieldmap: FieldMap,
    account: SampleAccount,
    style: Styler | None = None,
) -> dict[str, dict[int, str]]:
    """Lay ``account`` into a sandbox through the vendor's own field map, as a user's data.

    Returns the vendor id of every record by object type and universe key. References are
    translated to the ids the sandbox minted; a reference to a record outside the account is
    left out.
    """
    ids: dict[str, dict[int, str]] = {"companies": {}, "contacts": {}, "deals": {}}
    targets = {"company": "companies", "contacts": "contacts"}
    for object_type, records in sample_records(account).items():
        covered = fieldmap.canonical_fields(object_type)
        for key, flat in records:
            values = {k: v for k, v in flat.items() if v is not None and k in covered}
            for ref, target in targets.items():
                if ref not in values:
                    continue
                known = ids[target]
                if isinstance(values[ref], list):
                    values[ref] = [known[k] for k in values[ref] if k in known]
                elif values[ref] in known:
                    values[ref] = known[values[ref]]
                else:
                    values.pop(ref)
            if style is not None:
                values = style(object_type, values)
            vendor = fieldmap.to_vendor(object_type, values, fields=list(values))
            ids[object_type][key] = api.insert(object_type, vendor)
    return ids


def _edit(
    api: VendorApi, fieldmap: FieldMap, object_type: str, record_id: str, **canonical: Any
) -> None:
    api.modify(object_type, record_id, fieldmap.to_vendor(object_type, canonical, list(canonical)))


def run_demo(directory: Path, console: Console) -> list[RunReport]:
    """Start both sandboxes, seed, sync, edit both sides, sync again; say where to look."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    hubspot = load_sandbox("hubspot", SandboxOptions(seed=DEMO_SEED))
    zoho = load_sandbox("zoho", SandboxOptions(seed=DEMO_SEED))
    with hubspot, zoho:
        return _demo(directory, console, hubspot, zoho)


def _demo(directory: Path, console: Console, hubspot: Sandbox, zoho: Sandbox) -> list[RunReport]:
    maps = {"hubspot": load_default_map("hubspot"), "zoho": load_default_map("zoho")}
    hubspot_ids = seed_sandbox(
        hubspot.api, maps["hubspot"], sample_account(HUBSPOT_PEOPLE[1], DEMO_SEED)
    )
    zoho_ids = seed_sandbox(
        zoho.api,
        maps["zoho"],
        sample_account(ZOHO_PEOPLE[1], DEMO_SEED, start=ZOHO_PEOPLE[0]),
        typed_by_hand,
    )
    # Zoho does not enforce unique emails, and this account has one person entered twice.
    twice = zoho.api.snapshot("contacts")[zoho_ids["contacts"][45]]
    zoho.api.insert("contacts", twice)

    config_path = directory / "crmhub.yaml"
    config_path.write_text(_config_text(hubspot, zoho), encoding="utf-8")
    console.print(
        f"[bold]crmhub demo[/bold] in {directory}/ — a [cyan]HubSpot[/cyan] sandbox on "
        f"{hubspot.url} and a [cyan]Zoho CRM[/cyan] sandbox on {zoho.url}, each with "
        "companies, contacts and deals; ten people are in both, typed differently.\n"
    )

    config = load_config(config_path)
    db = open_database(config.database)
    started = time.monotonic()
    reports = run_sync(db, config)
    console.print(
        "[bold]1. First sync[/bold]: records matched across the two CRMs by email "
        "(contacts), domain then name (companies), name within company (deals); the rest "
        "created on the side that lacked them."
    )
    _summary(console, reports[-1])

    # One person both CRMs know: HubSpot edits the job title, Zoho a moment later too (a
    # conflict), and each side makes one more change of its own.
    shared = 33
    _edit(
        hubspot.api,
        maps["hubspot"],
        "contacts",
        hubspot_ids["contacts"][shared],
        job_title="VP Engineering",
        mobile="+1 617 555 0142",
    )
    time.sleep(1.1)  # vendors stamp modified times to the second in places: make it later
    _edit(
        zoho.api,
        maps["zoho"],
        "contacts",
        zoho_ids["contacts"][shared],
        job_title="Head of Engineering",
    )
    _edit(zoho.api, maps["zoho"], "companies", zoho_ids["companies"][5], employees=1500)
    console.print(
        "\n[bold]2. Edits[/bold]: in HubSpot, contact #33 gets a new job title and a "
        "mobile number; a moment later Zoho types a different job title for the same person, "
        "and raises a company's headcount."
    )

    reports += run_sync(db, config)
    console.print(
        "\n[bold]3. Second sync[/bold]: the mobile number flows to Zoho and the headcount to "
        "HubSpot; the job title is a conflict, settled by the `newest` policy (Zoho's edit "
        "won) and recorded."
    )
    _summary(console, reports[-1])

    third = run_sync(db, config)[-1]
    elapsed = time.monotonic() - started
    console.print(
        f"\n[bold]4. Third sync[/bold]: {third.writes} writes — the CRMs agree. "
        f"(All three syncs: {elapsed:.1f} s.)"
    )
    crmhub = _crmhub_command()
    cfg = f"--config {config_path}"
    console.print(
        "\n[bold]Where to look next[/bold]\n"
        f"  {crmhub} log {cfg}                      every write, link and conflict, with why\n"
        f"  {crmhub} log {cfg} --action conflict    the conflict and who won\n"
        f"  {crmhub} conflicts list --all {cfg}     conflicts, settled and open\n"
        f"  {crmhub} failed list {cfg}              the person Zoho holds twice\n"
        f"  {crmhub} status {cfg}                   the runs\n"
        f"  {crmhub} sandbox hubspot --seed 1000    a sandbox of your own to point a config at\n"
        "The sandboxes stopped with the demo; the state database keeps what it did."
    )
    return reports


def _config_text(hubspot: Sandbox, zoho: Sandbox) -> str:
    systems: Mapping[str, Any] = {
        "hubspot": hubspot.connector_settings(),
        "zoho": zoho.connector_settings(),
    }
    body = yaml.safe_dump({"systems": dict(systems)}, sort_keys=False)
    return (
        "# Written by `crmhub demo`: HubSpot and Zoho CRM sandboxes kept in sync.\n"
        "# The credentials below are the sandboxes' own. For real accounts, put secrets in the\n"
        "# environment and write them as ${HUBSPOT_TOKEN}; see config/hubspot-zoho.yaml.\n"
        "database: sqlite:///crmhub.db\n"
        "phone_region: US\n"
        f"{body}"
        "syncs:\n"
        "  demo:\n"
        "    systems: [hubspot, zoho]   # both read and write; on a tie, hubspot wins\n"
        "    objects: [companies, contacts, deals]\n"
        "    conflicts: newest          # the most recent edit wins; the loser is audited\n"
        "    deletes: ignore\n"
    )


def _crmhub_command() -> str:
    """How the user runs crmhub: after `make demo` it is in .venv/bin, not on PATH."""
    if shutil.which("crmhub"):
        return "crmhub"
    script = Path(sys.executable).parent / "crmhub"
    if not script.exists():
        return "crmhub"
    relative = os.path.relpath(script)
    return relative if not relative.startswith("..") else str(script)


_COLUMNS = ("read", "matched", "created", "updated", "conflicts", "failed", "duplicates")


def _summary(console: Console, report: RunReport) -> None:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("object", "system", *_COLUMNS):
        table.add_column(column, justify="left" if column in ("object", "system") else "right")
    for object_type, systems in report.counts.items():
        for system, counter in systems.items():
            table.add_row(object_type, system, *(str(counter.get(c, 0) or "·") for c in _COLUMNS))
    console.print(table)
