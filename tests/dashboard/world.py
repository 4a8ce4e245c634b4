"""A small crmhub installation for the dashboard's tests: two in-memory CRMs, a state database,
two runs behind it, a conflict waiting for a person and a record a vendor refused.

Built as a user builds one: a config file, seeded stores, and runs through
:func:`hub.runtime.run_sync`.

- Run 1 copies Acme, Ann, Bob and the deal Rockets from ``a`` to ``b``; ``b`` refuses Rockets,
  whose ``priority`` it has no property for ("Property 'priority' does not exist on deals"): a
  failed record at the write stage.
- Both sides then give Bob a new job title (CTO in ``a``, CEO in ``b``); run 2 finds the conflict
  and, under the ``manual`` policy, queues it.
- :meth:`World.give_b_the_priority_property` is the admin's fix in ``b``; Rockets lands in ``b``
  on the next run only if its failure is retried first (its automatic retry is minutes away).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine

from connectors.memory.store import MemoryStore
from hub.config import Config, load_config
from hub.dashboard.auth import Credentials
from hub.db import open_database
from hub.report import RunReport
from hub.runtime import run_sync

PASSWORD = "correct-horse-battery"
# Cheap Argon2 parameters (the hash carries them): the production ones cost about half a second
# a sign-in, and these tests sign in a hundred times.
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
API_TOKEN = "test-api-token-0123456789abcdef"
CREDENTIALS = Credentials(password_hash=PASSWORD_HASH, api_token=API_TOKEN)
PRIORITY = {"deals": ["priority"]}


def write_config(folder: Path, *, b_knows_priority: bool, extra: str = "") -> Path:
    b_properties = "    properties: {deals: [priority]}\n" if b_knows_priority else ""
    path = folder / "crmhub.yaml"
    path.write_text(
        "database: sqlite:///state.db\n"
        "systems:\n"
        "  a:\n    connector: memory\n    path: a.json\n    properties: {deals: [priority]}\n"
        f"  b:\n    connector: memory\n    path: b.json\n{b_properties}"
        "syncs:\n"
        "  main:\n"
        "    systems: [a, b]\n"
        "    conflicts: manual\n"
        "    schedule: 5m\n"
        "    fields: {deals: {custom.priority: {a: priority, b: priority}}}\n"
        f"{extra}",
        encoding="utf-8",
    )
    return path


@dataclass
class World:
    folder: Path
    config: Config
    db: Engine
    ids: dict[str, str]

    def store(self, system: str) -> MemoryStore:
        return MemoryStore(path=self.folder / f"{system}.json", extra_properties=PRIORITY)

    def contact(self, system: str, email: str) -> dict[str, Any]:
        [found] = self.store(system).find("contacts", "email", [email])
        return dict(found.fields)

    def deal(self, system: str, name: str) -> dict[str, Any] | None:
        found = self.store(system).find("deals", "dealname", [name])
        return dict(found[0].fields) if found else None

    def sync(self) -> RunReport:
        [report] = run_sync(self.db, self.config)
        return report

    def give_b_the_priority_property(self) -> None:
        self.config = load_config(write_config(self.folder, b_knows_priority=True))

    def edit_contact(self, system: str, email: str, changes: dict[str, Any]) -> None:
        self._edit(system, "contacts", "email", email, changes)

    def edit_company(self, system: str, domain: str, changes: dict[str, Any]) -> None:
        self._edit(system, "companies", "domain", domain, changes)

    def _edit(
        self, system: str, object_type: str, key: str, value: str, changes: dict[str, Any]
    ) -> None:
        account = self.store(system)
        [found] = account.find(object_type, key, [value])
        account.update(object_type, found.id, changes)
        account.save()


def build_world(folder: Path) -> World:
    a = MemoryStore(path=folder / "a.json", extra_properties=PRIORITY)
    acme = a.create("companies", {"name": "Acme", "domain": "acme.com"})
    ann = a.create("contacts", {"firstname": "Ann", "email": "ann@acme.com", "company_id": acme.id})
    bob = a.create(
        "contacts",
        {
            "firstname": "Bob",
            "lastname": "Stone",
            "email": "bob@acme.com",
            "jobtitle": "Engineer",
            "company_id": acme.id,
        },
    )
    a.create(
        "deals",
        {
            "dealname": "Rockets",
            "amount": "1000",
            "dealstage": "qualifiedtobuy",
            "priority": "high",
            "company_id": acme.id,
        },
    )
    a.save()
    config = load_config(write_config(folder, b_knows_priority=False))
    world = World(folder, config, open_database(config.database), {"ann": ann.id, "bob": bob.id})
    world.sync()
    world.edit_contact("a", "bob@acme.com", {"jobtitle": "CTO"})
    world.edit_contact("b", "bob@acme.com", {"jobtitle": "CEO"})
    world.sync()
    return world


def copy_world(template: World, folder: Path) -> World:
    """The same world in a folder of its own, for a test that changes it: cheaper than
    building one (each build runs two syncs)."""
    template.db.dispose()  # checkpoints SQLite's WAL into the file that is copied
    shutil.copytree(template.folder, folder, dirs_exist_ok=True)
    config = load_config(folder / "crmhub.yaml")
    return World(folder, config, open_database(config.database), dict(template.ids))
