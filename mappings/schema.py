"""The canonical schema: what a company, a contact and a deal look like inside the hub.

Public entry points: :data:`OBJECT_TYPES`, :data:`DEAL_STAGES`, :data:`MODELS`,
:data:`REFERENCE_FIELDS`, :data:`MULTI_REFERENCE_FIELDS`, the models :class:`Address`,
:class:`Company`, :class:`Contact`, :class:`Deal` (all :class:`CanonicalModel`), and the
functions :func:`canonical_fields`, :func:`is_canonical_field`, :func:`validate_flat`,
:func:`unflatten`, :func:`flatten` and :func:`content_hash`.

The pydantic models validate *and* normalize: every field type is an ``Annotated`` type whose
``BeforeValidator`` calls a normalizer from :mod:`mappings.normalize`, so a model built from
vendor data already holds canonical values. The default phone region arrives through the
validation context, ``{"default_region": "US"}``.

The sync engine works on **flat canonical dicts** instead of models: dotted keys
(``address.country``, ``custom.segment``) and JSON-ready values (str, int, bool, float for
custom fields, sorted ``list[str]`` for multi-references), decimals as plain text (``"1234.5"``)
and dates as ``"YYYY-MM-DD"``. Blank means absent: None, blank text and empty lists never appear
in a flat dict, so ``{}`` and ``{"phone": None}`` are the same record and hash the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, Self

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from mappings.errors import MappingError, NormalizeError, one_line
from mappings.normalize import (
    decimal_str,
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
    to_date,
    to_decimal,
)

__all__ = [
    "DEAL_STAGES",
    "MODELS",
    "MULTI_REFERENCE_FIELDS",
    "OBJECT_TYPES",
    "REFERENCE_FIELDS",
    "Address",
    "CanonicalModel",
    "Company",
    "Contact",
    "CustomValue",
    "Deal",
    "canonical_fields",
    "content_hash",
    "flatten",
    "is_canonical_field",
    "normalized_by",
    "unflatten",
    "validate_flat",
]

OBJECT_TYPES: Final = ("companies", "contacts", "deals")
"""Object types in dependency order: a contact refers to a company, a deal to both."""

DEAL_STAGES: Final = (
    "prospecting",
    "qualification",
    "needs_analysis",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
"""The recommended stage vocabulary. Stages are free text so users can add their pipelines'."""

REFERENCE_FIELDS: Final[Mapping[str, Mapping[str, str]]] = {
    "contacts": {"company": "companies"},
    "deals": {"company": "companies", "contacts": "contacts"},
}
"""Per object type, each reference field and the object type it points at."""

MULTI_REFERENCE_FIELDS: Final = frozenset({("deals", "contacts")})
"""(object type, field) pairs whose value is a list of references rather than one."""

CustomValue = str | int | float | bool
"""What a custom field may hold: a scalar a user maps from one vendor field."""

_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


# ---------------------------------------------------------------------------------------------
# field types: each normalizes in a BeforeValidator, so the model holds canonical values


@dataclass(frozen=True, slots=True)
class _Flat:
    """Annotated metadata: the normalizer giving a field's value in a *flat* dict.

    It is the BeforeValidator's function, or its flat-dict twin where the model holds a richer
    type (``to_decimal`` gives a Decimal for the model, ``normalize_decimal`` its text for the
    flat dict). ``regional`` normalizers take the default phone region as a second argument.
    """

    normalize: Callable[..., Any]
    regional: bool = False


def _phone(v: object, info: ValidationInfo) -> str | None:
    ctx = info.context
    return normalize_phone(v, ctx.get("default_region", "US") if ctx else "US")


def _required_text(v: object) -> str:
    s = normalize_text(v)
    if s is None:
        raise NormalizeError(v, "is required")
    return s


def _count(v: object) -> int | None:
    n = normalize_int(v)
    if n is not None and n < 0:
        raise NormalizeError(v, "must be zero or more")
    return n


def _ref_list(v: object) -> list[str]:
    if v is None:
        return []
    items = v if isinstance(v, list | tuple | set | frozenset) else [v]
    return sorted({s for s in map(normalize_text, items) if s is not None})


def _custom_value(v: object) -> CustomValue | None:
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, str):
        return normalize_text(v)
    if isinstance(v, float | Decimal):
        d = to_decimal(v)
        if d is None:
            return None
        # One vendor stores 3, another 3.0: the same number must hash the same.
        return int(d) if d == d.to_integral_value() else float(d)
    if isinstance(v, date):
        return v.isoformat()
    raise NormalizeError(
        v, f"is a {type(v).__name__}; custom fields hold text, numbers or booleans"
    )


