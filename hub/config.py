"""Loads and validates crmhub's YAML configuration file.

Public entry points: :func:`load_config` (find, read and validate a file),
:func:`parse_config` (validate YAML text), :func:`find_config_path` (``--config``, then
``CRMHUB_CONFIG``, then ``./crmhub.yaml``), the frozen models :class:`Config`,
:class:`SystemConfig`, :class:`SyncConfig`, :class:`ConflictPolicy`, :class:`Schedule` and
:class:`DashboardConfig`,
:data:`DEFAULT_MATCH`, :func:`mask_url` (a URL fit for a message), and :class:`ConfigError` with
its :class:`ConfigProblem` entries.

Every mistake in a file becomes one :class:`ConfigError` whose message is a single line naming
the file, the key path and what is wrong; several mistakes are reported together, joined by
``"; "``, so a person fixes them in one pass. Secrets reach the config through ``${VAR}``
references and connector settings, so messages never echo values that might be one: they
name keys and variables, and echo only enum-like words (connector names, policies, schedules,
object types, field and system names). As a second line of defence, any value taken from the
environment or stored under a secret-looking key is blotted out of every message.

Paths are relative to the config file's folder, not the working directory, so a scheduler or
a service manager that starts crmhub from ``/`` finds the same files as a person in a shell:
this holds for a ``sqlite:///`` database and for connector settings typed as ``Path``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import phonenumbers
import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    SkipValidation,
    ValidationError,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from connectors.base import ConnectorFactory
from connectors.registry import UnknownConnectorError, load_connector
from mappings.schema import OBJECT_TYPES, canonical_fields, is_canonical_field

__all__ = [
    "DEFAULT_MATCH",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ConflictPolicy",
    "ConnectorLoader",
    "DashboardConfig",
    "Schedule",
    "SyncConfig",
    "SystemConfig",
    "find_config_path",
    "load_config",
    "mask_url",
    "parse_config",
]

Access: TypeAlias = Literal["both", "read", "write"]
DeletePolicy: TypeAlias = Literal["ignore", "propagate", "unlink"]
MatchKeys: TypeAlias = tuple[tuple[str, ...], ...]
ConnectorLoader: TypeAlias = Callable[[str], ConnectorFactory]
_KeyPath: TypeAlias = tuple[str | int, ...]

CONFIG_ENV_VAR = "CRMHUB_CONFIG"
DEFAULT_CONFIG_NAME = "crmhub.yaml"
DEFAULT_DATABASE_NAME = "crmhub.db"

DEFAULT_MATCH: Mapping[str, MatchKeys] = types.MappingProxyType(
    {
        "companies": (("domain",), ("name",)),
        "contacts": (("email",),),
        "deals": (("name", "company"),),
    }
)

_ACCESS: tuple[Access, ...] = ("both", "read", "write")
_DELETES: tuple[DeletePolicy, ...] = ("ignore", "propagate", "unlink")
_TOP_KEYS = (
    "database",
    "phone_region",
    "broker",
    "rate_limit_storage",
    "systems",
    "syncs",
    "dashboard",
)
# Celery brokers crmhub supports: Redis, or RabbitMQ (AMQP); "s" is the TLS form of each.
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
# The synchronous storages of the ``limits`` library that connectors' rate limiters can use.
_RATE_LIMIT_SCHEMES = (
    "memory",
    "redis",
    "rediss",
    "redis+unix",
    "redis+sentinel",
    "redis+cluster",
    "valkey",
    "valkeys",
    "memcached",
    "mongodb",
    "mongodb+srv",
)
# The connector setting that a top-level ``rate_limit_storage`` fills in.
_RATE_LIMIT_SETTING = "rate_limit_storage"
# Keys of a system that crmhub itself reads; every other key belongs to the connector.
_SYSTEM_KEYS = ("connector", "base_url", "phone_region", "map")
_SYNC_KEYS = (
    "systems",
    "objects",
    "schedule",
    "match",
    "conflicts",
    "deletes",
    "max_delete_fraction",
    "overlap",
    "delete_sweep",
    "fields",
    "split",
)
_CONFLICT_KEYS = ("prefer", "owners", "fallback")
_DASHBOARD_KEYS = ("admin_password_hash",)
# An Argon2 hash in the PHC string format that argon2-cffi writes and verifies.
_ARGON2_HASH = re.compile(
    r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}"
)
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "credential")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhd]\s*)+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
# Values from the environment shorter than this are too likely to be ordinary words ("both",
# "US") to blot out of messages; real tokens and passwords are longer.
_MIN_ENV_SECRET = 8
_MIN_KEYED_SECRET = 3


# --------------------------------------------------------------------------------- errors


class ConfigProblem(NamedTuple):
    """One mistake: where (``key_path`` like ``systems.hs.token``; None for the whole file)."""

    key_path: str | None
    message: str


class ConfigError(Exception):
    """A config file that cannot be used, described in one line a person reads.

    ``path`` is the file as the user named it, ``key_path`` the first problem's dotted key
    path (None when the file as a whole is wrong), ``problems`` every problem found, and
    ``line``/``column`` (1-based) point into the file for YAML syntax errors.
    """

    path: Path
    key_path: str | None
    problems: tuple[ConfigProblem, ...]
    line: int | None
    column: int | None

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        key_path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self._setup(path, (ConfigProblem(key_path, _one_line(message)),), line, column)

    @classmethod
    def from_problems(cls, path: Path, problems: Iterable[ConfigProblem]) -> ConfigError:
        """One error reporting several problems; there must be at least one."""
        error = cls.__new__(cls)
        found = tuple(ConfigProblem(p.key_path, _one_line(p.message)) for p in problems)
        if not found:
            raise ValueError("ConfigError.from_problems needs at least one problem")
        error._setup(path, found, None, None)
        return error

    def _setup(
        self,
        path: Path,
        problems: tuple[ConfigProblem, ...],
        line: int | None,
        column: int | None,
    ) -> None:
        self.path = path
        self.problems = problems
        self.key_path = problems[0].key_path
        self.line = line
        self.column = column
        Exception.__init__(self, self._render())

    def _render(self) -> str:
        if self.line is not None:
            where = f"{self.path} line {self.line}, column {self.column}"
            return f"{where}: {self.problems[0].message}"
        parts = [f"{p.key_path}: {p.message}" if p.key_path else p.message for p in self.problems]
        return f"{self.path}: {'; '.join(parts)}"

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce calls cls(*args), which does not fit our signature; workers and
        # multiprocessing pickle exceptions.
        return (_restore_error, (self.path, self.problems, self.line, self.column))


def _restore_error(
    path: Path, problems: tuple[ConfigProblem, ...], line: int | None, column: int | None
) -> ConfigError:
    error = ConfigError.from_problems(path, problems)
    error.line, error.column = line, column
    Exception.__init__(error, error._render())
    return error


# --------------------------------------------------------------------------------- models


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Schedule(_Frozen):
    """When a sync runs: every ``seconds`` (kind ``interval``) or on a 5-field ``cron`` line.

    Cron lines have standard crontab meaning (0 and 7 are Sunday). APScheduler 3's
    ``CronTrigger.from_crontab`` counts weekdays from Monday, so a scheduler must not hand it
    this string unchanged; :meth:`next_after` gives the standard answer.
    """

    kind: Literal["interval", "cron"]
    seconds: float | None = None
    cron: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if self.kind == "interval" and (self.seconds is None or self.seconds <= 0):
            raise ValueError("an interval schedule needs seconds > 0")
        if self.kind == "cron" and not self.cron:
            raise ValueError("a cron schedule needs a cron expression")
        return self

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """``5m``, ``1h30m``, ``30s``, ``1d`` or a 5-field cron line; ValueError otherwise."""
        text = text.strip()
        seconds = _parse_duration(text)
        if seconds is not None:
            if seconds <= 0:
                raise ValueError(f"{text!r} is not a positive interval")
            return cls(kind="interval", seconds=seconds)
        fields = text.split()
        if len(fields) == 5:
            expression = " ".join(fields)
            if not croniter.is_valid(expression):
                raise ValueError(
                    f"{text!r} is not a valid cron expression "
                    "(minute hour day-of-month month day-of-week)"
                )
            try:
                croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
            except ValueError:  # CroniterBadDateError: e.g. "0 0 31 2 *"
                raise ValueError(f"{text!r} never fires (no date matches it)") from None
            return cls(kind="cron", cron=expression)
        raise ValueError(
            f"{text!r} is neither an interval like 5m nor a cron expression like '*/15 * * * *'"
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment``, in ``moment``'s time zone."""
        if self.kind == "interval":
            assert self.seconds is not None
            return moment + timedelta(seconds=self.seconds)
        result: datetime = croniter(self.cron, moment).get_next(datetime)
        return result

    def __str__(self) -> str:
        if self.kind == "cron":
            return f"cron {self.cron}"
        return f"every {_format_seconds(self.seconds or 0.0)}"


