"""Redaction: secrets never reach logs, reprs, exceptions, run reports or the store.

Everything that leaves the transport for a human (log records, error contexts) passes through
these functions. They are deliberately greedy: a false positive costs a ``***`` in a log line, a
false negative costs a leaked credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SENSITIVE_HEADERS",
    "SENSITIVE_KEYS",
    "redact_headers",
    "redact_text",
    "redact_url",
    "register_secret",
]

MASK = "***"

SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-usertoken",
        "x-atlassian-token",
    }
)

SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "api-key",
        "auth",
        "client_secret",
        "code",
        "id_token",
        "key",
        "passwd",
        "password",
        "private_token",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
        "session",
        "sessionid",
        "jsessionid",
        "glide_user_route",
        "glide_session_store",
    }
)

_KEY_ALTERNATION = "|".join(sorted((re.escape(k) for k in SENSITIVE_KEYS), key=len, reverse=True))
# "password": "x"  /  password=x  /  "token":"x"
_JSON_PAIR = re.compile(
    r'(?i)("(?:' + _KEY_ALTERNATION + r')"\s*:\s*)"(?:[^"\\]|\\.)*"',
)
_FORM_PAIR = re.compile(r"(?i)(?<![\w-])((?:" + _KEY_ALTERNATION + r")=)[^&\s\"']+")
_AUTH_SCHEME = re.compile(r"(?i)\b(Basic|Bearer|Token|Digest|Negotiate)\s+[A-Za-z0-9._~+/=-]{6,}")
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears, even in free text."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def _is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(("_token", "_secret", "password"))


def redact_url(url: str) -> str:
    """Mask userinfo and sensitive query parameters, keep the rest readable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _is_sensitive_key(k) else v) for k, v in pairs], safe="^=,*:@"
        )
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        k: (MASK if k.lower() in SENSITIVE_HEADERS or _is_sensitive_key(k) else redact_text(v))
        for k, v in items
    }


def redact_text(text: str) -> str:
    """Mask credentials in free text: JSON/form pairs, auth schemes, URL userinfo, known secrets."""
    if not text:
        return text
    out = _JSON_PAIR.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    out = _FORM_PAIR.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", out)
    for secret in _known_secrets:
        if secret in out:
            out = out.replace(secret, MASK)
    return out