def _custom_key(v: object) -> str:
    if not isinstance(v, str) or _CUSTOM_KEY.fullmatch(v) is None:
        raise NormalizeError(v, "is not a custom field name (letters, digits, _; max 64)")
    return v


def _custom_dict(v: object) -> object:
    return {} if v is None else v


Text = Annotated[str | None, BeforeValidator(normalize_text), _Flat(normalize_text)]
MultilineText = Annotated[
    str | None, BeforeValidator(normalize_multiline), _Flat(normalize_multiline)
]
RequiredText = Annotated[str, BeforeValidator(_required_text), _Flat(_required_text)]
Email = Annotated[str | None, BeforeValidator(normalize_email), _Flat(normalize_email)]
Phone = Annotated[str | None, BeforeValidator(_phone), _Flat(normalize_phone, regional=True)]
Domain = Annotated[str | None, BeforeValidator(normalize_domain), _Flat(normalize_domain)]
Website = Annotated[str | None, BeforeValidator(normalize_website), _Flat(normalize_website)]
Country = Annotated[str | None, BeforeValidator(normalize_country), _Flat(normalize_country)]
Currency = Annotated[str | None, BeforeValidator(normalize_currency), _Flat(normalize_currency)]
Money = Annotated[Decimal | None, BeforeValidator(to_decimal), _Flat(normalize_decimal)]
Day = Annotated[date | None, BeforeValidator(to_date), _Flat(normalize_date)]
Count = Annotated[int | None, BeforeValidator(_count), _Flat(_count)]
Ref = Annotated[str | None, BeforeValidator(normalize_text), _Flat(normalize_text)]
RefList = Annotated[list[str], BeforeValidator(_ref_list), _Flat(_ref_list)]
CustomKey = Annotated[str, BeforeValidator(_custom_key)]
Custom = Annotated[
    dict[CustomKey, Annotated[CustomValue | None, BeforeValidator(_custom_value)]],
    BeforeValidator(_custom_dict),
]

RecordRule = Callable[[Mapping[str, Any]], str | None]
"""A check across fields: given the normalized values, a problem description or None."""


def _contact_is_identifiable(values: Mapping[str, Any]) -> str | None:
    if (
        values.get("first_name") is None
        and values.get("last_name") is None
        and (values.get("email") is None)
    ):
        # Nobody, human or matcher, can tell such a record apart from any other.
        return "a contact needs at least one of first_name, last_name or email"
    return None


