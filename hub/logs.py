"""How crmhub's log lines look: one event per line, as text or JSON, tagged with the sync, run
and system it concerns, with every known secret masked.

Public entry points: :func:`configure_logging`, :func:`run_context`, :func:`set_run_id`,
:func:`carry_context`, :func:`hide_secrets`, :data:`LOG_FORMATS`.

An event's facts travel as ``extra=`` fields (``system``, ``object``, ``status``, ``counts``,
...), never only inside the message, so a JSON line can be filtered by any of them. The sync and
run are not passed at each call: :func:`run_context` sets them for everything logged while a run
is under way, connectors' lines included, and :func:`carry_context` takes them into the threads
the engine reads and writes on.

Masking is the last line of defence: connectors and config errors scrub their own messages,
but a line is masked again on its way out, against every secret of the loaded config
(:func:`hide_secrets`) and every credential-shaped value (``Bearer …``, ``access_token=…``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from datetime import UTC, datetime
from typing import IO, Any, Literal, ParamSpec, TypeVar

import orjson
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

_P = ParamSpec("_P")
_T = TypeVar("_T")

_sync: ContextVar[str | None] = ContextVar("crmhub_sync", default=None)
_run: ContextVar[int | None] = ContextVar("crmhub_run", default=None)

# What a LogRecord carries of its own; anything else on it came through ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# Secrets shorter than this are not masked by value: masking "abc" would garble ordinary words.
_MIN_SECRET_LENGTH = 6
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None

_CREDENTIAL_SHAPES = re.compile(
    r"""(?ix)
    (?P<scheme>\b(?:bearer|basic|zoho-oauthtoken)\s+)[^\s"',;]+
    |
    (?P<key>\b(?:access_token|refresh_token|client_secret|api_?key|access_?key|password|passwd|secret|token
        |auth|session_?id)["']?\s*[:=]\s*["']?)[^\s"',;&}]+
    """
)


def hide_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they would appear in a log line, from now on."""
    global _secret_pattern
    new = {value for value in values if len(value) >= _MIN_SECRET_LENGTH} - _secrets
    if not new:
        return
    _secrets.update(new)
    # Longest first, so a secret containing another is masked whole.
    ordered = sorted(_secrets, key=len, reverse=True)
    _secret_pattern = re.compile("|".join(re.escape(value) for value in ordered))


def mask(text: str) -> str:
    """``text`` with every known secret and credential-shaped value replaced by ``***``."""
    if _secret_pattern is not None:
        text = _secret_pattern.sub("***", text)
    return _CREDENTIAL_SHAPES.sub(lambda m: (m.group("scheme") or m.group("key")) + "***", text)


# ------------------------------------------------------------------------------ context


@contextmanager
def run_context(sync: str) -> Iterator[None]:
    """Tag every line logged inside with this sync (and, once known, its run id)."""
    sync_token = _sync.set(sync)
    run_token = _run.set(None)
    try:
        yield
    finally:
        _run.reset(run_token)
        _sync.reset(sync_token)


def set_run_id(run_id: int | None) -> None:
    """The run row exists now: tag the rest of the run's lines with its id."""
    _run.set(run_id)


def carry_context(function: Callable[_P, _T]) -> Callable[_P, _T]:
    """``function`` bound to the caller's sync and run, for a call on another thread.

    Each call gets a fresh copy: one context cannot be entered on two threads at once.
    """
    context = copy_context()

    def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return context.copy().run(function, *args, **kwargs)

    return call


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "sync") and (sync := _sync.get()) is not None:
            record.sync = sync
        if not hasattr(record, "run") and (run := _run.get()) is not None:
            record.run = run
        return True


# ---------------------------------------------------------------------------- formatters


_LEADING_FIELDS = ("sync", "run", "system", "object")


def _event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event's own fields: who it concerns first, then the rest in the order given."""
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}
    leading = {key: fields.pop(key) for key in _LEADING_FIELDS if key in fields}
    return leading | fields


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and not re.search(r"[\s=\"]", value) else orjson.dumps(value).decode()
    return orjson.dumps(value, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``; values with spaces are JSON-quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _event_fields(record)
        if fields:
            pairs = " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
            head, newline, trace = line.partition("\n")
            line = f"{head} {pairs}{newline}{trace}"
        return mask(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_default=str,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when it was set up:
    test runners swap it, and a line must never go to a stream closed since."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(level: int, log_format: LogFormat = "text") -> None:
    """Send log lines to stderr in ``log_format``, replacing what an earlier call set up.

    Third-party libraries speak only of warnings unless ``level`` is DEBUG: their INFO lines
    (migrations applied, jobs added) are noise next to crmhub's own events.
    """
    handler = _StderrHandler()
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(level if level <= logging.DEBUG else logging.WARNING)
