"""Errors raised by the mappings package, each with a one-line message a person can act on.

Public entry points: :class:`NormalizeError`, :class:`MappingError`, :class:`FieldMapError`,
and the message helpers :func:`show_value`, :func:`one_line` and :func:`one_reason`.

A record that fails mapping goes to the dead-letter table with ``str(error)`` as its reason, so
every message here names the object type, the canonical field, the vendor field and the value,
on one line, and never carries a library's multi-line report. The errors pickle with all their
attributes because Celery workers ship them between processes.
"""

from __future__ import annotations

from typing import Any

_MAX_SHOWN = 80


def show_value(value: object) -> str:
    """``repr`` of a value for a message: one line (repr escapes newlines), at most ~80 chars."""
    text = repr(value)
    if len(text) <= _MAX_SHOWN:
        return text
    quote = text[0] if text[0] in "'\"" else ""
    return text[: _MAX_SHOWN - 4] + "..." + quote


def one_line(text: str) -> str:
    """Collapse a library's message to one line, so it reads well in a log or a table cell."""
    return " ".join(text.split())


def one_reason(exc: BaseException) -> str:
    """An exception's message on one line, without the library's trailing period."""
    return one_line(str(exc)).rstrip(".") or type(exc).__name__


class NormalizeError(ValueError):
    """A value that a normalizer cannot turn into its canonical form.

    ``str()`` is ``<value> <reason>``, e.g. ``'bob@@x' is not a valid email address: ...``; the
    parts stay apart so :class:`MappingError` can put the field names between them.
    ``map_key`` is set when the fix is a field-map entry rather than the value (a stage the
    map does not list): the key path inside a system's ``map:``, such as
    ``deals.fields.stage.values``.
    """

    def __init__(self, value: object, reason: str, *, map_key: str | None = None) -> None:
        self.value = value
        self.reason = one_line(reason)
        self.map_key = map_key
        super().__init__(f"{show_value(value)} {self.reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_normalize_error, (type(self), self.value, self.reason, self.map_key))


def _rebuild_normalize_error(
    cls: type[NormalizeError], value: object, reason: str, map_key: str | None
) -> NormalizeError:
    return cls(value, reason, map_key=map_key)


class MappingError(ValueError):
    """A record that cannot be mapped to or from the canonical schema.

    ``field`` is the canonical field (None when the record as a whole is wrong, such as a contact
    with neither name nor email), ``vendor_field`` the vendor's field when known, ``value`` the
    offending input and ``reason`` a predicate such as ``is required``. ``more`` counts further
    problems found in the same record, which the message mentions but does not spell out.
    ``map_key`` (see :class:`NormalizeError`) names the field-map entry that fixes it.
    """

    def __init__(
        self,
        object_type: str,
        field: str | None,
        value: object,
        reason: str,
        *,
        vendor_field: str | None = None,
        more: int = 0,
        map_key: str | None = None,
    ) -> None:
        self.object_type = object_type
        self.field = field
        self.value = value
        self.reason = one_line(reason)
        self.vendor_field = vendor_field
        self.more = more
        self.map_key = map_key
        super().__init__(self._message())

    def _message(self) -> str:
        if self.field is None:
            text = f"{self.object_type}: {self.reason}"
        else:
            where = f"{self.object_type}.{self.field}"
            vendor = f" (vendor field {self.vendor_field!r})" if self.vendor_field else ""
            if self.value is None:
                text = f"{where}{vendor}: {self.reason}"
            else:
                text = f"{where}: {show_value(self.value)}{vendor} {self.reason}"
        if self.more:
            text += f" (and {self.more} more problem{'s' if self.more > 1 else ''})"
        return text

    def with_vendor_field(self, vendor_field: str | None) -> MappingError:
        """The same error naming the vendor field, for a layer that knows which one it was."""
        if vendor_field is None or vendor_field == self.vendor_field:
            return self
        return MappingError(
            self.object_type,
            self.field,
            self.value,
            self.reason,
            vendor_field=vendor_field,
            more=self.more,
            map_key=self.map_key,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_mapping_error, (self.__dict__.copy(),))


def _rebuild_mapping_error(state: dict[str, Any]) -> MappingError:
    return MappingError(
        state["object_type"],
        state["field"],
        state["value"],
        state["reason"],
        vendor_field=state["vendor_field"],
        more=state["more"],
        map_key=state["map_key"],
    )


class FieldMapError(ValueError):
    """A field-map definition that cannot be used.

    ``source`` names where the definition came from (a file name, or ``config`` for overrides),
    ``path`` the dotted key path inside it (empty for the whole document) and ``problem`` what is
    wrong, e.g. ``memory.yaml: objects.deals.fields.stage.prefer.won: ...``.
    """

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = one_line(problem)
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {self.problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.path, self.problem))
