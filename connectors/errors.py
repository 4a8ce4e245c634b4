"""The error taxonomy every connector raises, and what the hub does about each.

Public entry points: :class:`ConnectorError` and its subclasses, :class:`Action`,
:class:`Fault`, :func:`classify`, and for the message of refused credentials
:func:`credentials_refused` with :func:`setting_path`.

Each error type carries *what to do* (``action``) and *whose fault it is* (``fault``) as class
attributes, so the hub decides between retry, dead-letter and stop by looking at the type,
never at a message string. Per-record vendor rejections inside a batch are not raised: they come
back as :class:`connectors.base.WriteResult` with an error, so the rest of the batch commits.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What the caller should do when an operation fails."""

    RETRY = "retry"  # transient: the same request may succeed if sent again
    BACKOFF = "backoff"  # the vendor asked us to slow down; wait, then retry
    REFRESH_AUTH = "refresh_auth"  # the access token expired; refresh once, then retry
    REJECT_RECORD = "reject_record"  # this record is bad; dead-letter it, go on with the rest
    FAIL_RUN = "fail_run"  # nothing sent to this system can succeed; stop syncing it


class Fault(StrEnum):
    """Whose fault a failure is, for the message a person reads."""

    CONFIG = "config"  # the user's settings or credentials
    TRANSIENT = "transient"  # the network or a busy vendor
    VENDOR = "vendor"  # the vendor sent something we cannot use
    DATA = "data"  # the record itself
    BUG = "bug"  # crmhub


class ConnectorError(Exception):
    """Base of every error a connector raises. ``system`` names the configured system."""

    action: Action = Action.FAIL_RUN
    fault: Fault = Fault.BUG
    exit_code: int = 1

    def __init__(self, message: str, *, system: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system

    def __str__(self) -> str:
        return f"{self.system}: {self.message}" if self.system else self.message


class TransientError(ConnectorError):
    """A connection reset, a timeout or a 5xx: safe to retry when the request is idempotent."""

    action = Action.RETRY
    fault = Fault.TRANSIENT


class RateLimited(TransientError):
    """HTTP 429 or a vendor's own throttling code; ``retry_after`` is in seconds when known."""

    action = Action.BACKOFF

    def __init__(
        self, message: str, *, retry_after: float | None = None, system: str | None = None
    ) -> None:
        super().__init__(message, system=system)
        self.retry_after = retry_after


class AuthExpired(ConnectorError):
    """The access token expired; the client refreshes it once and repeats the request."""

    action = Action.REFRESH_AUTH
    fault = Fault.TRANSIENT


class AuthError(ConnectorError):
    """The vendor refused our credentials (revoked token, wrong secret, missing scope)."""

    action = Action.FAIL_RUN
    fault = Fault.CONFIG
    exit_code = 3


class Unreachable(ConnectorError):
    """The vendor could not be reached at all, after retries (DNS, refused, TLS failure)."""

    action = Action.FAIL_RUN
    fault = Fault.TRANSIENT
    exit_code = 3


class VendorError(ConnectorError):
    """The vendor answered with something we cannot use: garbage, an unknown error shape."""

    action = Action.FAIL_RUN
    fault = Fault.VENDOR


class RecordRejected(ConnectorError):
    """The vendor refused one record (validation, duplicate, not found)."""

    action = Action.REJECT_RECORD
    fault = Fault.DATA

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        system: str | None = None,
    ) -> None:
        super().__init__(message, system=system)
        self.code = code
        self.field = field


class ConnectorConfigError(ConnectorError):
    """A connector's settings are unusable (missing credential, malformed URL)."""

    action = Action.FAIL_RUN
    fault = Fault.CONFIG
    exit_code = 2


def setting_path(system: str | None, key: str) -> str:
    """Where a user changes a connector setting: ``systems.<system>.<key>`` in the config file
    (the key alone when the connector was built without a system name)."""
    return f"systems.{system}.{key}" if system else key


def credentials_refused(what: str, vendor_said: str, fix: str) -> AuthError:
    """The AuthError for credentials a vendor refused, in one shape for every connector.

    ``what`` names the credential (``"the refresh token"``), ``vendor_said`` quotes the vendor's
    code and words (never the request), and ``fix`` tells the user what to do, naming the
    settings to change with :func:`setting_path`: "the refresh token was refused (HTTP 400
    BAD_REFRESH_TOKEN: missing or unknown refresh token): install the app again and set
    systems.hubspot.refresh_token to its new refresh token".
    """
    return AuthError(f"{what} was refused ({vendor_said}): {fix}")


def classify(error: BaseException) -> Action:
    """The action for any exception: ours by type, anything else is a bug that stops the run."""
    if isinstance(error, ConnectorError):
        return error.action
    return Action.FAIL_RUN
