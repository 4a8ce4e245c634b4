"""The migration plan's report: one offline HTML page with charts, and a CSV to filter."""

from __future__ import annotations

import csv
import html
import re
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hub.migration import DroppedField, MigrationPlan, ObjectPlan, SourceDuplicate, ValueGap
from hub.migration_report import (
    CHART_WIDTH,
    CSV_COLUMNS,
    MIN_BAR,
    duration,
    report_paths,
    write_csv,
    write_html,
)

HOSTILE = "<script>alert(1)</script>"


def contacts() -> ObjectPlan:
    return ObjectPlan(
        "contacts",
        source_records=1_200,
        target_records=300,
        to_create=900,
        to_match=Counter({"email": 250, "phone": 12}),
        to_update=40,
        to_match_changed=25,
        blocked=5,
        unchanged=3,
        unreadable=Counter({"contacts.email (Email) is not an email address": 7}),
        duplicates=205,
        listed_duplicates=[
            SourceDuplicate("contacts", f"c{n}", "c0", "email") for n in range(1, 201)
        ],
        gaps=[
            ValueGap(
                "contacts",
                "target",
                "lead_source",
                "hs_lead_source",
                "Trade fair",
                records=17,
                examples=["c17", "c18"],
                fix="hubspot.contacts.lead_source.values",
                choices=[f"choice {n}" for n in range(12)],
            ),
        ],
        dropped=[DroppedField("contacts", "fax", 31)],
    )


def deals() -> ObjectPlan:
    return ObjectPlan(
        "deals",
        source_records=80,
        target_records=0,
        to_create=70,
        duplicates=1,
        listed_duplicates=[SourceDuplicate("deals", "d9", "d8", "name, company")],
        gaps=[
            ValueGap(
                "deals",
                "source",
                "stage",
                "dealstage",
                "qualifiedtobuy",
                records=9,
                examples=["d1", "d2", "d3"],
                fix="hubspot.deals.stage.values",
                choices=["lead", "won", "lost"],
            ),
            ValueGap("deals", "target", "stage", "Stage", "won", records=2, fix=None),
        ],
    )


def make_plan(objects: list[ObjectPlan] | None = None, **changes: object) -> MigrationPlan:
    plan = MigrationPlan(
        name="migrate-hubspot-to-zoho",
        source="hubspot",
        target="zoho",
        source_vendor="hubspot",
        target_vendor="zoho",
        made_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        objects=[contacts(), deals()] if objects is None else objects,
        calls={"hubspot": 1_500, "zoho": 40},
        seconds={"hubspot": 7_500.0, "zoho": None},
        planning_seconds=12.5,
        notes=["record owners are not migrated"],
        errors=["zoho: 401 token expired"],
    )
    for name, value in changes.items():
        setattr(plan, name, value)
    return plan


def html_of(plan: MigrationPlan, tmp_path: Path) -> str:
    path = tmp_path / "plan.html"
    write_html(plan, path)
    return path.read_text(encoding="utf-8")


def csv_rows(plan: MigrationPlan, tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "plan.csv"
    write_csv(plan, path)
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


class TagBalance(HTMLParser):
    """Every element opened is closed, in order (void elements excepted)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.problems.append(f"</{tag}> while {self.open[-3:]} are open")


def segment_widths(svg: str) -> dict[str, float]:
    """A stacked bar's coloured segments: label -> width."""
    found = re.findall(
        r'<rect x="[\d.]+" y="0" width="([\d.]+)" height="26" fill="#\w+">\s*'
        r"<title>([^:<]+):",
        svg,
    )
    return {label: float(width) for width, label in found}


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)


# --------------------------------------------------------------------------- HTML


def test_the_page_is_well_formed_html(tmp_path: Path) -> None:
    page = html_of(make_plan(), tmp_path)
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    assert page.startswith("<!DOCTYPE html>")
    assert parser.problems == []
    assert parser.open == []


def test_the_page_shows_the_plan_and_a_chart_per_object_type(tmp_path: Path) -> None:
    page = html_of(make_plan(), tmp_path)
    assert "Migration plan: hubspot → zoho" in page
    assert "2025-03-04 05:06:07 UTC" in page
    for figure in ("1,200", "900", "262", "250 on email", "12 on phone", "205"):
        assert figure in page
    charts = svgs(page)
    assert len(charts) == 3  # contacts, deals, then the calls
    assert "contacts: to create 900" in " ".join(charts[0].split())
    assert "deals: to create 70" in " ".join(charts[1].split())
    # The calls chart, with the least time human-readable.
    calls = " ".join(charts[2].split())
    assert "hubspot (source): 1,500 calls, at least 2 h 05 min" in calls
    assert "zoho (target): 40 calls, no client-side limit" in calls


