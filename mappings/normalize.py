"""Normalizers: one canonical spelling for each kind of value CRMs disagree about.

Public entry points: :func:`normalize_text`, :func:`normalize_multiline`, :func:`normalize_email`,
:func:`normalize_phone`, :func:`normalize_domain`, :func:`normalize_website`,
:func:`normalize_country`, :func:`normalize_currency`, :func:`normalize_decimal`,
:func:`normalize_int`, :func:`to_decimal`, :func:`decimal_str`, :func:`normalize_date`,
:func:`to_date`, :func:`company_name_key` and :func:`match_key`.

Every normalizer is a pure function: ``None`` and blank strings give ``None`` (blank means
absent everywhere in crmhub), a canonical value comes back unchanged (normalizing twice is the
same as once, which the round trip through a vendor relies on), and a value that cannot be made
canonical raises :class:`mappings.errors.NormalizeError` (a ``ValueError``) whose message quotes
the value and says why.

The sync engine runs these on every field of every record it reads, so the slow library calls
(email-validator, phonenumbers, pycountry, idna) sit behind bounded caches, and the common
all-ASCII email and domain shapes take a regular-expression fast path that accepts exactly what
the library would accept unchanged.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from ipaddress import ip_address
from urllib.parse import urlsplit, urlunsplit

import email_validator
import idna
import phonenumbers
import pycountry

from mappings.errors import NormalizeError, one_reason

__all__ = [
    "company_name_key",
    "decimal_str",
    "match_key",
    "normalize_country",
    "normalize_currency",
    "normalize_date",
    "normalize_decimal",
    "normalize_domain",
    "normalize_email",
    "normalize_int",
    "normalize_multiline",
    "normalize_phone",
    "normalize_text",
    "normalize_website",
    "to_date",
    "to_decimal",
]

# Large enough to hold every distinct value of a big account between two runs; each entry is a
# few hundred bytes, so the largest cache stays in the tens of megabytes.
_CACHE_SIZE = 1 << 14

# ---------------------------------------------------------------------------------------------
# text


def normalize_text(v: object) -> str | None:
    """Text as stored: ``str(v)`` stripped, line endings as ``\\n``, Unicode in NFC; blank → None.

    Numbers become their decimal text (an integral float ``12.0`` gives ``"12"``, as spreadsheet
    exports write ids and phone numbers as floats). Lists, dicts and bytes raise, since their
    ``str()`` would be stored as garbage.
    """
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip()
    elif isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, float) and v.is_integer():
        s = str(int(v))
    elif isinstance(v, list | tuple | set | frozenset | dict | bytes | bytearray):
        raise NormalizeError(v, f"is a {type(v).__name__}, not a single value")
    else:
        s = str(v).strip()
    if not s:
        return None
    if "\r" in s:
        s = s.replace("\r\n", "\n").replace("\r", "\n")
    if not s.isascii():
        # Vendors differ in Unicode composition ("é" as one code point or two); without NFC
        # the same name would hash differently on each side and sync back and forth.
        s = unicodedata.normalize("NFC", s)
    return s


def normalize_multiline(v: object) -> str | None:
    """Multi-line text such as a street: each line stripped, empty lines dropped, ``\\n`` joined.

    A list or tuple of lines is joined the same way.
    """
    if isinstance(v, list | tuple):
        parts = [normalize_text(item) for item in v]
        s = "\n".join(p for p in parts if p)
    else:
        s = normalize_text(v) or ""
    if "\n" in s:
        s = "\n".join(line for line in (part.strip() for part in s.split("\n")) if line)
    return s or None


# ---------------------------------------------------------------------------------------------
# email

_ATEXT = r"[a-z0-9_!#$%&'*+\-/=?^`{|}~]"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z0-9][a-z0-9-]{0,61})?[a-z]"
# Lower-case ASCII dot-atom local part and a hostname whose TLD ends with a letter: for these
# email-validator returns the input unchanged, so the ~25 µs library call can be skipped.
_EMAIL_FAST = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+{_TLD}")
# Reserved names (.test, .local...) fail email-validator; they take the slow path to get its
# message. Read once: a test suite that edits email-validator's list must do so before import.
_SPECIAL_USE_SUFFIXES = tuple("." + d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)


def normalize_email(v: object) -> str | None:
    """An email address trimmed and lower-cased, its syntax checked by email-validator.

    Deliverability is not checked (no DNS). Invalid syntax raises NormalizeError quoting the
    value and email-validator's reason. The whole address is lower-cased: mailbox names are
    case-sensitive in theory, but no CRM treats them so, and matching needs one spelling.
    """
    s = normalize_text(v)
    if s is None:
        return None
    low = s.lower()
    if (
        len(low) <= 254
        and _EMAIL_FAST.fullmatch(low) is not None
        and "--" not in low[low.index("@") :]
        and not low.endswith(_SPECIAL_USE_SUFFIXES)
    ):
        return low
    normalized, reason = _validate_email(low)
    if normalized is None:
        raise NormalizeError(s, f"is not a valid email address: {reason}")
    return normalized


@lru_cache(maxsize=_CACHE_SIZE)
def _validate_email(s: str) -> tuple[str | None, str]:
    try:
        result = email_validator.validate_email(s, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        return None, str(exc)
    return result.normalized.lower(), ""


# ---------------------------------------------------------------------------------------------
# phone


def normalize_phone(v: object, default_region: str | None = "US") -> str | None:
    """A phone number in E.164 (``+14155550100``), with ``;ext=12`` when it has an extension.

    ``default_region`` (ISO alpha-2) reads numbers written without a country code. A value that
    does not parse as a possible number is kept as trimmed text rather than rejected: CRMs hold
    "ask reception" and half-typed numbers, and losing them would be worse. Never raises.
    """
    s = normalize_text(v)
    if s is None:
        return None
    return _phone(s, default_region.upper() if default_region else None)


# North American numbers fill many CRMs, and for them phonenumbers' answer follows from the
# digits alone: "+1" and ten digits whose area code and exchange start with 2-9 (a national "1"
# in front is dropped). Computing it here skips a 10-25 µs parse; test_normalize checks the
# shortcut against phonenumbers itself.
_NANP_TEXT = re.compile(r"\+?[0-9 ().\-]+")
_NANP_SEPARATORS = re.compile(r"[ ().\-]+")
_NANP = re.compile(r"(\+?1)?([2-9][0-9][0-9][2-9][0-9]{6})")
_NANP_REGIONS = frozenset({"US", "CA"})


@lru_cache(maxsize=_CACHE_SIZE)
def _phone(s: str, region: str | None) -> str:
    if _NANP_TEXT.fullmatch(s) is not None:
        plain = _NANP_SEPARATORS.sub("", s)
        nanp = _NANP.fullmatch(plain)
        # Without "+1" the digits are a national number, whose country the region decides.
        if nanp is not None and (nanp.group(1) == "+1" or region in _NANP_REGIONS):
            return "+1" + nanp.group(2)
        if plain.startswith("+"):
            international = _international(plain)
            if international is not None:
                return international
    e164, number = _phone_once(s, region)
    if number is None:
        return s
    # phonenumbers strips a trunk prefix even after "+<country code>", so when its output still
    # starts with one (from input like "+43 0 0197..."), reading that output again gives a
    # shorter number. Go on to the fixed point, or a value written to a vendor and read back
    # would change on every sync. Rare, so only outputs the prefix rule matches are re-read.
    for _ in range(4):
        prefix = _trunk_prefix(number.country_code)
        national = e164[len(str(number.country_code)) + 1 :]
        if prefix is None or prefix.match(national) is None:
            break
        again, again_number = _phone_once(e164.split(";", 1)[0], region)
        if again_number is None:
            break
        if again_number.extension is None and ";ext=" in e164:
            again += e164[e164.index(";ext=") :]
        if again == e164:
            break
        e164, number = again, again_number
    return e164


def _international(plain: str) -> str | None:
    """E.164 of ``+<digits>`` without phonenumbers' 20-30 µs parse, or None to take it.

    With a country code in front, phonenumbers' answer is "+", the code and the rest as
    written, when the rest is a possible number that starts neither with a zero (Italian and
    other leading zeros) nor with the country's trunk prefix (which it would strip). Anything
    else goes to the full parse. test_normalize checks this against phonenumbers itself.
    """
    digits = plain[1:]
    if not digits.isdigit() or digits[0] == "0":  # no country code starts with 0
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not national or national[0] == "0":
        return None
    prefix = _trunk_prefix(code)
    if prefix is not None and prefix.match(national) is not None:
        return None
    if not _possible_length(code, len(national)):
        return None
    return f"+{code}{national}"


@lru_cache(maxsize=1024)
def _possible_length(code: int, digits: int) -> bool:
    """phonenumbers' is_possible_number for a number of ``digits`` digits (no leading zero)
    after ``+code``: it looks at nothing else, so every number of a shape is asked once."""
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int("1" * digits))
    return bool(phonenumbers.is_possible_number(number))


def _phone_once(s: str, region: str | None) -> tuple[str, phonenumbers.PhoneNumber | None]:
    """phonenumbers' E.164 (with ``;ext=``) and the parsed number; ``(s, None)`` if impossible."""
    try:
        number = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        return s, None
    if not phonenumbers.is_possible_number(number):
        return s, None
    e164 = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if number.extension:
        e164 = f"{e164};ext={number.extension}"
    return e164, number


