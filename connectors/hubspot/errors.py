"""HubSpot's answers in the error taxonomy of :mod:`connectors.errors`.

Public entry points: :func:`classify_response` (the ``HttpClient`` classifier),
:func:`classify_token_response` (for the OAuth token endpoint), :class:`DailyLimitReached`,
:func:`error_body`, :func:`rejection` and :func:`existing_id`.

HubSpot's error body (HS-OAS ``Error``) is ``{"status":"error","message","correlationId",
"category"?,"subCategory"?,"errors"?:[{"message","code"?,"context"?}],"context"?}``, and HubSpot
says to treat every field as optional. Rate-limit answers are different again:
``{"errorType":"RATE_LIMIT","policyName":"DAILY"|"TEN_SECONDLY_ROLLING",...}``; the search API's
own limit says "You have reached your secondly limit." and names no policy we rely on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests

from connectors.errors import (
    Action,
    AuthError,
    AuthExpired,
    ConnectorError,
    Fault,
    RateLimited,
    RecordRejected,
    VendorError,
    credentials_refused,
    setting_path,
)
from connectors.http import body_excerpt, default_classifier, parse_retry_after

__all__ = [
    "ContactExists",
    "DailyLimitReached",
    "classify_response",
    "classify_token_response",
    "error_body",
    "existing_id",
    "rejection",
]

# HubSpot's burst window: waiting one whole window always frees the budget. The official Node
# SDK waits 10 s (times the attempt) on TEN_SECONDLY_ROLLING and 1 s on the search secondly limit.
TEN_SECONDS = 10.0
SEARCH_WAIT = 1.0
# "HTTP 423 Locked": a record is being written by another process; third-party clients wait ~2 s.
LOCKED_WAIT = 2.0
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class DailyLimitReached(ConnectorError):
    """The account's daily request budget is spent (429 ``policyName: DAILY``).

    Not a :class:`~connectors.errors.RateLimited`: retrying within the run cannot help (the budget
    resets at midnight in the account's time zone), so the client does not retry it; the hub backs
    off this system and the next scheduled run carries on.
    """

    action = Action.BACKOFF
    fault = Fault.TRANSIENT


class ContactExists(RecordRejected):
    """A create refused because a contact has this email (409 ``CONFLICT``); ``existing_id``
    is that contact's id, which the connector links to instead of failing."""

    def __init__(self, message: str, *, existing_id: str, system: str | None = None) -> None:
        super().__init__(message, code="CONFLICT", field="email", system=system)
        self.existing_id = existing_id


def error_body(response: requests.Response) -> Mapping[str, Any]:
    """The JSON error body, or ``{}`` when there is none or it is not an object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, Mapping) else {}


def _describe(body: Mapping[str, Any], response: requests.Response) -> str:
    message = body.get("message")
    category = body.get("category") or body.get("errorType")
    if isinstance(message, str) and message:
        return f"{category}: {message}" if category else message
    return body_excerpt(response)


def rejection(error: Mapping[str, Any], *, system: str | None = None) -> RecordRejected:
    """A per-record HubSpot error (a 207 ``errors[]`` item or a 400 body) as RecordRejected.

    The code is the most specific one HubSpot gives (``errors[0].code`` such as
    ``PROPERTY_DOESNT_EXIST``, else ``category``); the field is the property it names. A
    duplicate-email CONFLICT that names the existing contact is a :class:`ContactExists`.
    """
    message = str(error.get("message") or "rejected by HubSpot")
    code = error.get("category")
    if code == "CONFLICT" and (existing := existing_id(error)) is not None:
        return ContactExists(message, existing_id=existing, system=system)
    field: str | None = None
    details = error.get("errors")
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        first = details[0]
        code = first.get("code") or code
        names = _context_list(first.get("context"), "propertyName")
        field = names[0] if names else None
        if isinstance(first.get("message"), str):
            message = str(first["message"])
    if field is None:
        names = _context_list(error.get("context"), "propertyName")
        field = names[0] if names else None
    if field is None and code == "CONFLICT":
        field = "email"
    return RecordRejected(message, code=str(code) if code else None, field=field, system=system)


def _context_list(context: object, key: str) -> list[str]:
    if not isinstance(context, Mapping):
        return []
    values = context.get(key)
    if isinstance(values, list):
        return [str(v) for v in values]
    return [str(values)] if values is not None else []


def existing_id(error: Mapping[str, Any]) -> str | None:
    """The id of the contact a CONFLICT names (``context.existingId`` or the message)."""
    ids = _context_list(error.get("context"), "existingId")
    if ids:
        return ids[0]
    found = _EXISTING_ID.search(str(error.get("message") or ""))
    return found.group(1) if found else None


def _rate_limited(response: requests.Response, body: Mapping[str, Any]) -> ConnectorError:
    policy = str(body.get("policyName") or "")
    message = str(body.get("message") or "")
    hinted = parse_retry_after(response.headers.get("Retry-After"))
    text = f"HTTP 429, {_describe(body, response)}" + (f" (policy {policy})" if policy else "")
    if policy == "DAILY":
        return DailyLimitReached(
            f"{text}; the account's daily API budget is spent until midnight in its time zone"
        )
    if hinted is not None:
        return RateLimited(text, retry_after=hinted)
    if "secondly" in message.lower() and policy != "TEN_SECONDLY_ROLLING":
        return RateLimited(text, retry_after=SEARCH_WAIT)
    return RateLimited(text, retry_after=TEN_SECONDS)


def classify_response(response: requests.Response) -> ConnectorError | None:
    """HubSpot's meaning of an answer; plain HTTP (``default_classifier``) for the rest.

    401 → AuthExpired (the client renews the token once; ``EXPIRED_AUTHENTICATION`` is the
    expected case); 403 → AuthError (a missing scope); 429 by policy: ``TEN_SECONDLY_ROLLING``
    → RateLimited after ``Retry-After`` or one 10-second window, the search limit → 1 s,
    ``DAILY`` → :class:`DailyLimitReached`; 400/404/409 → RecordRejected with HubSpot's code
    and property (a batch caller isolates the record); 423 → RateLimited 2 s; 530 (HubSpot's
    answer to a malformed token) → AuthError.
    """
    status = response.status_code
    if status < 300:
        return None
    body = error_body(response)
    described = _describe(body, response)
    if status == 401:
        return AuthExpired(f"HTTP 401, {described}")
    if status == 403:
        return AuthError(f"HTTP 403, {described} (check the app's scopes)")
    if status == 429:
        return _rate_limited(response, body)
    if status == 423:
        return RateLimited(f"HTTP 423, {described}", retry_after=LOCKED_WAIT)
    if status == 530:
        return AuthError(f"HTTP 530, HubSpot could not read the token: {described}")
    if status in (400, 404, 409) and body:
        rejected = rejection(body)
        if status == 404 and rejected.code is None:
            rejected.code = "NOT_FOUND"
        rejected.message = f"HTTP {status}, {rejected.message}"
        rejected.args = (rejected.message,)
        return rejected
    return default_classifier(response)


def classify_token_response(
    response: requests.Response, *, system: str | None = None
) -> ConnectorError | None:
    """The OAuth token endpoint: a refused refresh (400/401/403) is an AuthError naming the
    settings of ``system`` to fix.

    HubSpot names the problem in ``status`` (``BAD_REFRESH_TOKEN``: the refresh token was
    revoked, or the app uninstalled; ``BAD_CLIENT_ID``: the app's client id or secret).
    """
    status = response.status_code
    if status < 300:
        return None
    if status not in (400, 401, 403):
        return default_classifier(response) or VendorError(f"HTTP {status}")
    body = error_body(response)
    code = str(body.get("status") or "")
    code = code if code and code != "error" else str(body.get("category") or "")
    message = body.get("message")
    said = f"HTTP {status} {code}: " if code else f"HTTP {status}: "
    said += message if isinstance(message, str) and message else body_excerpt(response)
    client_id, client_secret, refresh_token = (
        setting_path(system, key) for key in ("client_id", "client_secret", "refresh_token")
    )
    if code == "BAD_REFRESH_TOKEN":
        return credentials_refused(
            "the OAuth refresh token",
            said,
            "it was revoked or the app uninstalled; install the app again and set "
            f"{refresh_token} to the refresh token it gives",
        )
    if "CLIENT" in code:
        return credentials_refused(
            "the app's client credentials",
            said,
            f"set {client_id} and {client_secret} to the values on the app's Auth page",
        )
    return credentials_refused(
        "the OAuth refresh", said, f"check {client_id}, {client_secret} and {refresh_token}"
    )