class ConflictPolicy(_Frozen):
    """How a field changed differently on several systems is settled.

    ``kind`` is ``newest`` (latest vendor modified time wins, ties by system order),
    ``prefer`` (the first system of ``prefer`` among the conflicting ones wins; when none of
    them is listed, ``fallback`` decides) or ``manual`` (queued for a person). ``owners`` maps
    ``object.field`` (``contacts.phone``) to the system whose value always wins for that field,
    whatever the kind.
    """

    kind: Literal["newest", "prefer", "manual"] = "newest"
    prefer: tuple[str, ...] = ()
    owners: dict[str, str] = Field(default_factory=dict)
    fallback: Literal["newest", "manual"] = "newest"


class SplitConfig(_Frozen):
    """How a run on Celery workers shares out a large initial sync (``split:`` of a sync).

    When an object type has at least ``min_records`` records to reconcile, the run decides them
    all, then ``tasks`` worker tasks and the run itself send the writes, page by page, in
    parallel within the vendors' shared rate-limit budgets. Runs in-process never split.
    """

    tasks: int = Field(default=4, ge=1, le=64)
    min_records: int = Field(default=5000, ge=1)


class SystemConfig(_Frozen):
    """One configured CRM account.

    ``settings`` is the connector's own settings model, validated; ``connector_class`` is the
    class the entry point named, so a caller builds the connector with the same loader that
    validated it: ``system.connector_class(system.name, system.settings)``. Neither appears in
    ``repr`` (settings hold credentials); see :meth:`Config.redacted_dict` for display.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    connector: str
    base_url: str | None = None
    phone_region: str | None = None
    map: dict[str, Any] = Field(default_factory=dict)
    settings: BaseModel = Field(repr=False)
    # A Protocol cannot be validated; the loader already vouched for it.
    connector_class: SkipValidation[ConnectorFactory | None] = Field(
        default=None, repr=False, exclude=True
    )

    def redacted_dict(self) -> dict[str, Any]:
        """This system for display, with secrets replaced by ``"***"``."""
        return {
            "connector": self.connector,
            "base_url": mask_url(self.base_url) if self.base_url else self.base_url,
            "phone_region": self.phone_region,
            "map": self.map,
            "settings": _redact_model(self.settings),
        }


class SyncConfig(_Frozen):
    """A named group of systems kept consistent for some object types.

    ``systems`` keeps the file's order, which breaks ties; ``objects`` is in dependency order
    (companies before contacts before deals) whatever order the file used.
    """

    name: str
    systems: dict[str, Access]
    objects: tuple[str, ...] = tuple(OBJECT_TYPES)
    schedule: Schedule | None = None
    match: dict[str, MatchKeys] = Field(default_factory=lambda: dict(DEFAULT_MATCH))
    conflicts: ConflictPolicy = Field(default_factory=ConflictPolicy)
    deletes: DeletePolicy = "ignore"
    max_delete_fraction: float = Field(default=0.5, gt=0, le=1)
    overlap_seconds: float = Field(default=300.0, ge=0)
    delete_sweep_seconds: float = Field(default=86400.0, ge=0)
    fields: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    split: SplitConfig | None = None

    @property
    def readers(self) -> tuple[str, ...]:
        """Systems this sync reads changes from, in the file's order."""
        return tuple(name for name, access in self.systems.items() if access != "write")

    @property
    def writers(self) -> tuple[str, ...]:
        """Systems this sync writes to, in the file's order."""
        return tuple(name for name, access in self.systems.items() if access != "read")