class CanonicalModel(BaseModel):
    """Base of the canonical models: frozen, no unknown fields, cross-field ``record_rules``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_rules: ClassVar[tuple[RecordRule, ...]] = ()
    """Cross-field checks, run by the model and by :func:`validate_flat` alike."""

    @model_validator(mode="after")
    def _check_record_rules(self) -> Self:
        for rule in self.record_rules:
            problem = rule(self.__dict__)
            if problem:
                raise ValueError(problem)
        return self


class Address(CanonicalModel):
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    street: MultilineText = None
    city: Text = None
    region: Text = None
    postal_code: Text = None
    country: Country = None


class Company(CanonicalModel):
    """A company (account, organization). Matched across systems by domain, then name."""

    name: RequiredText
    domain: Domain = None
    website: Website = None
    phone: Phone = None
    industry: Text = None
    employees: Count = None
    annual_revenue: Money = None
    address: Address | None = None
    description: Text = None
    custom: Custom = Field(default_factory=dict)


class Contact(CanonicalModel):
    """A person. ``company`` is a reference (an opaque id); matched across systems by email.

    At least one of first_name, last_name and email must be present.
    """

    record_rules = (_contact_is_identifiable,)

    first_name: Text = None
    last_name: Text = None
    email: Email = None
    phone: Phone = None
    mobile: Phone = None
    job_title: Text = None
    company: Ref = None
    address: Address | None = None
    custom: Custom = Field(default_factory=dict)


class Deal(CanonicalModel):
    """An opportunity. ``company`` and ``contacts`` are references; ``contacts`` is sorted."""

    name: RequiredText
    amount: Money = None
    currency: Currency = None
    stage: Text = None
    close_date: Day = None
    pipeline: Text = None
    company: Ref = None
    contacts: RefList = Field(default_factory=list)
    custom: Custom = Field(default_factory=dict)


MODELS: Final[Mapping[str, type[CanonicalModel]]] = {
    "companies": Company,
    "contacts": Contact,
    "deals": Deal,
}


# ---------------------------------------------------------------------------------------------
# the flat plan: per object type, each dotted field and its normalizer, read off the models


def _flat_plan(model: type[BaseModel]) -> dict[str, _Flat]:
    # A nested model (Address) contributes its fields under its name; it has no record rules,
    # which the flat path would not run.
    plan: dict[str, _Flat] = {}
    for name, info in model.model_fields.items():
        if name == "custom":
            continue
        rule = next((m for m in info.metadata if isinstance(m, _Flat)), None)
        if rule is not None:
            plan[name] = rule
            continue
        inner = next(
            a
            for a in getattr(info.annotation, "__args__", (info.annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        )
        for sub, sub_rule in _flat_plan(inner).items():
            plan[f"{name}.{sub}"] = sub_rule
    return plan


_PLANS: Final = {ot: _flat_plan(model) for ot, model in MODELS.items()}
_REQUIRED: Final = {
    ot: tuple(name for name, info in model.model_fields.items() if info.is_required())
    for ot, model in MODELS.items()
}
_FIXED: Final = {ot: frozenset(plan) for ot, plan in _PLANS.items()}
_TOP: Final = {ot: frozenset(k for k in plan if "." not in k) for ot, plan in _PLANS.items()}
_NESTED: Final = {
    ot: {
        head: frozenset(k.partition(".")[2] for k in plan if k.startswith(head + "."))
        for head in {k.partition(".")[0] for k in plan if "." in k}
    }
    for ot, plan in _PLANS.items()
}


def _unknown_type(object_type: str) -> MappingError:
    return MappingError(
        object_type, None, None, f"is not an object type (expected one of {OBJECT_TYPES})"
    )


def _check_type(object_type: str) -> None:
    if object_type not in MODELS:
        raise _unknown_type(object_type)


def canonical_fields(object_type: str) -> frozenset[str]:
    """Every fixed canonical field of an object type, dotted (``address.city``); no custom ones."""
    _check_type(object_type)
    return _FIXED[object_type]


def is_canonical_field(object_type: str, name: str) -> bool:
    """Whether ``name`` is a fixed field of the object type or a ``custom.<identifier>`` field."""
    fixed = _FIXED.get(object_type)
    if fixed is None:
        return False
    if name in fixed:
        return True
    return name.startswith("custom.") and _CUSTOM_KEY.fullmatch(name, 7) is not None


def normalized_by(object_type: str, name: str, normalize: Callable[[Any], Any]) -> bool:
    """Whether a value ``normalize`` gave for this field is already what :func:`validate_flat`
    makes of it: its own normalizer is that very function (normalizers are idempotent), or
    needs no more than it. A field map reading text with ``normalize_text`` passes such fields
    as ``normalized`` and spares a second call per field and record."""
    rule = _PLANS.get(object_type, {}).get(name)
    if rule is None:
        # A custom field's text goes through normalize_text alone (see _custom_value).
        return normalize is normalize_text and is_canonical_field(object_type, name)
    if rule.regional:
        return False
    # _required_text is normalize_text plus a check that a present value passes by definition.
    return rule.normalize is normalize or (
        rule.normalize is _required_text and normalize is normalize_text
    )


# ---------------------------------------------------------------------------------------------
# validation


def validate_flat(
    object_type: str,
    flat: Mapping[str, Any],
    *,
    default_region: str | None = "US",
    normalized: Collection[str] = (),
) -> dict[str, Any]:
    """Validate and normalize a flat canonical dict; return the canonical flat dict.

    Equivalent to validating ``unflatten(flat)`` with the object type's model and flattening
    the result, but it skips building model objects: the engine calls it on every record, and
    each field runs the very normalizer the model's annotation names. Raises
    :class:`mappings.errors.MappingError` naming the first bad field, its value and why, and
    counting the record's other problems.

    ``normalized`` names fields whose values are known to be canonical already (see
    :func:`normalized_by`): taken as they are, without running their normalizer again.
    """
    plan = _PLANS.get(object_type)
    if plan is None:
        raise _unknown_type(object_type)
    out: dict[str, Any] = {}
    problems: list[tuple[str | None, object, str]] = []
    result: Any
    for key, value in flat.items():
        if key in normalized:
            out[key] = value
            continue
        rule = plan.get(key)
        try:
            if rule is None:
                if not key.startswith("custom.") or _CUSTOM_KEY.fullmatch(key, 7) is None:
                    raise NormalizeError(value, f"is not a canonical field of {object_type}")
                result = _custom_value(value)
            elif rule.regional:
                result = rule.normalize(value, default_region)
            else:
                result = rule.normalize(value)
        except ValueError as exc:
            problems.append(_problem(key, value, exc))
            continue
        if result is None or (result.__class__ is list and not result):
            continue
        out[key] = result
    for name in _REQUIRED[object_type]:
        if name not in out and name not in flat:
            problems.append((name, None, "is required"))
    if not problems:
        for record_rule in MODELS[object_type].record_rules:
            problem = record_rule(out)
            if problem:
                problems.append((None, None, problem))
    if problems:
        field, value, reason = problems[0]
        raise MappingError(object_type, field, value, reason, more=len(problems) - 1)
    return out


def _problem(key: str, value: object, exc: ValueError) -> tuple[str, object, str]:
    if isinstance(exc, NormalizeError):
        return key, exc.value, exc.reason
    return key, value, f"is not valid ({one_line(str(exc))})"


# ---------------------------------------------------------------------------------------------
# models <-> flat dicts


def unflatten(object_type: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested dict a model validates, from a flat one; unknown field names raise.

    ``MODELS[ot].model_validate(unflatten(ot, flat), context={"default_region": "US"})`` gives
    the model of a flat record.
    """
    _check_type(object_type)
    top = _TOP[object_type]
    subs = _NESTED[object_type]
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if key in top:
            nested[key] = value
            continue
        head, dot, tail = key.partition(".")
        if dot and (
            tail in subs.get(head, ())
            or (head == "custom" and _CUSTOM_KEY.fullmatch(tail) is not None)
        ):
            inner = nested.get(head)
            if inner is None:
                inner = nested[head] = {}
            inner[tail] = value
        else:
            raise MappingError(
                object_type, key, value, f"is not a canonical field of {object_type}"
            )
    return nested


