"""The links a dry run would make, looked up both ways, and gone when it closes."""

from __future__ import annotations

from pathlib import Path

from hub.planned_links import PLANNED_ID, PlannedLinks


def test_planned_links_resolve_both_ways_and_every_planned_create_keeps_its_own(
    tmp_path: Path,
) -> None:
    planned = PlannedLinks(str(tmp_path))
    planned.add(
        "companies",
        [
            ("crm", "17", "c-acme"),
            ("erp", "A-9", "c-acme"),
            ("crm", "18", "c-zeta"),
            # Two records the run would create in erp: neither hides the other.
            ("erp", PLANNED_ID, "c-zeta"),
            ("erp", PLANNED_ID, "c-omega"),
        ],
    )

    assert planned.canonical_ids("companies", "crm", ["17", "18", "99"]) == {
        "17": "c-acme",
        "18": "c-zeta",
    }
    assert planned.canonical_ids("contacts", "crm", ["17"]) == {}
    assert planned.remote_ids("companies", ["c-acme", "c-zeta", "c-omega", "c-none"]) == {
        "c-acme": {"crm": "17", "erp": "A-9"},
        "c-zeta": {"crm": "18", "erp": PLANNED_ID},
        "c-omega": {"erp": PLANNED_ID},
    }
    assert len(list(tmp_path.iterdir())) == 1
    planned.close()
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_that_plans_no_links_makes_no_file(tmp_path: Path) -> None:
    planned = PlannedLinks(str(tmp_path))
    assert planned.canonical_ids("deals", "crm", ["1"]) == {}
    planned.close()
    assert list(tmp_path.iterdir()) == []
