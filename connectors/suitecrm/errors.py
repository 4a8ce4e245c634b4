"""SuiteCRM V8's error answers in crmhub's taxonomy.

Public entry points: :func:`classify_suitecrm`, :func:`error_detail`.

SuiteCRM answers *every* service-level failure with HTTP 400 and
``{"errors": {"status": 400, "title": null, "detail": "<exception message>"}}`` (``errors`` an
object, not JSON:API's array; facts 1.2): a record that does not exist, an unknown attribute, a
bad filter and a refused permission alike. The status says nothing, so the ``detail`` text is
matched against the messages SuiteCRM's code builds. Bearer-token refusals are League OAuth
answers (401 ``access_denied``); 5xx and 429 (from a proxy: SuiteCRM has no throttle of its own)
are plain HTTP.
"""

from __future__ import annotations

import re
from typing import Any, Final

import requests

from connectors.errors import (
    AuthError,
    AuthExpired,
    ConnectorConfigError,
    ConnectorError,
    RecordRejected,
    VendorError,
)
from connectors.http import body_excerpt, default_classifier

__all__ = ["classify_suitecrm", "error_detail"]

# (pattern on errors.detail, what it means). First match wins.
_NOT_FOUND: Final = re.compile(r"module with id (?P<id>\S+) is not found|is not related to")
_ALREADY: Final = re.compile(r"^Bean \w+ with id (?P<id>\S+) is already exist")
_PROPERTY: Final = re.compile(r"^Property (?P<field>\S+) in \w+ module is invalid")
_FIELDS: Final = re.compile(r"^The following fields? in \w+ module (?:is|are) not found: (?P<f>.+)")
_NO_MODULE: Final = re.compile(r"^Module \S+ does not exist")
_QUERY: Final = re.compile(
    r"^(Filter field|Filter operator|Sort field|The option|Cannot load relationship)"
)
_ACCESS: Final = re.compile(r"access denied|not allowed|permission", re.IGNORECASE)


def error_detail(body: Any) -> str | None:
    """``errors.detail`` of a SuiteCRM error body (also tolerating the JSON:API array form)."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        errors = errors[0]
    if not isinstance(errors, dict):
        return None
    detail = errors.get("detail")
    return detail if isinstance(detail, str) else None


def classify_suitecrm(response: requests.Response) -> ConnectorError | None:
    """SuiteCRM's answer in the taxonomy (see the module docstring).

    400 details: ``... with id X is not found`` → RecordRejected ``NOT_FOUND``; ``Bean ... is
    already exist`` → RecordRejected ``ALREADY_EXISTS`` (the connector's idempotent create
    handles it); ``Property p ... is invalid`` → RecordRejected ``INVALID_PROPERTY`` on field p;
    ``The following field ... not found`` and ``Module ... does not exist`` →
    ConnectorConfigError (the field map names something this site lacks); filter, sort and
    option errors → VendorError (a request crmhub should not have built); access refusals →
    RecordRejected ``ACCESS_DENIED``; anything else → RecordRejected ``BAD_REQUEST``.
    """
    status = response.status_code
    if status < 300:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if status == 401:
        said = body.get("hint") or body.get("message") if isinstance(body, dict) else None
        return AuthExpired(f"HTTP 401, access token refused: {said or body_excerpt(response)}")
    if status == 403:
        return AuthError(f"HTTP 403, permission denied: {body_excerpt(response)}")
    if status == 404:
        return ConnectorConfigError(
            f"HTTP 404 from SuiteCRM's API: {body_excerpt(response, 120)}; check base_url and "
            "api_root (/Api on 7.x, /legacy/Api on 8.x)"
        )
    detail = error_detail(body)
    if status != 400 or detail is None:
        return default_classifier(response)
    text = f"HTTP 400: {detail}"
    if _NOT_FOUND.search(detail):
        return RecordRejected(text, code="NOT_FOUND")
    if _ALREADY.search(detail):
        return RecordRejected(text, code="ALREADY_EXISTS")
    if (match := _PROPERTY.search(detail)) is not None:
        return RecordRejected(text, code="INVALID_PROPERTY", field=match.group("field"))
    if _FIELDS.search(detail) or _NO_MODULE.search(detail):
        return ConnectorConfigError(f"{text}; fix the field map or the module names")
    if _QUERY.search(detail):
        return VendorError(text)
    if _ACCESS.search(detail):
        return RecordRejected(text, code="ACCESS_DENIED")
    return RecordRejected(text, code="BAD_REQUEST")
