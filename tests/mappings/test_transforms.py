"""Named transforms: what a vendor sends becomes canonical, and canonical goes back as expected."""

from __future__ import annotations

import pytest

from mappings.errors import NormalizeError
from mappings.transforms import TRANSFORMS, Transform, register_transform


def test_builtin_transforms_are_registered():
    assert {
        "string",
        "int",
        "decimal",
        "number",
        "date",
        "epoch_ms_date",
        "bool",
        "lines",
        "list",
    } <= set(TRANSFORMS)


@pytest.mark.parametrize(
    ("name", "vendor", "canonical"),
    [
        ("string", 42, "42"),
        ("string", " x ", "x"),
        ("int", "1,200", 1200),
        ("int", 7.0, 7),
        ("decimal", 1234.5, "1234.5"),
        ("decimal", "1,234.50", "1234.5"),
        ("number", "12", 12),
        ("number", "12.50", 12.5),
        ("date", "2024-03-01T10:00:00Z", "2024-03-01"),
        ("epoch_ms_date", 1709251200000, "2024-03-01"),
        ("epoch_ms_date", "1709251200000", "2024-03-01"),
        ("bool", "Y", True),
        ("bool", "no", False),
        ("bool", "1", True),
        ("bool", 0, False),
        ("bool", "TRUE", True),
        ("lines", ["1 Main St", "Suite 2"], "1 Main St\nSuite 2"),
        ("lines", "1 Main St\r\nSuite 2", "1 Main St\nSuite 2"),
        ("list", ["b", "a", "b"], ["a", "b"]),
        ("list", "b;a; c", ["a", "b", "c"]),
        ("list", '["2", 1]', ["1", "2"]),
        ("list", 5, ["5"]),
    ],
)
def test_to_canonical(name, vendor, canonical):
    assert TRANSFORMS[name].to_canonical(vendor) == canonical


@pytest.mark.parametrize(
    ("name", "canonical", "vendor"),
    [
        ("string", "x", "x"),
        ("int", 1200, 1200),
        ("decimal", "1234.5", "1234.5"),
        ("number", "1234.5", 1234.5),
        ("number", "12", 12),
        ("date", "2024-03-01", "2024-03-01"),
        ("epoch_ms_date", "2024-03-01", 1709251200000),
        ("bool", True, True),
        ("lines", "a\nb", "a\nb"),
        ("list", ["b", "a"], ["a", "b"]),
    ],
)
def test_to_vendor(name, canonical, vendor):
    result = TRANSFORMS[name].to_vendor(canonical)
    assert result == vendor
    assert type(result) is type(vendor)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_passes_blank_through(name):
    assert TRANSFORMS[name].to_canonical(None) is None
    assert TRANSFORMS[name].to_vendor(None) is None


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("int", "12.5"),
        ("decimal", "twelve"),
        ("number", "NaN"),
        ("date", "next week"),
        ("epoch_ms_date", "soon"),
        ("bool", "maybe"),
        ("bool", 2),
        ("list", "[not json"),
        ("string", {"a": 1}),
    ],
)
def test_bad_values_raise_naming_the_value(name, bad):
    with pytest.raises(NormalizeError) as info:
        TRANSFORMS[name].to_canonical(bad)
    assert str(info.value).startswith(repr(bad)[:20])


def test_list_names_the_element_it_cannot_use():
    with pytest.raises(NormalizeError, match=r"^\{'id': 1\} is a dict"):
        TRANSFORMS["list"].to_canonical(["ok", {"id": 1}])


def test_register_transform_makes_it_available_by_name():
    upper = Transform("upper_test", str.lower, str.upper)
    try:
        assert register_transform(upper) is TRANSFORMS["upper_test"]
    finally:
        del TRANSFORMS["upper_test"]