@lru_cache(maxsize=512)
def _trunk_prefix(country_code: int) -> re.Pattern[str] | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    pattern = getattr(meta, "national_prefix_for_parsing", None)
    return re.compile(pattern) if pattern else None


# ---------------------------------------------------------------------------------------------
# domain and website

_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def normalize_domain(v: object) -> str | None:
    """A company's domain from a bare domain, a URL or an email address.

    Lower-case, without scheme, path, port, user info or a leading ``www.``, and IDNA-encoded
    (``münchen.de`` gives ``xn--mnchen-3ya.de``) so every vendor's spelling compares equal.
    Anything that is not a domain name (an IP address, a word, a label over 63 characters)
    raises NormalizeError.
    """
    s = normalize_text(v)
    if s is None:
        return None
    result, reason = _domain(s)
    if result is None:
        raise NormalizeError(s, reason)
    return result


@lru_cache(maxsize=_CACHE_SIZE)
def _domain(s: str) -> tuple[str | None, str]:
    host = s
    if "://" in host or host.startswith("//"):
        try:
            host = urlsplit(host if "://" in host else "http:" + host).hostname or ""
        except ValueError as exc:
            return None, f"is not a URL or domain name ({exc})"
    else:
        if "@" in host:
            host = host.rsplit("@", 1)[1]
        host = re.split(r"[/?#]", host, maxsplit=1)[0]
        if host.count(":") == 1:
            host = host.split(":", 1)[0]
    host = host.strip().rstrip(".").lower()
    if host.startswith("www."):
        host = host[4:]
    if not host:
        return None, "is not a domain name"
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            return None, f"is not a valid internationalized domain name ({one_reason(exc)})"
    if len(host) > 253 or _HOSTNAME.fullmatch(host) is None:
        return None, "is not a domain name (expected something like example.com)"
    if not host.rsplit(".", 1)[1][-1].isalpha():
        return None, "is not a domain name (its last label must end with a letter)"
    return host, ""


