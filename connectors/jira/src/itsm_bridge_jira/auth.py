"""Jira authentication: Cloud e-mail + API token, Data Center PAT, OAuth 2.0 (3LO).

- Cloud: ``BasicAuth(email, api_token)``; passwords no longer work.
- Data Center 8.14+: ``BearerAuth(personal_access_token)``; a PAT is not a basic-auth password.
- OAuth 2.0 (3LO): Atlassian's token endpoint takes a JSON body and rotates refresh tokens, each
  usable once; ``on_token`` must persist every rotated token or the next run is locked out. API
  calls then go to ``https://api.atlassian.com/ex/jira/{cloudId}``.

https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/
"""

from __future__ import annotations

from collections.abc import Callable

from itsm_bridge import OAuth2, OAuth2Token

__all__ = ["ATLASSIAN_TOKEN_URL", "atlassian_oauth", "cloud_api_url"]

ATLASSIAN_TOKEN_URL = "https://auth.atlassian.com/oauth/token"


def atlassian_oauth(
    *,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    on_token: Callable[[OAuth2Token], None],
    token_url: str = ATLASSIAN_TOKEN_URL,
    verify: bool | str = True,
) -> OAuth2:
    """An OAuth2 auth for a 3LO app holding a (rotating) refresh token."""
    return OAuth2(
        token_url,
        client_id=client_id,
        client_secret=client_secret,
        grant="refresh_token",
        refresh_token=refresh_token,
        on_token=on_token,
        json_body=True,  # quirk: auth.atlassian.com wants JSON, not a form
        verify=verify,
    )


def cloud_api_url(cloud_id: str) -> str:
    """The base URL of a site for OAuth 2.0 calls (``cloudId`` from accessible-resources)."""
    return f"https://api.atlassian.com/ex/jira/{cloud_id}"
