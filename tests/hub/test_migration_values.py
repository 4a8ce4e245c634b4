"""The values file of ``crmhub migrate``: the starter the plan writes, and what is read back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from hub.migration import (
    MigrationError,
    MigrationPlan,
    ObjectPlan,
    ValueGap,
    load_values,
    starter_values,
)


def plan_with_gaps(*gaps: ValueGap) -> MigrationPlan:
    return MigrationPlan(
        name="migrate-crm-to-erp",
        source="crm",
        target="erp",
        source_vendor="bitrix24",
        target_vendor="zoho",
        made_at=datetime(2026, 11, 27, tzinfo=UTC),
        objects=[
            ObjectPlan("deals", gaps=[g for g in gaps if g.object_type == "deals"]),
            ObjectPlan("companies", gaps=[g for g in gaps if g.object_type == "companies"]),
        ],
        calls={},
        seconds={},
        planning_seconds=0.0,
    )


STAGE = ValueGap(
    "deals",
    "source",
    "stage",
    "STAGE_ID",
    "C1:NEW",
    records=4,
    fix="crm.deals.fields.stage.values",
    choices=["prospecting", "closed_won"],
)
OTHER_STAGE = ValueGap(
    "deals",
    "source",
    "stage",
    "STAGE_ID",
    "C1:WON",
    records=1,
    fix="crm.deals.fields.stage.values",
    choices=["prospecting", "closed_won"],
)
INDUSTRY = ValueGap(
    "companies",
    "target",
    "industry",
    "Industry",
    "Software",
    records=6,
    fix="crm.companies.fields.industry.values",
    choices=["Large Enterprise"],
)


def test_the_starter_lists_each_gap_as_null_with_its_records_and_choices() -> None:
    text = starter_values(plan_with_gaps(STAGE, INDUSTRY))
    assert text is not None
    assert yaml.safe_load(text) == {
        "crm": {
            "deals": {"fields": {"stage": {"values": {"C1:NEW": None}}}},
            # A value the target does not list maps on the source's side; other values pass.
            "companies": {
                "fields": {"industry": {"values": {"Software": None}, "unknown": "keep"}}
            },
        }
    }
    assert "# 4 deals; in crm, one of: prospecting, closed_won" in text
    assert "# 6 companies; in erp, one of: Large Enterprise" in text


def test_a_plan_without_gaps_writes_no_starter() -> None:
    assert starter_values(plan_with_gaps()) is None


def test_what_a_person_filled_in_survives_the_next_starter(tmp_path: Path) -> None:
    first = tmp_path / "values.yaml"
    first.write_text(starter_values(plan_with_gaps(STAGE)) or "")
    first.write_text(first.read_text().replace("C1:NEW: null", "C1:NEW: negotiation"))
    kept = load_values(first, ("crm", "erp"), unfilled_ok=True)

    # The next plan, with the file not yet passed back, finds one more stage.
    text = starter_values(plan_with_gaps(STAGE, OTHER_STAGE), kept)
    assert text is not None
    assert yaml.safe_load(text)["crm"]["deals"]["fields"]["stage"]["values"] == {
        "C1:NEW": "negotiation",
        "C1:WON": None,
    }


def test_an_unfilled_value_is_refused_naming_its_key(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(starter_values(plan_with_gaps(STAGE)) or "")
    with pytest.raises(
        MigrationError, match=r"crm\.deals\.fields\.stage\.values\.'C1:NEW' has no value yet"
    ):
        load_values(path, ("crm", "erp"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("crm: [1, 2\n", "not valid YAML"),
        ("- crm\n", "must map system names to field-map overrides"),
        ("elsewhere: {deals: {}}\n", "'elsewhere' is neither side of this migration (crm, erp)"),
        ("crm: deals\n", "crm: must map object types to fields"),
    ],
)
def test_a_malformed_values_file_is_refused_naming_the_culprit(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(MigrationError) as refused:
        load_values(path, ("crm", "erp"))
    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value)


def test_a_missing_values_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=r"cannot read the values file .*nowhere\.yaml"):
        load_values(tmp_path / "nowhere.yaml", ("crm", "erp"))
