"""Config to running sync: user field maps (custom fields, stage maps) reach the vendors."""

from __future__ import annotations

from pathlib import Path

from connectors.memory.store import MemoryStore
from hub.config import load_config
from hub.db import open_database
from hub.runtime import run_sync

CONFIG = """
database: sqlite:///state.db
systems:
  a:
    connector: memory
    path: a.json
    properties: {contacts: [segment]}
  b:
    connector: memory
    path: b.json
    properties: {contacts: [tier]}
    map:
      deals:
        fields:
          stage:
            values: {won_big: closed_won}
syncs:
  main:
    systems: [a, b]
    fields:
      contacts:
        custom.segment: {a: segment, b: tier}
"""


def test_custom_fields_and_stage_maps_from_config_reach_each_system(tmp_path: Path):
    (tmp_path / "crmhub.yaml").write_text(CONFIG, encoding="utf-8")
    a = MemoryStore(path=tmp_path / "a.json", extra_properties={"contacts": ["segment"]})
    a.create("contacts", {"firstname": "Ann", "email": "ann@x.com", "segment": "enterprise"})
    a.save()
    b = MemoryStore(path=tmp_path / "b.json", extra_properties={"contacts": ["tier"]})
    b.create("deals", {"dealname": "Big win", "dealstage": "won_big"})
    b.save()

    config = load_config(tmp_path / "crmhub.yaml")
    [report] = run_sync(open_database(config.database), config)

    assert report.exit_code == 0, report.as_dict()
    b = MemoryStore(path=tmp_path / "b.json")
    [ann] = b.all("contacts")
    assert ann.fields["tier"] == "enterprise"
    a = MemoryStore(path=tmp_path / "a.json")
    [deal] = a.all("deals")
    assert deal.fields["dealstage"] == "closedwon"  # a's preferred value for closed_won