def normalize_website(v: object) -> str | None:
    """A website URL with a scheme (``https://`` added when missing), lower-case scheme and host.

    The path, query and fragment are kept as written, except that a bare ``/`` path is dropped
    (``https://example.com/`` gives ``https://example.com``). Only http and https are accepted,
    and the host must look like a domain name or an IP address; otherwise NormalizeError.
    """
    s = normalize_text(v)
    if s is None:
        return None
    result, reason = _website(s)
    if result is None:
        raise NormalizeError(s, reason)
    return result


@lru_cache(maxsize=_CACHE_SIZE)
def _website(s: str) -> tuple[str | None, str]:
    if any(c.isspace() for c in s):
        return None, "is not a URL (it contains whitespace)"
    url = s if _SCHEME.match(s) else ("https:" + s if s.startswith("//") else "https://" + s)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        return None, f"is not a URL ({one_reason(exc)})"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None, f"is not a website URL (scheme {scheme!r}; expected http or https)"
    host = parts.hostname or ""
    if not _website_host_ok(host):
        return None, "is not a website URL (expected a host such as example.com)"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = userinfo + at + hostport.lower()
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment)), ""


def _website_host_ok(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        pass
    else:
        return True
    labels = host.split(".")
    return len(labels) >= 2 and all(
        label and label[0] != "-" and label[-1] != "-" and label.replace("-", "").isalnum()
        for label in labels
    )


# ---------------------------------------------------------------------------------------------
# country and currency

# Spellings people type that pycountry does not know, keyed by _country_key. Local names are
# limited to the big markets; anything else still resolves through ISO codes and English names.
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "us": "US",
    "us of a": "US",
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "the united states": "US",
    "deutschland": "DE",
    "germany": "DE",
    "russia": "RU",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "korea south": "KR",
    "north korea": "KP",
    "vietnam": "VN",
    "iran": "IR",
    "syria": "SY",
    "laos": "LA",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "macedonia": "MK",
    "czech republic": "CZ",
    "turkey": "TR",
    "holland": "NL",
    "the netherlands": "NL",
    "nederland": "NL",
    "ivory coast": "CI",
    "uae": "AE",
    "emirates": "AE",
    "espana": "ES",
    "brasil": "BR",
    "mexico": "MX",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "osterreich": "AT",
    "italia": "IT",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "polska": "PL",
    "suomi": "FI",
    "nippon": "JP",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "east timor": "TL",
    "vatican": "VA",
    "vatican city": "VA",
    "palestine": "PS",
    "taiwan": "TW",
    "hong kong": "HK",
    "macau": "MO",
    "brunei": "BN",
    "micronesia": "FM",
    "congo kinshasa": "CD",
    "drc": "CD",
    "dr congo": "CD",
    "congo brazzaville": "CG",
    # Kosovo has no ISO 3166 code yet; XK is the code the EU, SWIFT and most CRMs use, and
    # rejecting every Kosovar address would be worse than a user-assigned code.
    "kosovo": "XK",
    "xk": "XK",
    "xkx": "XK",
}

