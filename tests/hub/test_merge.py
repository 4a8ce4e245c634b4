"""Three-way merge and conflict policies, field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.merge import Contender, Policy, Version, merge_record

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALL = frozenset({"first_name", "job_title", "phone", "email"})
COVER = {"a": ALL, "b": ALL, "c": ALL}
NEWEST = Policy("newest", ("a", "b", "c"))


def v(system: str, minutes: int = 0, fresh: bool = False, **values: object) -> Version:
    return Version(system, f"{system}-1", values, "h", T0 + timedelta(minutes=minutes), fresh)


def linked(*systems: str) -> dict[str, datetime | None]:
    return dict.fromkeys(systems, T0)


def test_a_field_changed_on_one_side_is_taken():
    base = {"first_name": "Ann", "job_title": "Engineer"}
    result = merge_record(
        "contacts",
        base,
        [v("a", first_name="Ann", job_title="CTO"), v("b", **base)],
        COVER,
        linked("a", "b"),
        NEWEST,
    )
    assert result.values == {"first_name": "Ann", "job_title": "CTO"}
    assert result.conflicts == []
    assert result.sources == {"job_title": "a"}


def test_the_same_new_value_on_both_sides_is_no_conflict():
    base = {"job_title": "Engineer"}
    result = merge_record(
        "contacts",
        base,
        [v("a", job_title="CTO"), v("b", job_title="CTO")],
        COVER,
        linked("a", "b"),
        NEWEST,
    )
    assert result.values == {"job_title": "CTO"}
    assert result.conflicts == []


def test_different_new_values_are_a_conflict_settled_by_the_newest_edit():
    base = {"job_title": "Engineer"}
    result = merge_record(
        "contacts",
        base,
        [v("a", 5, job_title="CTO"), v("b", 3, job_title="CEO")],
        COVER,
        linked("a", "b"),
        NEWEST,
    )
    assert result.values == {"job_title": "CTO"}
    [conflict] = result.conflicts
    assert conflict.winner == "a"
    assert conflict.policy == "newest"
    assert {c.system: c.value for c in conflict.contenders} == {"a": "CTO", "b": "CEO"}


def test_newest_ties_are_broken_by_system_order():
    base = {"job_title": "Engineer"}
    versions = [v("b", 1, job_title="CEO"), v("a", 1, job_title="CTO")]
    assert (
        merge_record("contacts", base, versions, COVER, linked("a", "b"), NEWEST).values[
            "job_title"
        ]
        == "CTO"
    )


def test_clearing_a_linked_field_is_a_change():
    result = merge_record(
        "contacts",
        {"job_title": "CTO", "first_name": "Ann"},
        [v("a", first_name="Ann")],
        COVER,
        linked("a", "b"),
        NEWEST,
    )
    assert "job_title" not in result.values


def test_at_first_link_blanks_fill_from_the_other_side_and_never_erase():
    result = merge_record(
        "contacts",
        None,
        [v("a", first_name="Ann", phone="+14155550100"), v("b", first_name="Ann", job_title="CTO")],
        COVER,
        {},
        NEWEST,
    )
    assert result.values == {"first_name": "Ann", "phone": "+14155550100", "job_title": "CTO"}
    assert result.conflicts == []


def test_a_newly_linked_system_competes_with_the_value_the_others_hold():
    base = {"first_name": "Ann", "job_title": "CTO"}
    prefer_a = Policy("prefer", ("a", "b", "c"), prefer=("a",))
    result = merge_record(
        "contacts",
        base,
        [v("c", 30, fresh=True, first_name="Ann", job_title="Intern")],
        COVER,
        linked("a", "b"),
        prefer_a,
    )
    assert result.values["job_title"] == "CTO"
    [conflict] = result.conflicts
    assert conflict.winner == "a"
    assert {c.system for c in conflict.contenders} == {"a", "c"}


def test_a_newly_linked_systems_blank_does_not_clear_a_value():
    base = {"first_name": "Ann", "job_title": "CTO"}
    result = merge_record(
        "contacts", base, [v("c", fresh=True, first_name="Ann")], COVER, linked("a", "b"), NEWEST
    )
    assert result.values == base


def test_a_field_a_system_does_not_map_is_neither_blank_nor_changed_there():
    base = {"first_name": "Ann", "job_title": "CTO"}
    narrow = {**COVER, "b": frozenset({"first_name", "email"})}
    result = merge_record(
        "contacts", base, [v("b", first_name="Anne")], narrow, linked("a", "b"), NEWEST
    )
    assert result.values == {"first_name": "Anne", "job_title": "CTO"}


def test_manual_policy_keeps_the_base_and_queues_the_conflict_while_other_fields_merge():
    base = {"first_name": "Ann", "job_title": "Engineer"}
    manual = Policy("manual", ("a", "b"))
    result = merge_record(
        "contacts",
        base,
        [v("a", first_name="Anne", job_title="CTO"), v("b", first_name="Ann", job_title="CEO")],
        COVER,
        linked("a", "b"),
        manual,
    )
    assert result.values == {"first_name": "Anne", "job_title": "Engineer"}
    assert result.open_fields == {"job_title"}


def test_a_persons_resolution_wins_over_everything():
    result = merge_record(
        "contacts",
        {"job_title": "Engineer"},
        [v("a", job_title="CTO")],
        COVER,
        linked("a", "b"),
        NEWEST,
        resolutions={"job_title": "Founder"},
    )
    assert result.values == {"job_title": "Founder"}


@pytest.mark.parametrize(
    ("policy", "winner"),
    [
        (Policy("newest", ("a", "b", "c")), "c"),
        (Policy("prefer", ("a", "b", "c"), prefer=("b", "a")), "b"),
        (Policy("newest", ("a", "b", "c"), owners={"contacts.phone": "a"}), "a"),
        (Policy("prefer", ("a", "b", "c"), prefer=("b",), owners={"contacts.email": "a"}), "b"),
        (Policy("manual", ("a", "b", "c"), owners={"contacts.phone": "b"}), "b"),
        (Policy("manual", ("a", "b", "c")), None),
        (Policy("prefer", ("a", "b", "c"), prefer=("x",), fallback="manual"), None),
    ],
)
def test_policies_pick_the_expected_winner(policy: Policy, winner: str | None):
    contenders = [
        Contender("a", "1", T0),
        Contender("b", "2", T0 + timedelta(minutes=1)),
        Contender("c", "3", T0 + timedelta(minutes=2)),
    ]
    assert policy.settle("contacts", "phone", contenders)[0] == winner