def summary_row(page: str, label: str) -> list[str]:
    """The summary table's cells for one figure, an object type a column, as shown."""
    row = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', page, flags=re.DOTALL)
    assert row is not None, label
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), flags=re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def test_the_summary_has_a_column_per_object_type(tmp_path: Path) -> None:
    page = html_of(make_plan(), tmp_path)
    assert summary_row(page, "In source") == ["1,200", "80"]
    assert summary_row(page, "In target") == ["300", "0"]
    assert summary_row(page, "To create") == ["900", "70"]
    assert summary_row(page, "To match") == ["262 250 on email 12 on phone", "0"]
    assert summary_row(page, "Of those, changed") == ["25", "0"]
    assert summary_row(page, "To update (moved before)") == ["40", "0"]
    assert summary_row(page, "Unchanged") == ["3", "0"]
    assert summary_row(page, "Duplicates in source") == ["205", "1"]
    assert summary_row(page, "Unreadable") == ["7", "0"]
    assert summary_row(page, "Held by a value gap") == ["5", "0"]
    assert summary_row(page, "Value gaps") == ["1 17 records", "2 11 records"]
    assert summary_row(page, "Dropped fields") == ["1 fax", "0"]


def test_the_page_lists_gaps_drops_duplicates_reasons_notes_and_errors(tmp_path: Path) -> None:
    page = html.unescape(" ".join(html_of(make_plan(), tmp_path).split()))
    assert "qualifiedtobuy" in page
    assert "hubspot.deals.stage.values" in page
    assert "the target's own field map" in page  # the gap with no values-file fix
    assert "choice 0, choice 1" in page
    assert "… and 4 more" in page  # 12 choices, 8 shown
    assert "<td>fax</td>" in page
    assert ">c200</td>" in page
    assert "and 5 more contacts" in page  # 205 duplicates, 200 listed
    assert "and 0 more deals" not in page
    assert "contacts.email (Email) is not an email address" in page
    assert "record owners are not migrated" in page
    assert "zoho: 401 token expired" in page


def test_values_from_the_vendors_are_shown_as_text(tmp_path: Path) -> None:
    plan = make_plan()
    gap = plan.objects[0].gaps[0]
    gap.value = HOSTILE
    gap.examples = [HOSTILE]
    plan.objects[0].listed_duplicates[0].remote_id = '"><img src=x onerror=alert(1)>'
    plan.objects[0].unreadable[HOSTILE] = 1
    plan.errors.append(HOSTILE)
    gap.choices = ['" onmouseover="alert(1)']
    page = html_of(plan, tmp_path)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert 'onmouseover="' not in page


def test_the_page_fetches_nothing(tmp_path: Path) -> None:
    page = html_of(make_plan(), tmp_path).lower()
    for reference in ("http://", "https://", "<script", "<link", " src=", "url(", "@import"):
        assert reference not in page


def test_charts_of_a_plan_with_nothing_to_do(tmp_path: Path) -> None:
    empty = [ObjectPlan("companies"), ObjectPlan("contacts")]
    page = html_of(make_plan(empty, calls={}, seconds={}, errors=[]), tmp_path)
    charts = svgs(page)
    assert len(charts) == 2
    for chart in charts:
        assert segment_widths(chart) == {}
        assert "nothing to create, match or update" in chart
    parser = TagBalance()
    parser.feed(page)
    assert parser.problems == []
    assert "The plan met" not in page  # no error banner


def test_a_tiny_count_beside_a_huge_one_still_shows(tmp_path: Path) -> None:
    huge = ObjectPlan("contacts", source_records=1_000_001, to_create=1_000_000, unchanged=1)
    tiny = ObjectPlan("deals", source_records=2, to_create=1, duplicates=1)
    charts = svgs(html_of(make_plan([huge, tiny]), tmp_path))
    huge_bar, tiny_bar = segment_widths(charts[0]), segment_widths(charts[1])
    assert set(huge_bar) == {"to create", "unchanged"}
    assert huge_bar["unchanged"] >= MIN_BAR
    assert sum(huge_bar.values()) == pytest.approx(CHART_WIDTH, abs=0.2)
    # One scale for every type: two deals beside a million contacts stay small, yet visible.
    assert tiny_bar == {"to create": MIN_BAR, "duplicates in source": MIN_BAR}


