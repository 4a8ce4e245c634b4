"""Matching unlinked records across systems by the sync's ordered match rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.matching import GroupIndex, Matcher, MemoryGroupIndex, record_keys
from hub.spool import Spool

COMPANY_RULES = (("domain",), ("name",))
DEAL_RULES = (("name", "company"),)


@pytest.fixture(params=["memory", "spool"])
def index(request: pytest.FixtureRequest) -> Iterator[GroupIndex]:
    """Both places the matcher keeps its groups: a dict, and the spool file on disk."""
    if request.param == "memory":
        yield MemoryGroupIndex()
        return
    with Spool() as spool:
        yield spool.group_index()


def assign(matcher: Matcher, system: str, remote_id: str, values: dict, new_id: str):
    return matcher.assign(system, remote_id, record_keys(values, matcher.rules), new_id)


def test_same_domain_matches_whatever_the_names_say(index: GroupIndex):
    m = Matcher(COMPANY_RULES, index)
    assign(m, "a", "1", {"domain": "acme.com", "name": "Acme"}, "c1")
    outcome = assign(m, "b", "9", {"domain": "acme.com", "name": "ACME Corp"}, "c2")
    assert outcome.canonical_id == "c1"
    assert outcome.matched
    assert outcome.rule == "matched on domain"


def test_a_company_without_domain_falls_back_to_its_name_ignoring_legal_suffixes(index: GroupIndex):
    m = Matcher(COMPANY_RULES, index)
    assign(m, "a", "1", {"domain": "acme.com", "name": "Acme, Inc."}, "c1")
    outcome = assign(m, "b", "9", {"name": "ACME Inc"}, "c2")
    assert outcome.canonical_id == "c1"
    assert outcome.rule == "matched on name"


def test_different_domains_never_match_on_a_shared_name(index: GroupIndex):
    m = Matcher(COMPANY_RULES, index)
    assign(m, "a", "1", {"domain": "acme.com", "name": "Acme"}, "c1")
    outcome = assign(m, "b", "9", {"domain": "acme.de", "name": "Acme"}, "c2")
    assert outcome.canonical_id == "c2"
    assert not outcome.matched


def test_a_second_record_of_the_same_system_is_a_duplicate_not_a_merge(index: GroupIndex):
    m = Matcher((("email",),), index)
    assign(m, "a", "1", {"email": "ann@x.com"}, "c1")
    outcome = assign(m, "a", "2", {"email": "ann@x.com"}, "c2")
    assert outcome.duplicate_of == "1"
    assert outcome.canonical_id is None


def test_an_existing_canonical_record_is_matched_and_its_linked_systems_respected(
    index: GroupIndex,
):
    m = Matcher((("email",),), index)
    m.add_existing("c0", record_keys({"email": "ann@x.com"}, m.rules), {"a": "1"})
    assert assign(m, "b", "7", {"email": "ann@x.com"}, "new").canonical_id == "c0"
    assert assign(m, "a", "8", {"email": "ann@x.com"}, "new").duplicate_of == "1"


def test_composite_rules_need_every_part(index: GroupIndex):
    m = Matcher(DEAL_RULES, index)
    assign(m, "a", "1", {"name": "Rockets", "company": "c-acme"}, "d1")
    assert assign(m, "b", "2", {"name": "rockets", "company": "c-acme"}, "d2").canonical_id == "d1"
    assert (
        assign(m, "b", "3", {"name": "Rockets", "company": "c-globex"}, "d3").canonical_id == "d3"
    )
    assert assign(m, "c", "4", {"name": "Rockets"}, "d4").canonical_id == "d4"  # no company: new


def test_a_record_without_any_key_always_starts_a_new_canonical_record(index: GroupIndex):
    m = Matcher((("email",),), index)
    assert assign(m, "a", "1", {"first_name": "Ann"}, "c1").canonical_id == "c1"
    assert assign(m, "b", "1", {"first_name": "Ann"}, "c2").canonical_id == "c2"


def test_groups_survive_between_batches(index: GroupIndex):
    m = Matcher(COMPANY_RULES, index)
    assign(m, "a", "1", {"domain": "acme.com", "name": "Acme"}, "c1")
    m.flush()
    m.prefetch(["name=acme"])
    outcome = assign(m, "b", "9", {"name": "ACME"}, "c2")
    assert outcome.canonical_id == "c1"
    m.flush()
    assert assign(m, "b", "10", {"domain": "acme.com"}, "c3").duplicate_of == "9"
