"""Zoho's OAuth refresh flow, one cached access token per refresh token per process.

Public entry points: :class:`ZohoAccount` (``auth``, ``api_domain``, ``slots``),
:func:`shared_account`, :func:`clear_shared_accounts`, :data:`ACCOUNTS_URLS`.

Zoho lets one refresh token mint at most 10 access tokens in 10 minutes and then blocks it for
the rest of the window (facts B1), while the hub builds a new connector for every run. So the
token is not the connector's: every connector of one process that holds the same credentials
shares one :class:`ZohoAccount` (the cached token, the ``api_domain`` the token endpoint named,
and the bound on concurrent requests), and a :class:`~connectors.ratelimit.RateLimiter` of
``10/10 minutes`` (in the configured limits storage, so Redis extends it across workers) refuses
to ask for an eleventh token instead of getting the refresh token blocked.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from connectors.errors import (
    ConnectorError,
    RateLimited,
    VendorError,
    credentials_refused,
    setting_path,
)
from connectors.http import HttpClient, OAuthRefresher, default_classifier
from connectors.ratelimit import RateLimiter

__all__ = [
    "ACCOUNTS_URLS",
    "TOKEN_PATH",
    "ZohoAccount",
    "clear_shared_accounts",
    "shared_account",
]

log = logging.getLogger("crmhub.zoho")

ACCOUNTS_URLS: Final[Mapping[str, str]] = {
    "com": "https://accounts.zoho.com",
    "eu": "https://accounts.zoho.eu",
    "in": "https://accounts.zoho.in",
    "com.au": "https://accounts.zoho.com.au",
    "jp": "https://accounts.zoho.jp",
    "ca": "https://accounts.zohocloud.ca",
    "com.cn": "https://accounts.zoho.com.cn",
    "sa": "https://accounts.zoho.sa",
}
"""The accounts (token) server of each Zoho data centre (ZO-SDK ``dc/*_data_center.py``)."""

TOKEN_PATH: Final = "/oauth/v2/token"  # noqa: S105 - a path, not a secret
REFRESH_LIMIT: Final = "10/10 minutes"
# Refresh this long before the token expires: a token that dies between apply() and the
# vendor's check costs a 401 and a second request.
_SKEW_SECONDS: Final = 300.0
# What Zoho's token endpoint says (HTTP 200 or 400) when the refresh token is revoked, unknown or
# of another data centre, and when the client is wrong.
_CODE_REFUSED: Final = "invalid_code"
_CLIENT_REFUSED: Final = frozenset(
    {"invalid_client", "invalid_client_secret", "unauthorized_client"}
)
_THROTTLED: Final = "Access Denied"
_BLOCK_SECONDS: Final = 600.0


def _token_classifier(
    response: requests.Response, *, system: str | None = None
) -> ConnectorError | None:
    """The token endpoint's answers; a refusal or throttle may come with HTTP 200 or 400. A
    refusal names the settings of ``system`` to fix."""
    if response.status_code >= 500 or response.status_code == 429:
        return default_classifier(response)
    try:
        body = response.json()
    except ValueError:
        return default_classifier(response)
    error = body.get("error") if isinstance(body, dict) else None
    if error is None:
        return default_classifier(response)
    if error == _THROTTLED:
        return RateLimited(
            "Zoho's token endpoint refused to mint another access token (more than 10 in "
            "10 minutes for this refresh token); waiting for its window",
            retry_after=_BLOCK_SECONDS,
        )
    if error == _CODE_REFUSED:
        return credentials_refused(
            "the refresh token",
            f"Zoho answered {error}",
            "it was revoked, or belongs to another data centre or client; generate a new one "
            f"for this client and set {setting_path(system, 'refresh_token')}",
        )
    if error in _CLIENT_REFUSED:
        return credentials_refused(
            "the OAuth client",
            f"Zoho answered {error}",
            f"set {setting_path(system, 'client_id')} and {setting_path(system, 'client_secret')}"
            " to the client's values in Zoho's API console (api-console.zoho.com, or your data "
            "centre's)",
        )
    return VendorError(f"Zoho's token endpoint answered with error {str(error)[:60]!r}")


def _checked_domain(raw: Any, accounts_url: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise VendorError("Zoho's token endpoint returned no api_domain; set api_url")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VendorError(f"Zoho's token endpoint returned an unusable api_domain {raw[:80]!r}")
    if parts.scheme == "http" and urlsplit(accounts_url).scheme == "https":
        # The access token would travel in clear text.
        raise VendorError(f"refusing the plain-http api_domain {raw[:80]!r}; set api_url")
    return raw.rstrip("/")


@dataclass
class ZohoAccount:
    """What every connector of one Zoho login shares in this process.

    ``auth`` applies ``Authorization: Zoho-oauthtoken <token>`` and refreshes it; ``api_domain``
    is the API host the last token response named (``None`` before the first token); ``slots``
    bounds concurrent requests (Zoho counts concurrency per user and app, facts B6).
    """

    key: str
    accounts_url: str
    system: str
    client_id: str
    client_secret: str
    refresh_token: str
    refresh_limiter: RateLimiter
    slots: threading.BoundedSemaphore
    session: requests.Session | None = None
    sleep: Callable[[float], None] | None = None
    api_domain: str | None = None
    auth: OAuthRefresher = field(init=False)

    def __post_init__(self) -> None:
        self.auth = OAuthRefresher(
            self._fetch,
            header="Authorization",
            prefix="Zoho-oauthtoken",
            skew=_SKEW_SECONDS,
            refresh_limiter=self.refresh_limiter,
        )

    def __repr__(self) -> str:
        return f"ZohoAccount({self.accounts_url!r}, client_id={self.client_id!r})"

    def _fetch(self) -> tuple[str, float]:
        # A client per refresh (once an hour): one attempt only, since the API call that needed
        # the token retries as a whole, and a second retry layer would multiply the waits.
        options: dict[str, Any] = {
            "classifier": partial(_token_classifier, system=self.system),
            "max_attempts": 1,
            "secrets": (self.client_secret, self.refresh_token),
        }
        if self.session is not None:
            options["session"] = self.session
        if self.sleep is not None:
            options["sleep"] = self.sleep
        with HttpClient(self.system, self.accounts_url, **options) as client:
            response = client.post(
                TOKEN_PATH,
                data={
                    "grant_type": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": self.refresh_token,
                },
            )
        body = response.json
        if not isinstance(body, dict):
            raise VendorError("Zoho's token endpoint returned no JSON object", system=self.system)
        token = body.get("access_token")
        # ZO-SDK also accepts the expires_in_sec variant.
        expires_in = body.get("expires_in", body.get("expires_in_sec", 3600))
        domain = _checked_domain(body.get("api_domain"), self.accounts_url)
        if self.api_domain is not None and domain != self.api_domain:
            log.warning("%s: Zoho moved the API domain to %s", self.system, domain)
        self.api_domain = domain
        if not isinstance(token, str) or not token:
            raise VendorError("Zoho's token endpoint returned no access token", system=self.system)
        try:
            lifetime = float(str(expires_in))
        except (TypeError, ValueError):
            raise VendorError("Zoho's token endpoint returned no usable expires_in") from None
        return token, lifetime


_accounts: dict[str, ZohoAccount] = {}
_accounts_lock = threading.Lock()


def shared_account(
    *,
    system: str,
    accounts_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    storage_uri: str,
    max_concurrency: int,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ZohoAccount:
    """The process-wide :class:`ZohoAccount` of these credentials, made on first use.

    The key hashes the secrets, so neither the registry nor a Redis key holds them.
    """
    digest = hashlib.sha256(
        "\0".join((accounts_url, client_id, client_secret, refresh_token)).encode("utf-8")
    ).hexdigest()[:24]
    key = f"zoho:{digest}"
    with _accounts_lock:
        account = _accounts.get(key)
        if account is None:
            account = ZohoAccount(
                key=key,
                accounts_url=accounts_url.rstrip("/"),
                system=system,
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=refresh_token,
                refresh_limiter=RateLimiter(
                    REFRESH_LIMIT, key=f"{key}:token", storage_uri=storage_uri
                ),
                slots=threading.BoundedSemaphore(max_concurrency),
                session=session,
                sleep=sleep,
            )
            _accounts[key] = account
        return account


def clear_shared_accounts() -> None:
    """Forget every cached token and domain (tests; a user who rotated credentials)."""
    with _accounts_lock:
        _accounts.clear()