def flatten(model: BaseModel) -> dict[str, Any]:
    """The flat canonical dict of a validated model: dotted keys, JSON-ready, blanks dropped."""
    out: dict[str, Any] = {}
    for name, value in model.__dict__.items():
        if value is None:
            continue
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float:
            out[name] = value
        elif kind is Decimal:
            out[name] = decimal_str(value)
        elif kind is date:
            out[name] = value.isoformat()
        elif kind is list:
            if value:
                out[name] = list(value)
        elif kind is dict:
            for key, item in value.items():
                if item is not None:
                    out[f"{name}.{key}"] = item
        elif isinstance(value, BaseModel):
            for key, item in flatten(value).items():
                out[f"{name}.{key}"] = item
        else:  # pragma: no cover - every field type is listed above
            raise TypeError(f"cannot flatten {name}={value!r}")
    return out


# ---------------------------------------------------------------------------------------------
# content hash


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot hash a {type(value).__name__}: {value!r}")


# Built once: json.dumps with options builds a new encoder per call, a third of the hash's cost.
_encode_json = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
).encode


def content_hash(flat: Mapping[str, Any]) -> str:
    """A stable 128-bit hex digest of a flat canonical record.

    Key order, blank values (None, ``""``, ``[]``) and the order of list values do not change
    it; any change of a value does, including its type (``1`` is not ``"1"``). Values are
    hashed as given, so hash normalized records (what :func:`validate_flat` returns): there,
    equal records are equal dicts. Stable across processes and Python versions: it hashes
    sorted, compact JSON with BLAKE2b.
    """
    values = flat.values()
    types = set(map(type, values))
    # C-speed scans: a normalized record has no blanks and only sorted lists, so the common
    # case hashes the dict as it is. Only text, ints and bools (no None, no list, no float)
    # is the commonest of all: then an empty text is the one blank left to look for.
    if types <= _TEXT_TYPES and "" not in values:
        plain = True
    else:
        plain = False
        if None in values or "" in values or [] in values or not _PLAIN_TYPES.issuperset(types):
            flat = _hashable(flat)
    try:
        # orjson writes the very bytes of the compact, sorted json encoding for strings, ints,
        # bools and lists of them (test_schema checks it), at a tenth of the cost; floats
        # (whose text differs), ints past 64 bits and lone surrogates take the json path.
        if not plain and float in map(type, flat.values()):
            raise TypeError("floats are written by json")
        data = orjson.dumps(flat, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = _encode_json(flat).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_PLAIN_TYPES: Final = frozenset({str, int, bool, float})
_TEXT_TYPES: Final = frozenset({str, int, bool})


def _hashable(flat: Mapping[str, Any]) -> dict[str, Any]:
    items: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list | tuple):
            value = sorted(value, key=_sort_key)
        items[key] = value
    return items


def _sort_key(value: object) -> tuple[str, str]:
    # Lists hold ids (text), but a stray int must not make sorted() fail on mixed types.
    return type(value).__name__, str(value)
