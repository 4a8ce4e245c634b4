"""Normalizers: accepted spellings, their canonical form, and errors that name the value."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import email_validator
import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mappings.errors import NormalizeError
from mappings.normalize import (
    company_name_key,
    match_key,
    normalize_country,
    normalize_currency,
    normalize_date,
    normalize_decimal,
    normalize_domain,
    normalize_email,
    normalize_int,
    normalize_multiline,
    normalize_phone,
    normalize_text,
    normalize_website,
)


@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n"])
@pytest.mark.parametrize(
    "normalizer",
    [
        normalize_text,
        normalize_multiline,
        normalize_email,
        normalize_phone,
        normalize_domain,
        normalize_website,
        normalize_country,
        normalize_currency,
        normalize_decimal,
        normalize_int,
        normalize_date,
    ],
)
def test_blank_is_absent_for_every_normalizer(normalizer, blank):
    assert normalizer(blank) is None


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada  ", "Ada"),
        ("line 1\r\nline 2", "line 1\nline 2"),
        (42, "42"),
        (12.0, "12"),  # spreadsheet exports write ids as floats
        (True, "true"),
        ("Cafe\u0301", "Caf\u00e9"),  # decomposed é composes, so both spellings hash alike
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalize_text_rejects_containers_instead_of_storing_their_repr():
    with pytest.raises(NormalizeError, match=r"\['a'\] is a list"):
        normalize_text(["a"])


def test_normalize_multiline_strips_lines_and_drops_empty_ones():
    assert normalize_multiline("  1 Main St \r\n\r\n  Suite 200  ") == "1 Main St\nSuite 200"
    assert normalize_multiline(["1 Main St", "", " Suite 200"]) == "1 Main St\nSuite 200"


# -- email --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Bob.Smith@Example.COM ", "bob.smith@example.com"),
        ("o'brien+crm@mail.example.co.uk", "o'brien+crm@mail.example.co.uk"),
        ("info@xn--mnchen-3ya.de", "info@münchen.de"),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("bob@@example.com", "@"),
        ("bob", "@"),
        ("bob@example", "period"),
        ("bob..smith@example.com", "period"),
        ("bob@localhost.test", "special-use"),
        ("Bob <bob@example.com>", "display name"),
    ],
)
def test_normalize_email_rejects_bad_syntax_naming_value_and_reason(raw, why):
    with pytest.raises(NormalizeError) as info:
        normalize_email(raw)
    message = str(info.value)
    assert message.startswith(repr(raw))
    assert "is not a valid email address" in message
    assert why in message
    assert "\n" not in message


_local = st.text("abcxyz0189._%+-'", min_size=1, max_size=20)
_label = st.text("abz09-", min_size=1, max_size=12)
_tld = st.sampled_from(["com", "org", "io", "de", "test", "local", "c0m", "x-y", "7z"])
_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _local,
    st.lists(_label, min_size=1, max_size=3),
    _tld,
)


@given(_emails)
def test_email_fast_path_agrees_with_email_validator(address):
    """The regex shortcut must accept exactly what email-validator returns unchanged."""
    try:
        expected = email_validator.validate_email(address, check_deliverability=False).normalized
    except email_validator.EmailNotValidError:
        with pytest.raises(NormalizeError):
            normalize_email(address)
    else:
        assert normalize_email(address) == expected.lower()


# -- phone --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("+1 415 555 0100", "DE", "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        (4155550100, "US", "+14155550100"),
        ("030 1234567", "DE", "+49301234567"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", "US", "+442079460018"),
        ("(415) 555-0100 ext. 12", "US", "+14155550100;ext=12"),
        ("+14155550100;ext=12", "US", "+14155550100;ext=12"),
    ],
)
def test_normalize_phone_gives_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["ask reception", "  12  ", "020 7946 0018", "n/a"])
def test_normalize_phone_keeps_what_it_cannot_read(raw):
    # "020 7946 0018" is a London number, but not with the default US region.
    assert normalize_phone(raw, "US") == raw.strip()


def test_normalize_phone_without_region_keeps_national_numbers():
    assert normalize_phone("4155550100", None) == "4155550100"


@settings(deadline=None)
@given(
    st.text("0123456789", min_size=3, max_size=14),
    st.sampled_from(["US", "GB", "DE", "AT", "AU", "BR", "IN", "RU", None]),
    st.booleans(),
)
def test_normalize_phone_is_idempotent(digits, region, international):
    """A number written to a vendor and read back must not change (trunk prefixes, zeros)."""
    once = normalize_phone(("+" if international else "") + digits, region)
    assert normalize_phone(once, region) == once


@st.composite
def _nanp_spellings(draw: st.DrawFn) -> str:
    digits = draw(st.text("0123456789", min_size=10, max_size=10))
    sep = draw(st.sampled_from(["", " ", "-", ".", " - ", "  "]))
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    if draw(st.booleans()):
        area = f"({area})"
    prefix = draw(st.sampled_from(["", "1", "+1", "+1 ", "1-", "+ 1 ", "+"]))
    return f"{prefix}{area}{sep}{exchange}{sep}{line}"


@st.composite
def _formatted_numbers(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["", "+", "+ ", "(", "00", "0", "+49 (0)"]))
    for group in draw(st.lists(st.text("0123456789", min_size=1, max_size=5), max_size=5)):
        text += draw(st.sampled_from(["", " ", "-", ".", "(", ")", ") ", " (", "  "])) + group
    return text


def _phonenumbers_answer(raw: str, region: str | None) -> str:
    """What normalize_phone promises: phonenumbers' E.164 of the text as written, taken to its
    fixed point, or the text itself when it is not a possible number."""

    def once(text: str) -> str:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return text
        if not phonenumbers.is_possible_number(number):
            return text
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    answer = once(raw)
    for _ in range(4):
        answer = once(answer)
    return answer


@st.composite
def _international_spellings(draw: st.DrawFn) -> str:
    """Real numbers of any region, written internationally with separators, or mangled."""
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    kind = draw(st.sampled_from([None, phonenumbers.PhoneNumberType.MOBILE]))
    example = (
        phonenumbers.example_number(region)
        if kind is None
        else phonenumbers.example_number_for_type(region, kind)
    )
    assume(example is not None)
    text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if draw(st.booleans()):
        # Digits changed, dropped or added: possible, impossible or another country's number.
        digits = list(text)
        spots = [i for i, c in enumerate(digits) if c.isdigit()]
        spot = draw(st.sampled_from(spots))
        digits[spot] = draw(st.sampled_from(["", "0", "9", "00", "1"]))
        text = "".join(digits)
    return text.replace(" ", draw(st.sampled_from([" ", "-", ".", "", " - "])))


# No deadline: phonenumbers loads a region's metadata on first use, which takes ~0.5 s.
@settings(deadline=None, max_examples=400)
@given(
    st.one_of(_nanp_spellings(), _formatted_numbers(), _international_spellings()),
    st.sampled_from(["US", "CA", "GB", "DE", "AT", "FR", "IT", "BR", "IN", "RU", "HU", "MX", None]),
)
def test_phone_shortcuts_agree_with_phonenumbers(raw, region):
    """The North American and international shortcuts must not change any answer."""
    expected = _phonenumbers_answer(raw.strip(), region) if raw.strip() else None
    assert normalize_phone(raw, region) == expected


# -- domain and website -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("www.example.com", "example.com"),
        ("https://user:pw@WWW.Example.com:8443/path?q=1#x", "example.com"),
        ("//cdn.example.com/lib.js", "cdn.example.com"),
        ("example.com:8080/about", "example.com"),
        ("jane@Sub.Example.org", "sub.example.org"),
        ("example.com.", "example.com"),
        ("www.münchen.de", "xn--mnchen-3ya.de"),
    ],
)
def test_normalize_domain(raw, expected):
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    "raw", ["localhost", "192.168.0.1", "not a domain", "http://", "a" * 64 + ".com", "x_y.com"]
)
def test_normalize_domain_rejects_garbage_naming_it(raw):
    with pytest.raises(NormalizeError, match="is not a") as info:
        normalize_domain(raw)
    assert repr(raw)[:40] in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "https://example.com"),
        ("HTTP://Example.COM/", "http://example.com"),
        ("https://example.com/About/", "https://example.com/About/"),
        ("www.example.com/?utm=x", "https://www.example.com?utm=x"),
        ("//example.com", "https://example.com"),
        ("https://example.com:8443", "https://example.com:8443"),
    ],
)
def test_normalize_website(raw, expected):
    assert normalize_website(raw) == expected
    assert normalize_website(expected) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("ftp://example.com", "scheme 'ftp'"),
        ("n/a", "expected a host"),
        ("http://example.com:port", "not a URL"),
        ("example .com", "whitespace"),
    ],
)
def test_normalize_website_rejects(raw, why):
    with pytest.raises(NormalizeError, match=why):
        normalize_website(raw)


# -- country and currency -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("de", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        (276, "DE"),
        ("76", "BR"),  # numeric codes are zero-padded
        ("Germany", "DE"),
        ("  germany ", "DE"),
        ("Deutschland", "DE"),
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("United Kingdom of Great Britain and Northern Ireland", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("South Korea", "KR"),
        ("Korea, Republic of", "KR"),
        ("Republic of Korea", "KR"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d\u2019Ivoire", "CI"),  # typographic apostrophe
        ("Turkey", "TR"),
        ("Czech Republic", "CZ"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Taiwan", "TW"),
    ],
)
def test_normalize_country(raw, expected):
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", ["Narnia", "ZZ", "Europe"])
def test_normalize_country_rejects_unknown_naming_it(raw):
    with pytest.raises(NormalizeError, match=f"^'{raw}' is not a country"):
        normalize_country(raw)


@pytest.mark.parametrize(("raw", "expected"), [("usd", "USD"), (" EUR ", "EUR"), ("jpy", "JPY")])
def test_normalize_currency(raw, expected):
    assert normalize_currency(raw) == expected


@pytest.mark.parametrize("raw", ["US", "$", "XYZ", "dollars"])
def test_normalize_currency_rejects(raw):
    with pytest.raises(NormalizeError, match=re.escape(f"'{raw}' is not an ISO 4217")):
        normalize_currency(raw)


# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1234.5, "1234.5"),
        (0.1, "0.1"),  # via repr, not 0.1000000000000000055511151231257827...
        (1e20, "100000000000000000000"),
        (12, "12"),
        (Decimal("1234.500"), "1234.5"),
        (Decimal("1E+3"), "1000"),
        ("1234.50", "1234.5"),
        ("1,234.50", "1234.5"),
        ("1,234,567", "1234567"),
        (" 12 ", "12"),
        ("-0.00", "0"),
        ("0", "0"),
        ("1.5e3", "1500"),
        (".5", "0.5"),
        ("12345678901234567890123456789.123456789", "12345678901234567890123456789.123456789"),
        ("1." + "0" * 40, "1"),  # trailing zeros are not precision
    ],
)
def test_normalize_decimal(raw, expected):
    assert normalize_decimal(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "1,23",
        "12,34.5",
        "1.234,50",
        "$12",
        "NaN",
        "inf",
        float("nan"),
        float("inf"),
        True,
        "1e99",
        "1e-40",
    ],
)
def test_normalize_decimal_rejects(raw):
    with pytest.raises(NormalizeError) as info:
        normalize_decimal(raw)
    assert str(info.value).startswith(repr(raw))


@pytest.mark.parametrize(("raw", "expected"), [(12, 12), ("1,200", 1200), (12.0, 12), ("7.0", 7)])
def test_normalize_int(raw, expected):
    assert normalize_int(raw) == expected


@pytest.mark.parametrize("raw", [12.5, "12.5", False, "twelve"])
def test_normalize_int_rejects_fractions_and_words(raw):
    with pytest.raises(NormalizeError):
        normalize_int(raw)


# -- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (date(2024, 3, 1), "2024-03-01"),
        (datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2024-03-02"),
        (datetime(2024, 3, 1, 23, 30), "2024-03-01"),
        ("2024-03-01", "2024-03-01"),
        ("2024-03-01T23:30:00Z", "2024-03-01"),
        ("2024-03-01T23:30:00-05:00", "2024-03-02"),
        ("2024-03-01 10:00:00", "2024-03-01"),
        ("20240301", "2024-03-01"),
        (1709251200000, "2024-03-01"),
        ("1709251200000", "2024-03-01"),
        (1709337599999, "2024-03-01"),
        (-86400000, "1969-12-31"),
    ],
)
def test_normalize_date(raw, expected):
    assert normalize_date(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-13-01", "01/03/2024", True, 10**20, [2024]])
def test_normalize_date_rejects(raw):
    with pytest.raises(NormalizeError) as info:
        normalize_date(raw)
    assert str(info.value).startswith(repr(raw))


def test_normalize_date_of_aware_datetime_uses_utc():
    moment = datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert normalize_date(moment) == moment.astimezone(UTC).date().isoformat() == "2023-12-31"


# -- match keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["ACME, Inc.", "Acme Inc", "acme", "  Acme   Inc. ", "ACME LLC", "Acme GmbH", "Ácme Ltd."],
)
def test_company_name_key_ignores_case_punctuation_accents_and_legal_form(spelling):
    assert company_name_key(spelling) == "acme"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A.C.M.E. Corp", "acme"),
        ("Smith & Jones Pty Ltd", "smith jones"),
        ("Smith-Jones", "smith jones"),
        ("The Company", "the"),
        ("Company", "company"),  # a suffix alone is the name
        ("Acme Holdings Inc", "acme holdings"),
        ("Acme Co Inc", "acme"),
        (None, ""),
    ],
)
def test_company_name_key_edge_cases(raw, expected):
    assert company_name_key(raw) == expected


def test_company_name_key_drops_only_one_suffix():
    assert company_name_key("Acme Company Ltd") == "acme company"


def test_match_key():
    assert match_key("email", "bob@example.com") == "bob@example.com"
    assert match_key("domain", "example.com") == "example.com"
    assert match_key("name", "ACME, Inc.") == match_key("name", "acme")
    assert match_key("last_name", "  Müller ") == "müller"
    assert match_key("email", "  ") is None
    assert match_key("name", "Inc") == "inc"