def test_a_calls_bar_is_visible_however_few_the_calls(tmp_path: Path) -> None:
    page = html_of(make_plan(calls={"hubspot": 1_000_000, "zoho": 1}), tmp_path)
    widths = re.findall(r'width="([\d.]+)" height="18" fill=', svgs(page)[-1])
    assert [float(width) for width in widths] == [CHART_WIDTH, MIN_BAR]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0 s"),
        (0.3, "under 1 s"),
        (45.2, "45 s"),
        (59.6, "1 min"),
        (754.0, "13 min"),
        (3_599.0, "1 h 00 min"),
        (7_500.0, "2 h 05 min"),
        (100_000.0, "27 h 47 min"),
    ],
)
def test_durations_read_at_a_glance(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


# --------------------------------------------------------------------------- CSV


def test_the_csv_carries_every_fact(tmp_path: Path) -> None:
    plan = make_plan()
    rows = csv_rows(plan, tmp_path)
    by_section = Counter(row["section"] for row in rows)
    assert by_section["value_gap"] == 3
    assert by_section["dropped_field"] == 1
    assert by_section["duplicate"] == 200 + 1 + 1  # contacts listed, the deal, "not listed"

    def one(**wanted: str) -> dict[str, str]:
        found = [row for row in rows if all(row[k] == v for k, v in wanted.items())]
        assert len(found) == 1, wanted
        return found[0]

    assert one(section="summary", object="contacts", item="to_match:email")["value"] == "250"
    assert one(section="summary", object="contacts", item="to_match:phone")["value"] == "12"
    assert one(section="summary", object="deals", item="source_records")["value"] == "80"
    assert one(section="summary", object="contacts", item="unreadable")["value"] == "7"
    assert one(section="calls", item="hubspot")["detail"] == "7500.0"
    assert one(section="calls", item="zoho") == {
        "section": "calls",
        "object": "",
        "item": "zoho",
        "value": "40",
        "records": "",
        "detail": "",
    }
    for gap in plan.gaps:
        row = one(section="value_gap", object=gap.object_type, value=gap.value)
        assert row["item"] == f"{gap.side}:{gap.field_name}"
        assert row["records"] == str(gap.records)
    assert (
        "fix=hubspot.deals.stage.values"
        in one(section="value_gap", value="qualifiedtobuy")["detail"]
    )
    assert one(section="dropped_field", object="contacts", item="fax")["records"] == "31"
    for duplicate in (d for p in plan.objects for d in p.listed_duplicates):
        row = one(section="duplicate", item=duplicate.remote_id)
        assert (row["object"], row["value"], row["detail"]) == (
            duplicate.object_type,
            duplicate.duplicate_of,
            duplicate.rule,
        )
    assert one(section="duplicate", item="not_listed")["records"] == "5"
    assert one(section="unreadable", object="contacts")["records"] == "7"
    assert one(section="note")["detail"] == "record owners are not migrated"
    assert one(section="error")["detail"] == "zoho: 401 token expired"
    assert one(section="plan", item="made_at")["value"] == "2025-03-04T05:06:07+00:00"


def test_a_vendor_value_never_runs_as_a_spreadsheet_formula(tmp_path: Path) -> None:
    plan = make_plan()
    plan.objects[0].gaps[0].value = '=HYPERLINK("http://x.test","go")'
    rows = csv_rows(plan, tmp_path)
    values = {row["value"] for row in rows if row["section"] == "value_gap"}
    assert '\'=HYPERLINK("http://x.test","go")' in values
    assert not any(row[column].startswith("=") for row in rows for column in CSV_COLUMNS)


# --------------------------------------------------------------------------- --report


@pytest.mark.parametrize("given", ["out/plan", "out/plan.html", "out/plan.csv", "out/plan.HTML"])
def test_report_paths_give_the_html_and_the_csv(given: str) -> None:
    assert report_paths(Path(given)) == (Path("out/plan.html"), Path("out/plan.csv"))


def test_report_paths_keep_dots_inside_the_name() -> None:
    assert report_paths(Path("plan.v2.csv")) == (Path("plan.v2.html"), Path("plan.v2.csv"))


def test_report_paths_refuse_another_suffix() -> None:
    with pytest.raises(ValueError, match=r"'\.pdf'"):
        report_paths(Path("plan.pdf"))