_KEY_DROP = re.compile(r"[.'\u2019]")
_KEY_SPACE = re.compile(r"[^0-9a-z]+")


def _country_key(s: str) -> str:
    folded = unicodedata.normalize("NFKD", s.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _KEY_SPACE.sub(" ", _KEY_DROP.sub("", folded)).strip()


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = str(country.alpha_2)
        index[country.alpha_2.lower()] = code
        index[country.alpha_3.lower()] = code
        index[country.numeric] = code
        for attr in ("name", "official_name", "common_name"):
            name = getattr(country, attr, None)
            if name:
                index.setdefault(_country_key(name), code)
                # pycountry writes "Korea, Republic of"; people write "Republic of Korea".
                head, sep, tail = name.partition(", ")
                if sep:
                    index.setdefault(_country_key(f"{tail} {head}"), code)
    index.update(_COUNTRY_ALIASES)
    return index


def normalize_country(v: object) -> str | None:
    """An ISO 3166-1 alpha-2 code (``DE``) from a code, a number or a name.

    Accepts alpha-2, alpha-3 and numeric codes, English short, official and common names in any
    case and with or without accents or dots, and common aliases (UK, USA, U.S.A., Deutschland,
    Russia, South Korea, Holland...). Anything else raises NormalizeError naming the value.
    """
    s = normalize_text(v)
    if s is None:
        return None
    code = _country(s)
    if code is None:
        raise NormalizeError(s, "is not a country this hub knows (use an ISO 3166 code or name)")
    return code


@lru_cache(maxsize=4096)
def _country(s: str) -> str | None:
    key = _country_key(s)
    if key.isdigit():
        key = key.zfill(3)
    return _country_index().get(key)


def normalize_currency(v: object) -> str | None:
    """An ISO 4217 currency code, upper case (``usd`` gives ``USD``); unknown codes raise."""
    s = normalize_text(v)
    if s is None:
        return None
    code = s.upper()
    if not _is_currency(code):
        raise NormalizeError(s, "is not an ISO 4217 currency code (such as USD or EUR)")
    return code


@lru_cache(maxsize=1024)
def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isalpha() and pycountry.currencies.get(alpha_3=code) is not None


# ---------------------------------------------------------------------------------------------
# numbers

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Beyond these a "number" is garbage or an attempt to make us print a megabyte of zeros.
_MAX_ADJUSTED = 30
_MIN_EXPONENT = -30


def to_decimal(v: object) -> Decimal | None:
    """A finite :class:`~decimal.Decimal` from an int, float, Decimal or numeric string.

    Floats go through ``repr`` (``0.1`` gives ``Decimal("0.1")``, not its binary expansion).
    Strings may carry surrounding spaces and thousands commas when every group has three
    digits (``"1,234.50"``); ``"1,23"`` is rejected rather than guessed at. Booleans, NaN,
    infinities, and values beyond 10^30 or finer than 10^-30 raise NormalizeError.
    """
    if v is None:
        return None
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, bool):
        raise NormalizeError(v, "is a boolean, not a number")
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise NormalizeError(v, "is not a finite number")
        d = Decimal(repr(v))
    elif isinstance(v, str):
        s = v.strip()
        if not s:
            return None
        if _DECIMAL.fullmatch(s):
            d = Decimal(s)
        elif _GROUPED.fullmatch(s):
            d = Decimal(s.replace(",", ""))
        else:
            raise NormalizeError(v, "is not a number")
    else:
        raise NormalizeError(v, f"is a {type(v).__name__}, not a number")
    if not d.is_finite():
        raise NormalizeError(v, "is not a finite number")
    if not d:
        return d
    if d.adjusted() > _MAX_ADJUSTED:
        raise NormalizeError(v, "is out of range (at most 30 digits each side of the point)")
    if int(d.as_tuple().exponent) < _MIN_EXPONENT:
        # Trailing zeros ("1.000...0") do not make a number finer; only real digits count.
        sign, digits, exponent = d.as_tuple()
        n, exp = len(digits), int(exponent)
        while exp < _MIN_EXPONENT and n > 1 and digits[n - 1] == 0:
            n, exp = n - 1, exp + 1
        if exp < _MIN_EXPONENT:
            raise NormalizeError(v, "is out of range (at most 30 digits each side of the point)")
        d = Decimal((sign, digits[:n], exp))
    return d