class DashboardConfig(_Frozen):
    """Settings of ``crmhub serve``.

    ``admin_password_hash`` is an Argon2 hash of the admin's password (``crmhub serve
    --hash-password`` prints one); without it the password comes from the environment
    variable ``CRMHUB_ADMIN_PASSWORD``.
    """

    admin_password_hash: str | None = Field(default=None, repr=False)


class Config(_Frozen):
    """A whole validated config file; ``source`` is its absolute path.

    ``broker`` is the Celery broker URL that ``crmhub worker`` and ``crmhub run --executor
    celery`` use (None: no workers). ``rate_limit_storage`` is the ``limits`` storage URI given
    to every system whose connector has a ``rate_limit_storage`` setting and does not set its
    own: with a Redis URI, every worker spends one shared budget per vendor account.
    """

    database: str
    phone_region: str | None = None
    broker: str | None = None
    rate_limit_storage: str | None = None
    systems: dict[str, SystemConfig]
    syncs: dict[str, SyncConfig]
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    source: Path
    # Every credential the file holds or names through the environment, so that log lines can
    # mask them (hub.logs.hide_secrets).
    secrets: frozenset[str] = Field(default_factory=frozenset, repr=False, exclude=True)

    def redacted_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready data with every secret replaced by ``"***"``.

        Secrets are connector settings typed ``SecretStr``/``SecretBytes`` or named like a
        secret (token, secret, password, key, ...), and passwords inside URLs.
        """
        return {
            "source": str(self.source),
            "database": mask_url(self.database),
            "phone_region": self.phone_region,
            "broker": mask_url(self.broker) if self.broker else None,
            "rate_limit_storage": (
                mask_url(self.rate_limit_storage) if self.rate_limit_storage else None
            ),
            "systems": {name: system.redacted_dict() for name, system in self.systems.items()},
            "syncs": {name: sync.model_dump(mode="json") for name, sync in self.syncs.items()},
            "dashboard": {
                "admin_password_hash": "***" if self.dashboard.admin_password_hash else None
            },
        }


# ------------------------------------------------------------------------- entry points


def find_config_path(explicit: Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The config file to use: ``explicit`` (``--config``), else ``$CRMHUB_CONFIG``, else
    ``./crmhub.yaml``. The first of these that is given must exist: a mistyped ``--config``
    stops with an error, since silently syncing with some other file is worse."""
    if explicit is not None:
        _require_file(explicit, "given with --config")
        return explicit
    from_env = environ.get(CONFIG_ENV_VAR)
    if from_env:
        path = Path(from_env).expanduser()
        _require_file(path, f"named by {CONFIG_ENV_VAR}")
        return path
    path = Path(DEFAULT_CONFIG_NAME)
    if not path.is_file():
        raise ConfigError(
            path,
            f"no config file: looked for --config, then {CONFIG_ENV_VAR} (not set), then "
            f"{Path.cwd() / DEFAULT_CONFIG_NAME}; copy config/example-memory.yaml to start",
        )
    return path


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    connector_loader: ConnectorLoader = load_connector,
) -> Config:
    """Find (see :func:`find_config_path`), read and validate a config file."""
    path = find_config_path(path, environ)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None
    return parse_config(text, source=path, environ=environ, connector_loader=connector_loader)


def parse_config(
    text: str,
    *,
    source: Path,
    environ: Mapping[str, str] = os.environ,
    connector_loader: ConnectorLoader = load_connector,
) -> Config:
    """Validate YAML ``text`` as if read from ``source`` (named in messages; its folder
    anchors relative paths)."""
    return _Parser(source, environ, connector_loader).parse(text)


def _require_file(path: Path, how: str) -> None:
    if path.is_dir():
        raise ConfigError(path, f"is a directory, not a config file ({how})")
    if not path.is_file():
        raise ConfigError(path, f"file not found ({how})")


# ---------------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads only true/false as booleans.

    PyYAML follows YAML 1.1, where ``NO`` (Norway) and ``on`` are booleans and a repeated key
    silently replaces the first; both hide mistakes in a hand-written config.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep)


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


# -------------------------------------------------------------------------------- parser


class _BadReferenceError(Exception):
    """Stops parsing one string; its problem is already recorded."""


