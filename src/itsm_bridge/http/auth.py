"""Authentication as ``requests.auth.AuthBase`` objects built from explicit settings.

Every class here keeps its secrets out of ``repr`` and registers them with the redactor, so that a
secret that leaks into a vendor's error body or a log line is masked there too.

OAuth 2.0 refreshes inside the auth object: before expiry (with a safety margin) and once after a
401. A rotated refresh token is handed to the caller's ``on_token`` callback so it can be
persisted; losing a rotated token locks a scheduled job out.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from requests.auth import AuthBase

from itsm_bridge import _json
from itsm_bridge.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitedError,
    RequestContext,
    ResponseFormatError,
    ServerError,
    SourceConnectionError,
)
from itsm_bridge.http.redaction import redact_text, redact_url, register_secret
from itsm_bridge.http.transport import http_url

__all__ = ["BasicAuth", "BearerAuth", "OAuth2", "OAuth2Token"]


class BasicAuth(AuthBase):
    """HTTP Basic (ServiceNow user and password; Jira Cloud e-mail and API token)."""

    def __init__(self, username: str, password: str) -> None:
        if not username:
            raise ConfigurationError("BasicAuth needs a username")
        if ":" in username:
            # the server splits "user:password" at the first colon (RFC 7617)
            raise ConfigurationError("a Basic auth user name cannot contain ':' (RFC 7617)")
        self.username = username
        self._password = password
        register_secret(password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"
        register_secret(token)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._header
        return r

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BasicAuth) and other._header == self._header

    def __hash__(self) -> int:
        return hash(self._header)


class BearerAuth(AuthBase):
    """A static bearer token (Jira Data Center personal access token, a pre-issued OAuth token)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ConfigurationError("BearerAuth needs a token")
        self._token = token
        register_secret(token)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


@dataclass(frozen=True)
class OAuth2Token:
    """A token as issued; ``expires_at`` is on the OAuth2 object's clock (epoch seconds)."""

    access_token: str
    expires_at: float | None
    refresh_token: str | None = None
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return f"OAuth2Token(access_token='***', expires_at={self.expires_at!r})"


Grant = Literal["client_credentials", "password", "refresh_token"]

_REFUSED_FOR_S = 300.0  # how long a refused grant answers for itself (see OAuth2._refused)