def normalize_int(v: object) -> int | None:
    """A whole number from an int, an integral float or Decimal, or text such as ``"1,200"``.

    Fractions (``12.5``) and booleans raise NormalizeError rather than being truncated.
    """
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    d = to_decimal(v)
    if d is None:
        return None
    if d != d.to_integral_value():
        raise NormalizeError(v, "is not a whole number")
    return int(d)


def decimal_str(d: Decimal) -> str:
    """The canonical text of a Decimal: plain notation, no trailing zeros, ``"0"`` for zero.

    Done on the text rather than with ``Decimal.normalize`` because that rounds to the context
    precision (28 digits).
    """
    if not d:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def normalize_decimal(v: object) -> str | None:
    """A number as canonical decimal text: ``"1,234.50"`` and ``1234.5`` both give ``"1234.5"``.

    See :func:`to_decimal` for what is accepted.
    """
    d = to_decimal(v)
    return None if d is None else decimal_str(d)


# ---------------------------------------------------------------------------------------------
# dates

_EPOCH = date(1970, 1, 1)
_MS_PER_DAY = 86_400_000
_EPOCH_MS = re.compile(r"-?\d+")


def to_date(v: object) -> date | None:
    """A calendar date from a date, a datetime, an ISO string or epoch milliseconds.

    A datetime, or an ISO datetime string with an offset or ``Z``, gives its UTC date; a naive
    one is taken as UTC. Integers and digit strings are milliseconds since 1970-01-01 UTC,
    except that an 8-digit string is read as a basic ISO date (``"20240115"``), since no one
    means a moment in the first day of 1970. Anything else raises NormalizeError.
    """
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.astimezone(UTC).date() if v.tzinfo is not None else v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, bool):
        raise NormalizeError(v, "is a boolean, not a date")
    if isinstance(v, int | float):
        return _from_epoch_ms(v)
    if not isinstance(v, str):
        raise NormalizeError(v, f"is a {type(v).__name__}, not a date")
    s = v.strip()
    if not s:
        return None
    if _EPOCH_MS.fullmatch(s) and len(s) != 8:
        return _from_epoch_ms(int(s))
    try:
        if len(s) <= 10:
            return date.fromisoformat(s)
        moment = datetime.fromisoformat(s)
    except ValueError:
        raise NormalizeError(v, "is not a date (expected YYYY-MM-DD or an ISO datetime)") from None
    return moment.astimezone(UTC).date() if moment.tzinfo is not None else moment.date()


