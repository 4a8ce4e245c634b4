"""Realistic, reproducible CRM data for the sandboxes, the demo and the benchmarks.

Public entry points: :func:`sample_account`, :class:`SampleAccount`, :class:`SampleCompany`,
:class:`SampleContact`, :class:`SampleDeal`.

Every record is a pure function of ``(seed, index)`` in one endless "universe" of companies,
people and deals, so two sandboxes seeded with overlapping index ranges hold the same real-world
people: ``sample_account(1000, start=0)`` and ``sample_account(1000, start=800)`` share 200
contacts (with their companies and deals). Each vendor emulator lays the neutral values out in its
own field names and formats (phone styles, stage codes), which is what makes matching non-trivial.

Shapes are fixed per contact: one company per ten contacts, one deal per five contacts, so a
sandbox seeded with N contacts holds N/10 companies and N/5 deals.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import phonenumbers

__all__ = [
    "CONTACTS_PER_COMPANY",
    "CONTACTS_PER_DEAL",
    "COUNTRY_NAMES",
    "SampleAccount",
    "SampleCompany",
    "SampleContact",
    "SampleDeal",
    "sample_account",
]

CONTACTS_PER_COMPANY = 10
CONTACTS_PER_DEAL = 5

_FIRST = (
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Anders",
    "Aya",
    "Beatriz",
    "Bilal",
    "Bo",
    "Carmen",
    "Chen",
    "Chloe",
    "Dario",
    "Deepa",
    "Diego",
    "Elif",
    "Emma",
    "Erik",
    "Fatima",
    "Femi",
    "Freya",
    "Giulia",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jamal",
    "Jana",
    "Jonas",
    "Julia",
    "Kai",
    "Karin",
    "Kofi",
    "Lars",
    "Layla",
    "Leon",
    "Lina",
    "Luca",
    "Maja",
    "Malik",
    "Maria",
    "Mateo",
    "Mei",
    "Mila",
    "Nadia",
    "Niko",
    "Noor",
    "Olga",
    "Omar",
    "Pablo",
    "Priya",
    "Rafael",
    "Rosa",
    "Sami",
    "Sara",
    "Sven",
    "Tariq",
    "Tess",
    "Tomas",
    "Una",
    "Vera",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
)
_LAST = (
    "Abe",
    "Adeyemi",
    "Almeida",
    "Andersen",
    "Bauer",
    "Becker",
    "Berg",
    "Brown",
    "Castro",
    "Chen",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Gomez",
    "Hansen",
    "Haddad",
    "Ito",
    "Jansen",
    "Jovanovic",
    "Kaur",
    "Khan",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Müller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Park",
    "Patel",
    "Perez",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Taylor",
    "Wagner",
    "Weber",
    "Wong",
    "Yilmaz",
    "Zhang",
    "Van Dijk",
)
_WORDS = (
    "Acme",
    "Apex",
    "Arbor",
    "Atlas",
    "Aurora",
    "Beacon",
    "Birch",
    "Blue",
    "Bright",
    "Cascade",
    "Cedar",
    "Cobalt",
    "Compass",
    "Crest",
    "Delta",
    "Ember",
    "Evergreen",
    "Falcon",
    "Fjord",
    "Granite",
    "Harbor",
    "Helix",
    "Horizon",
    "Iris",
    "Juniper",
    "Keystone",
    "Lumen",
    "Maple",
    "Meridian",
    "Nimbus",
    "Northwind",
    "Nova",
    "Oak",
    "Orbit",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Sable",
    "Silver",
    "Summit",
    "Terra",
    "Tidal",
    "Vertex",
    "Willow",
    "Zenith",
)
_KINDS = (
    ("Analytics", "Software"),
    ("Logistics", "Transportation"),
    ("Foods", "Food & Beverages"),
    ("Health", "Hospital & Health Care"),
    ("Energy", "Renewables & Environment"),
    ("Labs", "Biotechnology"),
    ("Capital", "Financial Services"),
    ("Studio", "Design"),
    ("Robotics", "Machinery"),
    ("Retail", "Retail"),
)
_SUFFIXES = ("Inc.", "GmbH", "Ltd", "LLC", "S.A.", "B.V.", "AB", "Co.")
# (country, city, calling code, area code, digits of the national number)
_PLACES = (
    ("US", "Boston", "1", "617", 10),
    ("US", "Austin", "1", "512", 10),
    ("US", "Seattle", "1", "206", 10),
    ("GB", "London", "44", "20", 10),
    ("DE", "Berlin", "49", "30", 10),
    ("FR", "Paris", "33", "1", 9),
    ("NL", "Amsterdam", "31", "20", 9),
    ("ES", "Madrid", "34", "91", 9),
    ("SE", "Stockholm", "46", "8", 9),
    ("JP", "Tokyo", "81", "3", 9),
    ("BR", "São Paulo", "55", "11", 10),
    ("IN", "Bengaluru", "91", "80", 10),
)
# How people write the countries of _PLACES in a CRM's free-text country field.
COUNTRY_NAMES: dict[str, str] = {
    "US": "United States",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "ES": "Spain",
    "SE": "Sweden",
    "JP": "Japan",
    "BR": "Brazil",
    "IN": "India",
}
_TITLES = (
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Executive",
    "Operations Manager",
    "Procurement Lead",
    "Software Engineer",
    "Marketing Director",
    "CFO",
    None,
)
_STAGES = (
    "prospecting",
    "qualification",
    "needs_analysis",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
_DEAL_KINDS = ("Annual licence", "Pilot", "Expansion", "Renewal", "Support plan", "Onboarding")
_CURRENCIES = ("USD", "USD", "USD", "EUR", "EUR", "GBP")


@dataclass(frozen=True, slots=True)
class SampleCompany:
    key: int
    name: str
    domain: str
    website: str
    phone: str  # E.164
    industry: str
    employees: int
    annual_revenue: Decimal
    city: str
    country: str  # ISO-3166 alpha-2


@dataclass(frozen=True, slots=True)
class SampleContact:
    key: int
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164
    mobile: str | None
    job_title: str | None
    company_key: int
    city: str
    country: str


@dataclass(frozen=True, slots=True)
class SampleDeal:
    key: int
    name: str
    amount: Decimal
    currency: str
    stage: str  # canonical stage
    close_date: date
    company_key: int
    contact_keys: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SampleAccount:
    companies: list[SampleCompany]
    contacts: list[SampleContact]
    deals: list[SampleDeal]

    def stamps(self, now: datetime) -> Iterator[datetime]:
        """A modified time per record (companies, contacts, deals, in seeding order), a second
        apart and the last a second before ``now``, so incremental reads tell them apart."""
        total = len(self.companies) + len(self.contacts) + len(self.deals)
        start = now - timedelta(seconds=total)
        return (start + timedelta(seconds=n) for n in range(total))


def _rng(seed: int, kind: str, key: int) -> random.Random:
    # A string seed is hashed deterministically (unlike hash()), so runs agree across processes.
    return random.Random(f"{seed}:{kind}:{key}")  # noqa: S311 - sample data, not secrets


def _phone(rng: random.Random, place: tuple[str, str, str, str, int]) -> str:
    _country, _city, calling_code, area, digits = place
    if calling_code == "1":
        # 555-0100 to 555-0199 is the North American range reserved for fiction.
        return f"+1{area}55501{rng.randint(0, 99):02d}"
    # London numbers start 3, 7 or 8 after the area code; elsewhere 2 to 5 are assigned.
    rest = rng.choice("378" if calling_code == "44" else "2345") + "".join(
        str(rng.randint(0, 9)) for _ in range(digits - len(area) - 1)
    )
    return f"+{calling_code}{area}{rest}"


@lru_cache(maxsize=1024)
def company(seed: int, key: int) -> SampleCompany:
    rng = _rng(seed, "company", key)
    word = _WORDS[key % len(_WORDS)]
    suffix_word, industry = _KINDS[(key // len(_WORDS)) % len(_KINDS)]
    generation = key // (len(_WORDS) * len(_KINDS))
    base = f"{word} {suffix_word}" + (f" {generation + 1}" if generation else "")
    slug = base.lower().replace(" ", "")
    place = _PLACES[rng.randrange(len(_PLACES))]
    employees = rng.choice((5, 12, 40, 85, 150, 400, 1200, 5000))
    return SampleCompany(
        key=key,
        name=f"{base} {rng.choice(_SUFFIXES)}",
        domain=f"{slug}.example",
        website=f"https://www.{slug}.example",
        phone=_phone(rng, place),
        industry=industry,
        employees=employees,
        annual_revenue=Decimal(employees * rng.randint(80, 250) * 1000),
        city=place[1],
        country=place[0],
    )


def contact(seed: int, key: int) -> SampleContact:
    rng = _rng(seed, "contact", key)
    first = rng.choice(_FIRST)
    last = rng.choice(_LAST)
    owner = company(seed, key // CONTACTS_PER_COMPANY)
    place = next(p for p in _PLACES if (p[0], p[1]) == (owner.country, owner.city))
    local = f"{first}.{last}".lower().replace(" ", "").replace("ü", "ue")
    return SampleContact(
        key=key,
        first_name=first,
        last_name=last,
        email=f"{local}.{key}@{owner.domain}",
        phone=_phone(rng, place),
        mobile=_phone(rng, place) if rng.random() < 0.4 else None,
        job_title=rng.choice(_TITLES),
        company_key=owner.key,
        city=place[1],
        country=place[0],
    )


def deal(seed: int, key: int) -> SampleDeal:
    rng = _rng(seed, "deal", key)
    first_contact = key * CONTACTS_PER_DEAL
    owner = first_contact // CONTACTS_PER_COMPANY
    contacts = (first_contact,) if rng.random() < 0.7 else (first_contact, first_contact + 1)
    return SampleDeal(
        key=key,
        name=f"{company(seed, owner).name.split(' ')[0]} — {rng.choice(_DEAL_KINDS)} #{key}",
        amount=Decimal(rng.randrange(10, 500) * 100),
        currency=rng.choice(_CURRENCIES),
        stage=rng.choice(_STAGES),
        close_date=date(2026, 1, 1) + timedelta(days=rng.randrange(0, 540)),
        company_key=owner,
        contact_keys=contacts,
    )


def sample_account(contacts: int, seed: int = 0, *, start: int = 0) -> SampleAccount:
    """``contacts`` people from universe index ``start`` on, with their companies and deals."""
    if contacts < 0 or start < 0:
        raise ValueError("contacts and start must be 0 or more")
    people = [contact(seed, key) for key in range(start, start + contacts)]
    company_keys = range(
        start // CONTACTS_PER_COMPANY, -(-(start + contacts) // CONTACTS_PER_COMPANY)
    )
    deal_keys = range(-(-start // CONTACTS_PER_DEAL), -(-(start + contacts) // CONTACTS_PER_DEAL))
    return SampleAccount(
        companies=[company(seed, key) for key in company_keys],
        contacts=people,
        deals=[
            d
            for d in (deal(seed, key) for key in deal_keys)
            if d.contact_keys[-1] < start + contacts
        ],
    )


def typed_phone(e164: str, rng: random.Random) -> str:
    """A phone number as people type it into a CRM: as E.164, spaced, dashed or dotted, and for
    North American numbers also in national format. Never nationally for other countries: a
    number without its country code would be read with the account's default region."""
    number = phonenumbers.parse(e164)
    spaced = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    styles = [e164, spaced, spaced.replace(" ", "-"), spaced.replace(" ", ".")]
    if number.country_code == 1:
        styles.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    return rng.choice(styles)


def typed_country(code: str, rng: random.Random, *, named: float = 0.8) -> str:
    """A country as people type it: its English name most of the time, else its ISO code."""
    return COUNTRY_NAMES.get(code, code) if rng.random() < named else code