class OAuth2(AuthBase):
    """OAuth 2.0 with the client-credentials, password or refresh-token grant.

    ``token_url`` is the vendor's endpoint (ServiceNow ``/oauth_token.do``, Atlassian
    ``https://auth.atlassian.com/oauth/token``). ``on_token`` receives each new token; persist its
    ``refresh_token`` when the vendor rotates it. ``refresh_margin`` seconds before expiry the token
    is renewed pre-emptively.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        grant: Grant = "client_credentials",
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        scope: str | None = None,
        on_token: Callable[[OAuth2Token], None] | None = None,
        refresh_margin: float = 60.0,
        timeout: tuple[float, float] = (10.0, 30.0),
        verify: bool | str = True,
        clock: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        json_body: bool = False,
        allow_insecure_http: bool = False,
    ) -> None:
        # the client secret and password go there
        http_url(token_url, what="the OAuth2 token URL", allow_insecure_http=allow_insecure_http)
        if grant == "password" and not (username and password):
            raise ConfigurationError("the OAuth2 password grant needs username and password")
        if grant == "refresh_token" and not refresh_token:
            raise ConfigurationError("the OAuth2 refresh_token grant needs a refresh_token")
        self.token_url = token_url
        self.client_id = client_id
        self.grant = grant
        self.scope = scope
        self.username = username
        self._client_secret = client_secret
        self._password = password
        self._refresh_token = refresh_token
        self._on_token = on_token
        self._margin = refresh_margin
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._session = session or requests.Session()
        self._json_body = json_body
        self._lock = threading.Lock()
        self._token: OAuth2Token | None = None
        self._stale: OAuth2Token | None = None
        # A refused grant, and when: threads waiting on the lock (and requests within the next
        # minutes) get the same error instead of posting the same wrong secret again, since
        # identity providers lock an account after a few failed logins.
        self._refused: tuple[float, AuthenticationError] | None = None
        for secret in (client_secret, password, refresh_token):
            register_secret(secret)

    def __repr__(self) -> str:
        return (
            f"OAuth2(token_url={redact_url(self.token_url)!r}, client_id={self.client_id!r}, "
            f"grant={self.grant!r}, secrets='***')"
        )

    @property
    def token(self) -> OAuth2Token | None:
        return self._token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._header(self._current())
        return r

    def refresh_after_401(self, failed: requests.PreparedRequest | None = None) -> bool:
        """Called by the transport once after a 401: renew the token the request carried.

        When another thread has already replaced that token, the new one is simply resent; so a
        burst of 401s on a shared auth costs one token request, not one per thread.
        """
        with self._lock:
            sent = failed.headers.get("Authorization") if failed is not None else None
            if sent is None or (self._token is not None and sent == self._header(self._token)):
                self._stale = self._token
                self._token = None
        return True

    @staticmethod
    def _header(token: OAuth2Token) -> str:
        return f"{token.token_type or 'Bearer'} {token.access_token}"

    def _current(self) -> OAuth2Token:
        with self._lock:
            token = self._token
            if token is None or (
                token.expires_at is not None and token.expires_at - self._margin <= self._clock()
            ):
                if self._refused is not None and self._clock() < self._refused[0]:
                    raise self._refused[1]
                try:
                    token = self._renew(refreshing=token is not None or self._stale is not None)
                except AuthenticationError as exc:
                    self._refused = (self._clock() + _REFUSED_FOR_S, exc)
                    raise
                self._refused = None
                self._token = token
                self._stale = None
            return token

    def _renew(self, *, refreshing: bool) -> OAuth2Token:
        """Refresh with the refresh token when there is one; fall back to the primary grant.

        A refresh token can be revoked or expire while the client secret or password still work;
        then the primary grant is the way back in, and only its failure is an error.
        """
        if self._refresh_token and (refreshing or self.grant == "refresh_token"):
            try:
                return self._fetch(self._refresh_form())
            except AuthenticationError:
                if self.grant == "refresh_token":
                    raise
        return self._fetch(self._grant_form())

    def _base_form(self) -> dict[str, str]:
        form: dict[str, str] = {"client_id": self.client_id}
        if self._client_secret:
            form["client_secret"] = self._client_secret
        if self.scope:
            form["scope"] = self.scope
        return form

    def _refresh_form(self) -> dict[str, str]:
        return {
            **self._base_form(),
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token or "",
        }

    def _grant_form(self) -> dict[str, str]:
        form = self._base_form()
        if self.grant == "password":
            form.update(
                grant_type="password", username=self.username or "", password=self._password or ""
            )
        else:
            form["grant_type"] = "client_credentials"
        return form

    def _fetch(self, form: dict[str, str]) -> OAuth2Token:
        try:
            if self._json_body:
                response = self._session.post(
                    self.token_url, json=form, timeout=self._timeout, verify=self._verify
                )
            else:
                response = self._session.post(
                    self.token_url, data=form, timeout=self._timeout, verify=self._verify
                )
        except requests.RequestException as exc:
            raise SourceConnectionError(
                f"token request failed: {type(exc).__name__}",
                context=RequestContext(method="POST", url=redact_url(self.token_url)),
            ) from None
        context = RequestContext(
            method="POST",
            url=redact_url(self.token_url),
            status=response.status_code,
            body_excerpt=redact_text(response.text[:300]) or None,
        )
        if response.status_code == 429:
            raise RateLimitedError("the token endpoint is rate limiting", context=context)
        if response.status_code >= 500:
            raise ServerError("the token endpoint is failing", context=context)
        if response.status_code >= 400:
            raise AuthenticationError(
                f"the token endpoint refused the {form.get('grant_type')} grant", context=context
            )
        try:
            payload: Any = _json.loads(response.content)
        except ValueError:
            # a login or hibernation page, a proxy's: not the credentials' fault
            raise ResponseFormatError(
                "the token endpoint answered with something that is not JSON", context=context
            ) from None
        access = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(access, str) or not access:
            raise AuthenticationError(
                "the token endpoint answered without an access_token", context=context
            )
        register_secret(access)
        expires_in = payload.get("expires_in")
        try:
            expires_at = self._clock() + float(expires_in) if expires_in is not None else None
        except (TypeError, ValueError):
            raise ResponseFormatError(
                "the token endpoint's expires_in is not a number of seconds", context=context
            ) from None
        rotated = payload.get("refresh_token")
        if rotated:
            register_secret(str(rotated))
            self._refresh_token = str(rotated)
        token = OAuth2Token(
            access_token=access,
            expires_at=expires_at,
            refresh_token=self._refresh_token,
            # some servers answer "bearer"; the header scheme is case-insensitive but logs are not
            token_type=_scheme(str(payload.get("token_type") or "Bearer")),
        )
        if self._on_token is not None:
            self._on_token(token)
        return token


def _scheme(token_type: str) -> str:
    return "Bearer" if token_type.lower() == "bearer" else token_type