def _from_epoch_ms(ms: float) -> date:
    if not math.isfinite(ms):
        raise NormalizeError(ms, "is not a finite number of milliseconds")
    try:
        return _EPOCH + timedelta(days=math.floor(ms) // _MS_PER_DAY)
    except OverflowError:
        raise NormalizeError(ms, "is out of range for epoch milliseconds") from None


def normalize_date(v: object) -> str | None:
    """A calendar date as ``"YYYY-MM-DD"``; see :func:`to_date` for what is accepted."""
    d = to_date(v)
    return None if d is None else d.isoformat()


# ---------------------------------------------------------------------------------------------
# match keys

_LEGAL_SUFFIXES = frozenset(
    {"inc", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "plc"}
    | {"corp", "corporation", "co", "company", "pty"}
)
# Two-word suffixes count as one, or "Acme Pty Ltd" would keep "pty" and miss "Acme".
_LEGAL_PAIRS = frozenset({("pty", "ltd"), ("co", "ltd"), ("pvt", "ltd"), ("co", "inc")})
_NAME_DROP = re.compile(r"[.'\u2019`]")
_NAME_SPACE = re.compile(r"[\W_]+")


def company_name_key(v: object) -> str:
    """The key on which company names match: ``"ACME, Inc."``, ``"Acme Inc"`` and ``"acme"``.

    Case-folded, accents and punctuation stripped (dots and apostrophes vanish, so ``A.C.M.E.``
    is ``acme``; other punctuation separates words), whitespace collapsed, and one trailing
    legal-form suffix (inc, llc, ltd, gmbh, sa, bv, plc, corp, co, pty ltd...) dropped when a
    name remains. Blank gives ``""``.
    """
    s = normalize_text(v)
    if s is None:
        return ""
    folded = unicodedata.normalize("NFKD", s.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = _NAME_SPACE.sub(" ", _NAME_DROP.sub("", folded)).split()
    if len(words) > 2 and (words[-2], words[-1]) in _LEGAL_PAIRS:
        words = words[:-2]
    elif len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words = words[:-1]
    return " ".join(words)


def match_key(field: str, value: object) -> str | None:
    """The key that matches records across systems on a canonical field; None when blank.

    ``name`` (a company name) goes through :func:`company_name_key`; every other field compares
    as case-folded, stripped text, which leaves an already-normalized email or domain as is.
    """
    if field == "name":
        return company_name_key(value) or None
    s = normalize_text(value)
    return None if s is None else s.casefold()