class _Parser:
    """Walks the YAML tree once, recording every problem with its key path."""

    def __init__(
        self, source: Path, environ: Mapping[str, str], connector_loader: ConnectorLoader
    ) -> None:
        self.source = source
        self.folder = Path(os.path.abspath(source)).parent
        self.environ = environ
        self.connector_loader = connector_loader
        self.problems: list[ConfigProblem] = []
        self.secrets: set[str] = set()
        self.rate_limit_storage: str | None = None

    # ------------------------------------------------------------------ bookkeeping

    def problem(self, path: _KeyPath, message: str) -> None:
        self.problems.append(ConfigProblem(_format_path(path) or None, message))

    def fail(self, message: str) -> NoReturn:
        raise self.error([ConfigProblem(None, message)])

    def error(self, problems: list[ConfigProblem]) -> ConfigError:
        secrets = sorted(self.secrets, key=len, reverse=True)
        cleaned = []
        for key_path, message in problems:
            for secret in secrets:
                message = message.replace(secret, "***")
            cleaned.append(ConfigProblem(key_path, message))
        return ConfigError.from_problems(self.source, cleaned)

    def stop_if_problems(self) -> None:
        if self.problems:
            raise self.error(self.problems)

    def remember_secrets(self, value: Any, *, secret: bool) -> None:
        """Record strings that must never appear in a message."""
        if isinstance(value, str):
            if secret and len(value) >= _MIN_KEYED_SECRET:
                self.secrets.add(value)
            password = _url_password(value)
            if password and len(password) >= _MIN_KEYED_SECRET:
                self.secrets.add(password)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.remember_secrets(item, secret=secret or _is_secret_key(str(key)))
        elif isinstance(value, list):
            for item in value:
                self.remember_secrets(item, secret=secret)

    # ------------------------------------------------------------------ top level

    def parse(self, text: str) -> Config:
        data = self.load_yaml(text)
        if data is None:
            self.fail(
                "the file is empty; it needs at least 'systems:' (see config/example-memory.yaml)"
            )
        if not isinstance(data, dict):
            self.fail(
                f"the top level must be a mapping with keys {', '.join(_TOP_KEYS)}, "
                f"not {_describe(data)}"
            )
        data = self.expand(data, ())
        # Only where credentials live: elsewhere, names like custom.api_key are field names.
        self.remember_secrets(data.get("database"), secret=False)
        self.remember_secrets(data.get("broker"), secret=False)
        self.remember_secrets(data.get("rate_limit_storage"), secret=False)
        self.remember_secrets(data.get("systems"), secret=False)
        self.remember_secrets(data.get("dashboard"), secret=False)
        # Misplaced or not, a missing variable makes everything after it guesswork.
        self.stop_if_problems()

        for key in data:
            if key not in _TOP_KEYS:
                self.problem((str(key),), _unknown_key(str(key), _TOP_KEYS))
        database = self.database(data.get("database"))
        phone_region = self.region(data.get("phone_region"), ("phone_region",))
        broker = self.service_url(
            data.get("broker"),
            "broker",
            _BROKER_SCHEMES,
            "a Celery broker URL, redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//",
        )
        self.rate_limit_storage = self.service_url(
            data.get("rate_limit_storage"),
            "rate_limit_storage",
            _RATE_LIMIT_SCHEMES,
            "a rate-limit storage URI, memory:// or redis://127.0.0.1:6379/0",
        )
        raw_systems = data.get("systems")
        systems = self.systems(raw_systems)
        defined = [str(name) for name in raw_systems] if isinstance(raw_systems, dict) else []
        syncs = self.syncs(data.get("syncs"), defined)
        dashboard = self.dashboard(data.get("dashboard"))
        self.stop_if_problems()
        return Config(
            database=database,
            phone_region=phone_region,
            broker=broker,
            rate_limit_storage=self.rate_limit_storage,
            systems=systems,
            syncs=syncs,
            dashboard=dashboard,
            source=Path(os.path.abspath(self.source)),
            secrets=frozenset(self.secrets),
        )

    def load_yaml(self, text: str) -> Any:
        try:
            return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = exc.problem or exc.context or "malformed YAML"
            if exc.context and exc.problem and exc.context_mark is not None:
                where = exc.context_mark
                context = f"{exc.context} at line {where.line + 1}, column {where.column + 1}"
                # PyYAML splits some sentences in two: "expected X" + "but found Y".
                if exc.problem.startswith("but "):
                    message = f"{context}, {exc.problem}"
                else:
                    message = f"{exc.problem} ({context})"
            if mark is None:
                raise ConfigError(self.source, f"malformed YAML: {message}") from None
            raise ConfigError(
                self.source, message, line=mark.line + 1, column=mark.column + 1
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(self.source, f"malformed YAML: {exc}") from None

    # ------------------------------------------------------------------ ${VAR} expansion

    def expand(self, value: Any, path: _KeyPath) -> Any:
        """Replace ``${VAR}``/``${VAR:-default}`` in every string; ``$$`` is a dollar sign.

        Values from the environment are inserted as they are, never expanded again, so a
        password containing ``$`` survives.
        """
        if isinstance(value, str):
            if "$" not in value:
                return value
            try:
                return self.scan(value, 0, path, evaluate=True, nested=False)[0]
            except _BadReferenceError:
                return value
        if isinstance(value, dict):
            return {key: self.expand(item, (*path, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            return [self.expand(item, (*path, index)) for index, item in enumerate(value)]
        return value

    def scan(
        self, text: str, start: int, path: _KeyPath, *, evaluate: bool, nested: bool
    ) -> tuple[str, int]:
        """Expand ``text`` from ``start`` to its end, or (``nested``, inside a default) to the
        ``}`` that closes it. Returns the expansion and the index where scanning stopped.
        ``evaluate=False`` parses an unused default without looking variables up, as a shell
        does, so an unset variable inside an unused default is no error."""
        out: list[str] = []
        i = start
        while i < len(text):
            char = text[i]
            if nested and char == "}":
                return "".join(out), i
            if char != "$":
                out.append(char)
                i += 1
            elif text.startswith("$$", i):
                out.append("$")
                i += 2
            elif text.startswith("${", i):
                value, i = self.reference(text, i + 2, path, evaluate=evaluate)
                out.append(value)
            else:
                out.append("$")
                i += 1
        if nested:
            self.unterminated(path)
        return "".join(out), i

    def reference(
        self, text: str, start: int, path: _KeyPath, *, evaluate: bool
    ) -> tuple[str, int]:
        """Resolve the reference whose name starts at ``start`` (just after ``${``)."""
        match = _ENV_NAME.match(text, start)
        if match is None:
            self.problem(
                path,
                "'${' must be followed by a variable name, as in ${NAME} "
                "(write $$ for a literal dollar sign)",
            )
            raise _BadReferenceError
        name, end = match.group(), match.end()
        if end >= len(text):
            self.unterminated(path)
        if text[end] == "}":
            if not evaluate:
                return "", end + 1
            if name not in self.environ:
                self.problem(path, f"environment variable {name} is not set")
                return "", end + 1
            return self.from_environment(name), end + 1
        if text.startswith(":-", end):
            # Shell semantics: the default also replaces a variable that is set but empty.
            use_default = evaluate and not self.environ.get(name)
            default, close = self.scan(text, end + 2, path, evaluate=use_default, nested=True)
            if not evaluate:
                return "", close + 1
            if use_default:
                return default, close + 1
            return self.from_environment(name), close + 1
        self.problem(
            path, f"unsupported syntax after '${{{name}'; use ${{{name}}} or ${{{name}:-default}}"
        )
        raise _BadReferenceError

    def from_environment(self, name: str) -> str:
        value = self.environ[name]
        if len(value) >= _MIN_ENV_SECRET:
            self.secrets.add(value)
        return value

    def unterminated(self, path: _KeyPath) -> NoReturn:
        self.problem(path, "unterminated '${' (close it with '}', or write $$ for a dollar sign)")
        raise _BadReferenceError

    # ------------------------------------------------------------------ scalars

    def database(self, raw: Any) -> str:
        if raw is None:
            default = URL.create("sqlite", database=str(self.folder / DEFAULT_DATABASE_NAME))
            return default.render_as_string(hide_password=False)
        example = "e.g. sqlite:///crmhub.db or postgresql+psycopg://user:${PGPASSWORD}@host/db"
        if not isinstance(raw, str):
            self.problem(("database",), f"must be a SQLAlchemy URL, {example}")
            return ""
        try:
            url = make_url(raw)
        except (ArgumentError, ValueError):
            # The URL may hold a password: describe, never echo.
            self.problem(("database",), f"is not a SQLAlchemy URL ({example})")
            return ""
        if url.get_backend_name() != "sqlite":
            return raw
        database = url.database
        # In-memory and URI-mode databases are not file paths; leave them as written.
        if not database or database == ":memory:" or database.startswith("file:"):
            return raw
        if url.query.get("uri") == "true":
            return raw
        file = Path(database).expanduser()
        if not file.is_absolute():
            file = self.folder / file
        return url.set(database=str(file)).render_as_string(hide_password=False)

    def service_url(
        self, raw: Any, key: str, schemes: tuple[str, ...], expected: str
    ) -> str | None:
        """A URL of one of ``schemes`` under the top-level ``key``, or None when not given."""
        if raw is None:
            return None
        scheme = ""
        if isinstance(raw, str) and "://" in raw:
            try:
                parts = urlsplit(raw)
            except ValueError:
                parts = None
            if parts is not None and (parts.netloc or parts.scheme == "memory"):
                scheme = parts.scheme.lower()
        if scheme not in schemes:
            # The URL may hold a password: describe, never echo.
            known = f" ({scheme}:// is not one of {', '.join(schemes)})" if scheme else ""
            self.problem((key,), f"must be {expected}{known}")
            return None
        return str(raw)

    def region(self, raw: Any, path: _KeyPath) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, str) and raw.strip().upper() in phonenumbers.SUPPORTED_REGIONS:
            return raw.strip().upper()
        self.problem(path, f"{raw!r} is not a two-letter region code like US or DE")
        return None

    def name_ok(self, name: Any, path: _KeyPath, what: str) -> bool:
        if isinstance(name, str) and _NAME.fullmatch(name):
            return True
        self.problem(
            path,
            f"{what} name {str(name)!r} must be letters, digits, '-' or '_' "
            "(starting with a letter or digit)",
        )
        return False

    # ------------------------------------------------------------------ systems

    def systems(self, raw: Any) -> dict[str, SystemConfig]:
        if raw is None:
            self.problem(("systems",), "missing: define at least one system")
            return {}
        if not isinstance(raw, dict) or not raw:
            self.problem(
                ("systems",),
                "must be a mapping of system names to their settings, "
                "e.g. systems: {a: {connector: memory}}",
            )
            return {}
        result: dict[str, SystemConfig] = {}
        for name, body in raw.items():
            system = self.system(name, body)
            if system is not None:
                result[system.name] = system
        return result

    def system(self, name: Any, body: Any) -> SystemConfig | None:
        path: _KeyPath = ("systems", str(name))
        if not self.name_ok(name, path, "system"):
            return None
        if not isinstance(body, dict):
            self.problem(path, "must be a mapping with at least 'connector:'")
            return None
        factory = self.connector(body.get("connector"), (*path, "connector"))
        base_url = self.base_url(body.get("base_url"), (*path, "base_url"))
        phone_region = self.region(body.get("phone_region"), (*path, "phone_region"))
        field_map = body.get("map")
        if field_map is None:
            field_map = {}
        elif not isinstance(field_map, dict):
            self.problem((*path, "map"), "must be a mapping of field-map overrides per object")
            field_map = {}
        if factory is None:
            return None
        settings = self.settings(factory, body, base_url, path)
        if settings is None:
            return None
        return SystemConfig(
            name=name,
            connector=body["connector"],
            base_url=base_url,
            phone_region=phone_region,
            map=field_map,
            settings=settings,
            connector_class=factory,
        )

    def connector(self, raw: Any, path: _KeyPath) -> ConnectorFactory | None:
        if raw is None:
            self.problem(path, "missing: name the connector, e.g. memory or hubspot")
            return None
        if not isinstance(raw, str):
            self.problem(path, "must be a connector name, e.g. memory or hubspot")
            return None
        try:
            return self.connector_loader(raw)
        except UnknownConnectorError as exc:
            installed = ", ".join(exc.available) or "none"
            close = difflib.get_close_matches(raw, exc.available, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.problem(path, f"unknown connector {raw!r} ({hint}installed: {installed})")
        except Exception as exc:
            # A broken third-party package must not take the whole message format with it.
            self.problem(
                path, f"connector {raw!r} is installed but failed to load: {_exception_line(exc)}"
            )
        return None

    def base_url(self, raw: Any, path: _KeyPath) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                parts = urlsplit(raw)
            except ValueError:
                parts = None
            if parts is not None and parts.scheme and parts.netloc:
                return raw
        self.problem(path, "must be a URL such as https://api.example.com")
        return None

    def settings(
        self, factory: ConnectorFactory, body: dict[Any, Any], base_url: str | None, path: _KeyPath
    ) -> BaseModel | None:
        model = factory.settings_model
        connector = body["connector"]
        accepted = _accepted_keys(model)
        values: dict[str, Any] = {}
        for key, value in body.items():
            key = str(key)
            if key in _SYSTEM_KEYS:
                continue
            if accepted is not None and key not in accepted:
                self.problem(
                    (*path, key),
                    f"unknown key for the {connector!r} connector "
                    f"({_hint(key, sorted(accepted), 'it takes')})",
                )
                continue
            values[key] = value
        if base_url is not None:
            if accepted is not None and "base_url" not in accepted:
                # Dropping it would point a user who meant a sandbox at the real vendor.
                self.problem(
                    (*path, "base_url"), f"the {connector!r} connector does not take a base_url"
                )
            else:
                values["base_url"] = base_url
        if (
            self.rate_limit_storage is not None
            and _RATE_LIMIT_SETTING not in values
            and _RATE_LIMIT_SETTING in model.model_fields
        ):
            values[_RATE_LIMIT_SETTING] = self.rate_limit_storage
        for key in _secret_typed_keys(model):
            self.remember_secrets(values.get(key), secret=True)
        for key in _path_typed_keys(model):
            if isinstance(values.get(key), str):
                file = Path(values[key]).expanduser()
                values[key] = str(file if file.is_absolute() else self.folder / file)
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False, include_context=False):
                location = tuple(error["loc"])
                self.problem((*path, *location), _pydantic_message(error, connector))
            return None

    # ------------------------------------------------------------------ dashboard

    def dashboard(self, raw: Any) -> DashboardConfig:
        path: _KeyPath = ("dashboard",)
        if raw is None:
            return DashboardConfig()
        if not isinstance(raw, dict):
            self.problem(path, "must be a mapping, e.g. dashboard: {admin_password_hash: ...}")
            return DashboardConfig()
        for key in raw:
            if key not in _DASHBOARD_KEYS:
                self.problem((*path, str(key)), _unknown_key(str(key), _DASHBOARD_KEYS))
        password_hash = raw.get("admin_password_hash")
        if password_hash is None:
            return DashboardConfig()
        # Described, never echoed: a password pasted here by mistake must not reach a log.
        if not isinstance(password_hash, str) or not _ARGON2_HASH.fullmatch(password_hash):
            self.problem(
                (*path, "admin_password_hash"),
                "is not an Argon2 hash like $argon2id$v=19$m=65536,t=3,p=4$...$... "
                "(crmhub serve --hash-password prints one)",
            )
            return DashboardConfig()
        return DashboardConfig(admin_password_hash=password_hash)

    # ------------------------------------------------------------------ syncs

    def syncs(self, raw: Any, defined: list[str]) -> dict[str, SyncConfig]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(("syncs",), "must be a mapping of sync names to their settings")
            return {}
        result: dict[str, SyncConfig] = {}
        for name, body in raw.items():
            sync = self.sync(name, body, defined)
            if sync is not None:
                result[sync.name] = sync
        return result

    def sync(self, name: Any, body: Any, defined: list[str]) -> SyncConfig | None:
        path: _KeyPath = ("syncs", str(name))
        if not self.name_ok(name, path, "sync"):
            return None
        if not isinstance(body, dict):
            self.problem(path, "must be a mapping with at least 'systems:'")
            return None
        before = len(self.problems)
        for key in body:
            if key not in _SYNC_KEYS:
                self.problem((*path, str(key)), _unknown_key(str(key), _SYNC_KEYS))
        members = self.members(body.get("systems"), (*path, "systems"), defined)
        objects = self.objects(body.get("objects"), (*path, "objects"))
        schedule = self.schedule(body.get("schedule"), (*path, "schedule"))
        match = self.match(body.get("match"), (*path, "match"))
        conflicts = self.conflicts(body.get("conflicts"), (*path, "conflicts"), members)
        deletes = self.deletes(body.get("deletes"), (*path, "deletes"))
        fraction = self.fraction(body.get("max_delete_fraction"), (*path, "max_delete_fraction"))
        overlap = self.duration(body.get("overlap"), (*path, "overlap"), 300.0)
        sweep = self.duration(body.get("delete_sweep"), (*path, "delete_sweep"), 86400.0)
        fields = self.fields(body.get("fields"), (*path, "fields"), members)
        split = self.split(body.get("split"), (*path, "split"))
        if len(self.problems) > before or members is None or conflicts is None:
            return None
        return SyncConfig(
            name=name,
            systems=members,
            objects=objects,
            schedule=schedule,
            match=match,
            conflicts=conflicts,
            deletes=deletes,
            max_delete_fraction=fraction,
            overlap_seconds=overlap,
            delete_sweep_seconds=sweep,
            fields=fields,
            split=split,
        )

    def members(self, raw: Any, path: _KeyPath, defined: list[str]) -> dict[str, Access] | None:
        """The sync's systems with their access, or None when they are unusable (then checks
        that name systems are skipped rather than piling up follow-on errors)."""
        entries: list[tuple[Any, Any]]
        if raw is None:
            self.problem(path, "missing: list the systems this sync keeps consistent, e.g. [a, b]")
            return None
        if isinstance(raw, list):
            entries = [(item, "both") for item in raw]
        elif isinstance(raw, dict):
            entries = list(raw.items())
        else:
            self.problem(path, "must be a list [a, b] or a mapping {a: both, b: read, c: write}")
            return None
        result: dict[str, Access] = {}
        ok = True
        for name, access in entries:
            if not isinstance(name, str):
                self.problem(path, f"{name!r} is not a system name")
                ok = False
                continue
            if name not in defined:
                listed = ", ".join(defined) or "none"
                self.problem(path, f"unknown system {name!r} (defined: {listed})")
                ok = False
            if name in result:
                self.problem(path, f"system {name!r} is listed twice")
                ok = False
            if access not in _ACCESS:
                self.problem(
                    (*path, name), f"{access!r} is not an access mode (use both, read or write)"
                )
                ok = False
                continue
            result[name] = access
        if len(entries) < 2:
            self.problem(path, f"a sync needs at least two systems, got {len(entries)}")
            ok = False
        elif result and len(result) == len(entries):
            if all(access == "write" for access in result.values()):
                self.problem(path, "no system reads: mark at least one 'read' or 'both'")
                ok = False
            if all(access == "read" for access in result.values()):
                self.problem(path, "no system writes: mark at least one 'write' or 'both'")
                ok = False
        return result if ok else None

    def objects(self, raw: Any, path: _KeyPath) -> tuple[str, ...]:
        if raw is None:
            return tuple(OBJECT_TYPES)
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            self.problem(path, f"must list object types, e.g. [{', '.join(OBJECT_TYPES)}]")
            return ()
        chosen = set()
        for item in items:
            if self.object_type(item, path):
                chosen.add(item)
        # Dependency order: a deal refers to its company, so companies must be linked first.
        return tuple(object_type for object_type in OBJECT_TYPES if object_type in chosen)

    def object_type(self, raw: Any, path: _KeyPath) -> bool:
        if isinstance(raw, str) and raw in OBJECT_TYPES:
            return True
        self.problem(
            path, f"unknown object type {str(raw)!r} ({_hint(str(raw), OBJECT_TYPES, 'known')})"
        )
        return False

    def field(self, object_type: str, name: Any, path: _KeyPath) -> bool:
        if isinstance(name, str) and is_canonical_field(object_type, name):
            return True
        known = sorted(canonical_fields(object_type))
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"known: {', '.join(known)}, or custom.<name>"
        )
        self.problem(path, f"unknown field {str(name)!r} for {object_type} ({hint})")
        return False

    def schedule(self, raw: Any, path: _KeyPath) -> Schedule | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                return Schedule.parse(raw)
            except ValueError as exc:
                self.problem(path, str(exc))
                return None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            self.problem(path, f"{raw!r} has no unit: write e.g. {raw}s or {raw}m")
            return None
        self.problem(path, "must be an interval like 5m or a cron expression like '*/15 * * * *'")
        return None

    def match(self, raw: Any, path: _KeyPath) -> dict[str, MatchKeys]:
        result = dict(DEFAULT_MATCH)
        if raw is None:
            return result
        if not isinstance(raw, dict):
            self.problem(path, "must map object types to match keys, e.g. {contacts: [email]}")
            return result
        for object_type, keys in raw.items():
            where = (*path, str(object_type))
            if not self.object_type(object_type, where):
                continue
            items = [keys] if isinstance(keys, str) else keys
            if not isinstance(items, list) or not items:
                # An empty list would make every unlinked record new: duplicates everywhere.
                self.problem(
                    where,
                    "must list at least one match key: a field, or a list of fields that "
                    "must all be equal, e.g. [email] or [[name, company]]",
                )
                continue
            parsed: list[tuple[str, ...]] = []
            for item in items:
                names = [item] if isinstance(item, str) else item
                if not isinstance(names, list) or not names:
                    self.problem(where, "each match key is a field or a list of fields")
                    continue
                if all(self.field(object_type, name, where) for name in names):
                    key = tuple(names)
                    if key not in parsed:
                        parsed.append(key)
            result[object_type] = tuple(parsed)
        return result

    def conflicts(
        self, raw: Any, path: _KeyPath, members: dict[str, Access] | None
    ) -> ConflictPolicy | None:
        if raw is None:
            return ConflictPolicy()
        if raw in ("newest", "manual"):
            return ConflictPolicy(kind=raw, fallback=raw)
        if raw == "prefer":
            self.problem(path, "'prefer' needs the systems in order: conflicts: {prefer: [a, b]}")
            return None
        if not isinstance(raw, dict):
            self.problem(
                path,
                f"{str(raw)!r} is not a conflict policy (use newest, manual, or "
                "{prefer: [a, b], owners: {contacts.phone: b}, fallback: newest})",
            )
            return None
        ok = True
        for key in raw:
            if key not in _CONFLICT_KEYS:
                self.problem((*path, str(key)), _unknown_key(str(key), _CONFLICT_KEYS))
                ok = False
        fallback = raw.get("fallback", "newest")
        if fallback not in ("newest", "manual"):
            self.problem(
                (*path, "fallback"), f"{str(fallback)!r} is not a fallback (use newest or manual)"
            )
            ok = False
        prefer = self.prefer(raw.get("prefer"), (*path, "prefer"), members)
        owners = self.owners(raw.get("owners"), (*path, "owners"), members)
        if not ok or prefer is None or owners is None:
            return None
        return ConflictPolicy(
            kind="prefer" if prefer else fallback, prefer=prefer, owners=owners, fallback=fallback
        )

    def member(self, name: Any, path: _KeyPath, members: dict[str, Access] | None) -> bool:
        if members is None:
            return True  # the sync's systems are already reported as wrong
        if isinstance(name, str) and name in members:
            return True
        self.problem(
            path,
            f"system {str(name)!r} is not in this sync (its systems: {', '.join(members)})",
        )
        return False

    def prefer(
        self, raw: Any, path: _KeyPath, members: dict[str, Access] | None
    ) -> tuple[str, ...] | None:
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            self.problem(path, "must list systems in order of priority, e.g. [a, b]")
            return None
        if not all([self.member(item, path, members) for item in items]):
            return None
        return tuple(dict.fromkeys(items))

    def owners(
        self, raw: Any, path: _KeyPath, members: dict[str, Access] | None
    ) -> dict[str, str] | None:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(path, "must map object.field to a system, e.g. {contacts.phone: b}")
            return None
        result: dict[str, str] = {}
        for key, owner in raw.items():
            where = (*path, str(key))
            object_type, dot, field = str(key).partition(".")
            if not dot or not field or not object_type:
                self.problem(where, "owner keys are object.field, e.g. contacts.phone")
                continue
            if not self.object_type(object_type, where):
                continue
            if not self.field(object_type, field, where):
                continue
            if not self.member(owner, where, members):
                continue
            if members is not None and members[owner] == "write":
                # It is never read, so it never has a value to win with.
                self.problem(where, f"system {owner!r} only writes in this sync; owners must read")
                continue
            result[str(key)] = owner
        return result if len(result) == len(raw) else None

    def deletes(self, raw: Any, path: _KeyPath) -> DeletePolicy:
        if raw is None:
            return "ignore"
        if raw in _DELETES:
            policy: DeletePolicy = raw
            return policy
        self.problem(path, f"{str(raw)!r} is not a delete policy (use ignore, propagate or unlink)")
        return "ignore"

    def split(self, raw: Any, path: _KeyPath) -> SplitConfig | None:
        if raw is None or raw is False:
            return None
        if raw is True:
            return SplitConfig()
        if not isinstance(raw, dict):
            self.problem(path, "must be true, or a mapping like {tasks: 4, min_records: 5000}")
            return None
        for key in raw:
            if key not in ("tasks", "min_records"):
                self.problem((*path, str(key)), _unknown_key(str(key), ("tasks", "min_records")))
        values: dict[str, int] = {}
        for key, least, most in (("tasks", 1, 64), ("min_records", 1, None)):
            value = raw.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                self.problem((*path, key), f"must be a whole number of at least {least}")
            elif most is not None and value > most:
                self.problem((*path, key), f"must be at most {most}, not {value}")
            else:
                values[key] = value
        return SplitConfig(**values)

    def fraction(self, raw: Any, path: _KeyPath) -> float:
        if raw is None:
            return 0.5
        value: float | None = None
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        elif isinstance(raw, str):
            text = raw.strip()
            try:
                value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            except ValueError:
                value = None
        if value is not None and 0 < value <= 1:
            return value
        self.problem(
            path, f"must be a fraction above 0 and at most 1, e.g. 0.5 or 50%, not {str(raw)!r}"
        )
        return 0.5

    def duration(self, raw: Any, path: _KeyPath, default: float) -> float:
        if raw is None:
            return default
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            if raw == 0:
                return 0.0
            self.problem(path, f"{raw!r} has no unit: write e.g. {raw}s or {raw}m")
            return default
        seconds = _parse_duration(raw) if isinstance(raw, str) else None
        if seconds is None:
            self.problem(path, f"{str(raw)!r} is not a duration like 30s, 5m or 1h30m")
            return default
        return seconds

    def fields(
        self, raw: Any, path: _KeyPath, members: dict[str, Access] | None
    ) -> dict[str, dict[str, dict[str, str]]]:
        result: dict[str, dict[str, dict[str, str]]] = {}
        if raw is None:
            return result
        if not isinstance(raw, dict):
            self.problem(path, "must map object type -> canonical field -> {system: vendor field}")
            return result
        for object_type, by_field in raw.items():
            where = (*path, str(object_type))
            if not self.object_type(object_type, where):
                continue
            if not isinstance(by_field, dict):
                self.problem(where, "must map canonical fields to {system: vendor field}")
                continue
            for field, by_system in by_field.items():
                field_path = (*where, str(field))
                if not self.field(object_type, field, field_path):
                    continue
                if not isinstance(by_system, dict) or not by_system:
                    self.problem(field_path, "must map systems to vendor field names")
                    continue
                for system, vendor_field in by_system.items():
                    system_path = (*field_path, str(system))
                    if not self.member(system, system_path, members):
                        continue
                    if not isinstance(vendor_field, str) or not vendor_field.strip():
                        self.problem(system_path, "must be the vendor's field name")
                        continue
                    result.setdefault(object_type, {}).setdefault(field, {})[system] = (
                        vendor_field.strip()
                    )
        return result


# ------------------------------------------------------------------------------- helpers


def _format_path(path: _KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _hint(word: str, choices: Iterable[str], label: str) -> str:
    """``did you mean 'x'?`` when a choice is close, else ``<label>: a, b, c``."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{label}: {', '.join(options) or 'none'}"


def _unknown_key(key: str, allowed: Iterable[str]) -> str:
    return f"unknown key ({_hint(key, allowed, 'allowed')})"


def _exception_line(exc: BaseException) -> str:
    return _one_line(f"{type(exc).__name__}: {exc}")


def _parse_duration(text: str) -> float | None:
    """Seconds in ``30s``, ``5m``, ``2h``, ``1d`` or combinations like ``1h30m``; None if
    ``text`` is no such duration."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def _format_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _is_secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _annotation_mentions(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, kinds):
        return True
    return any(_annotation_mentions(arg, kinds) for arg in typing.get_args(annotation))


def _field_keys(model: type[BaseModel], name: str) -> set[str]:
    """The keys a user may write for one field: its name and its plain string aliases."""
    info = model.model_fields[name]
    keys = {name}
    for alias in (info.alias, info.validation_alias):
        if isinstance(alias, str):
            keys.add(alias)
    return keys


def _accepted_keys(model: type[BaseModel]) -> set[str] | None:
    """Keys the settings model takes, or None when it takes anything (``extra="allow"``).

    Pydantic ignores unknown keys by default, which would let ``tokn:`` pass silently.
    """
    if model.model_config.get("extra") == "allow":
        return None
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if info.validation_alias is not None and not isinstance(info.validation_alias, str):
            return None  # AliasChoices/AliasPath: let pydantic judge
        keys |= _field_keys(model, name)
    return keys


def _secret_typed_keys(model: type[BaseModel]) -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if _is_secret_key(name) or _annotation_mentions(info.annotation, (SecretStr, SecretBytes)):
            keys |= _field_keys(model, name)
    return keys


def _path_typed_keys(model: type[BaseModel]) -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if _annotation_mentions(info.annotation, (Path,)):
            keys |= _field_keys(model, name)
    return keys


def _pydantic_message(error: Any, connector: str) -> str:
    """One line from one pydantic error; its input value is never used (it may be a secret)."""
    kind = error["type"]
    if kind == "missing":
        return f"missing: the {connector!r} connector requires it"
    if kind == "extra_forbidden":
        return f"unknown key for the {connector!r} connector"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def _url_password(text: str) -> str | None:
    if "://" not in text:
        return None
    try:
        return urlsplit(text).password
    except ValueError:
        return None


def mask_url(text: str) -> str:
    """``text`` with a URL's password and secret-named query parameters replaced by ***."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(_is_secret_key(key) for key, _ in query):
        masked = [(key, "***" if _is_secret_key(key) else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    return urlunsplit(parts)


def _redact_model(model: BaseModel) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None:
            result[name] = None
        elif _is_secret_key(name) or isinstance(value, SecretStr | SecretBytes):
            result[name] = "***"
        elif isinstance(value, BaseModel):
            result[name] = _redact_model(value)
        else:
            result[name] = _redact_json(model.model_dump(mode="json", include={name})[name])
    return result


def _redact_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: "***" if _is_secret_key(str(key)) and item is not None else _redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_json(item) for item in value]
    if isinstance(value, str):
        return mask_url(value)
    return value
