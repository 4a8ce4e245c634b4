"""SuiteCRM's OAuth2 token endpoint and the detection of the API root.

Public entry points: :class:`TokenSource` (``__call__`` for
:class:`~connectors.http.OAuthRefresher`, ``root``), :data:`API_ROOTS`,
:func:`classify_token_answer`, :func:`forget_detected_roots`.

SuiteCRM serves its V8 API under ``/Api`` (7.x) or ``/legacy/Api`` (8.x, where the 7.x code lives
in ``public/legacy``), both answering ``POST {root}/access_token`` (League OAuth2 server 8.4,
facts 1.1). Unless the settings name the root, the first token request finds it: 8.x's root is
tried first, and an answer that is not the token endpoint's (404, 405, an HTML page, JSON with
neither a token nor an OAuth error) moves on to 7.x's. The root found is remembered per site for
the process, so later runs pay nothing.

Grants: ``client_credentials`` (no refresh token) or ``password`` (with a refresh token, used
for later tokens; when it is refused, the password grant is asked again). A SuiteCRM OAuth
client works only with the grant it was created for, so a refusal names that possibility, and
the settings to change (give :func:`classify_token_answer` the system and grant).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Final, Literal

import requests

from connectors.errors import (
    AuthError,
    ConnectorConfigError,
    ConnectorError,
    VendorError,
    credentials_refused,
    setting_path,
)
from connectors.http import HttpClient, default_classifier

__all__ = ["API_ROOTS", "TokenSource", "classify_token_answer", "forget_detected_roots"]

API_ROOTS: Final = ("/legacy/Api", "/Api")
"""The roots tried in order: SuiteCRM 8.x, then 7.x."""

Grant = Literal["client_credentials", "password"]

_detected: dict[str, str] = {}
_detected_lock = threading.Lock()


def forget_detected_roots() -> None:
    """Forget every API root found so far (tests; a site upgraded from 7.x to 8.x)."""
    with _detected_lock:
        _detected.clear()


class _WrongRoot(VendorError):
    """What answered at this root is not SuiteCRM's token endpoint."""


def _oauth_body(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def classify_token_answer(
    response: requests.Response, *, system: str | None = None, grant: Grant | None = None
) -> ConnectorError | None:
    """The token endpoint's answer in the taxonomy (League's ``OAuthServerException`` shapes).

    ``invalid_client`` (401), ``invalid_grant`` (400), ``unsupported_grant_type`` and
    ``invalid_request`` (a refused refresh token) → AuthError naming the settings of ``system``
    to fix for its ``grant``; 5xx and 429 as plain HTTP; a 404, 405 or an answer that is not
    OAuth JSON → not the token endpoint (a wrong API root).
    """
    status = response.status_code
    if status < 300:
        return None
    if status >= 500 or status == 429:
        return default_classifier(response)
    body = _oauth_body(response)
    error = body.get("error") if body is not None else None
    if not isinstance(error, str):
        return _WrongRoot(f"HTTP {status}: not SuiteCRM's token endpoint")
    said = body.get("error_description") or body.get("message") or error if body else error
    hint = body.get("hint") if body else None
    said = f"HTTP {status} {error}: {said}" + (f", {hint}" if hint else "")
    client = f"{setting_path(system, 'client_id')} and {setting_path(system, 'client_secret')}"
    if error == "invalid_client":
        return credentials_refused(
            "the OAuth client",
            said,
            f"set {client} to an OAuth client of this site made for the "
            f"{grant or 'configured'} grant (Admin > OAuth2 Clients and Tokens; a SuiteCRM "
            "OAuth client works only with the grant it was created for)",
        )
    if error == "invalid_grant":
        return credentials_refused(
            "the API user's login",
            said,
            f"set {setting_path(system, 'username')} and {setting_path(system, 'password')} "
            "to the user's current ones",
        )
    if error == "invalid_request":
        # Only a refresh token is refused this way; a new one comes with the password grant.
        return credentials_refused("the refresh token", said, "log in with the password grant")
    return credentials_refused(
        "the token request", said, f"check {setting_path(system, 'grant_type')} and {client}"
    )


class TokenSource:
    """Fetches access tokens for :class:`~connectors.http.OAuthRefresher` (see the module doc).

    ``client`` is a no-auth :class:`HttpClient` on the site root. ``api_root`` fixes the root;
    ``None`` detects it. Thread-safe through the refresher's own lock (it calls one at a time).
    """

    def __init__(
        self,
        client: HttpClient,
        *,
        grant: Grant,
        client_id: str,
        client_secret: Callable[[], str],
        username: str | None = None,
        password: Callable[[], str] | None = None,
        api_root: str | None = None,
    ) -> None:
        self.client = client
        self.grant = grant
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._fixed_root = api_root
        self._refresh_token: str | None = None

    @property
    def root(self) -> str | None:
        """The API root in use: the configured one, or the one detected (None before)."""
        if self._fixed_root is not None:
            return self._fixed_root
        with _detected_lock:
            return _detected.get(self.client.base_url)

    def __call__(self) -> tuple[str, float]:
        if self._refresh_token is not None:
            form = {
                "grant_type": "refresh_token",
                "client_id": self._client_id,
                "client_secret": self._client_secret(),
                "refresh_token": self._refresh_token,
            }
            try:
                return self._token(form)
            except AuthError:
                # Expired (a month) or revoked: the password grant mints a new pair.
                self._refresh_token = None
        return self._token(self._grant_form())

    def _grant_form(self) -> dict[str, str]:
        form = {
            "grant_type": self.grant,
            "client_id": self._client_id,
            "client_secret": self._client_secret(),
        }
        if self.grant == "password":
            assert self._username is not None
            assert self._password is not None
            form["username"] = self._username
            form["password"] = self._password()
        return form

    def _token(self, form: dict[str, str]) -> tuple[str, float]:
        known = self.root
        if known is not None:
            try:
                return self._ask(known, form)
            except _WrongRoot as exc:
                if self._fixed_root is not None:
                    raise ConnectorConfigError(
                        f"{exc.message}; check base_url (the site root) and api_root",
                        system=self.client.system,
                    ) from None
                # The site moved (a 7.x site upgraded to 8.x): look for the root again.
                with _detected_lock:
                    _detected.pop(self.client.base_url, None)
        for root in API_ROOTS:
            try:
                found = self._ask(root, form)
            except _WrongRoot:
                continue
            except AuthError:
                # An OAuth refusal still proves this is the token endpoint.
                self._remember(root)
                raise
            self._remember(root)
            return found
        raise ConnectorConfigError(
            f"no SuiteCRM token endpoint at {' or '.join(r + '/access_token' for r in API_ROOTS)} "
            "below the base URL; check base_url (the site root) or set api_root",
            system=self.client.system,
        )

    def _remember(self, root: str) -> None:
        with _detected_lock:
            _detected[self.client.base_url] = root

    def _ask(self, root: str, form: dict[str, str]) -> tuple[str, float]:
        response = self.client.post(
            f"{root}/access_token",
            data=form,
            headers={"Accept": "application/json"},
            idempotent=True,  # minting a second token does no harm
            expect_json=False,
        )
        try:
            body = json.loads(response.text)
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise _WrongRoot(f"HTTP {response.status}: no access_token in the answer")
        assert isinstance(body, dict)
        refresh = body.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._refresh_token = refresh
        return token, body.get("expires_in", 3600)
