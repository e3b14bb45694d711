"""Redaction: secrets never reach logs, reprs, exceptions, run reports or the store.

Everything that leaves the transport for a human (log records, error contexts) passes through
these functions. They are deliberately greedy: a false positive costs a ``***`` in a log line, a
false negative costs a leaked credential.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SENSITIVE_HEADERS",
    "SENSITIVE_KEYS",
    "RedactingFilter",
    "install_log_redaction",
    "is_sensitive_key",
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

# Secret as a query parameter, ordinary as a JSON field (a Jira issue "key", an error "code").
_URL_ONLY_KEYS = frozenset({"key", "code", "sig"})


def _alternation(keys: Iterable[str]) -> str:
    words = sorted((re.escape(k) for k in keys), key=len, reverse=True)
    # the same suffixes is_sensitive_key accepts: x_token, client_secret, user_password
    return "|".join(words) + r"|[\w-]*(?:_token|_secret|password)"


_KEY_ALTERNATION = _alternation(SENSITIVE_KEYS)
# "password": "x" in JSON, and 'password': 'x' in a Python repr that found its way into a message
_QUOTED_PAIR = re.compile(
    r"""(?i)((["'])(?:"""
    + _alternation(SENSITIVE_KEYS - _URL_ONLY_KEYS)
    + r""")\2\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
)
_FORM_PAIR = re.compile(r"(?i)(?<![\w-])((?:" + _KEY_ALTERNATION + r")=)[^&\s\"']+")
_AUTH_SCHEME = re.compile(r"(?i)\b(Basic|Bearer|Token|Digest|Negotiate)\s+[A-Za-z0-9._~+/=-]{6,}")
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")

# Longest first, so that a secret containing another is masked whole.
_known_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears, even in free text.

    Values shorter than four characters are not remembered: masking them would shred every log
    line, and they are not worth much as secrets anyway.
    """
    global _known_secrets
    if value and len(value) >= 4 and value not in _known_secrets:
        with _secrets_lock:
            # Replace, never mutate: readers in other threads iterate without the lock.
            _known_secrets = tuple(sorted({*_known_secrets, value}, key=len, reverse=True))


def is_sensitive_key(key: str) -> bool:
    """Whether a query parameter, form field or JSON key of this name holds a secret."""
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
            [(k, MASK if is_sensitive_key(k) else v) for k, v in pairs], safe="^=,*:@"
        )
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {
        k: (MASK if k.lower() in SENSITIVE_HEADERS or is_sensitive_key(k) else redact_text(v))
        for k, v in items
    }


def redact_text(text: str) -> str:
    """Mask credentials in free text: JSON/form pairs, auth schemes, URL userinfo, known secrets."""
    if not text:
        return text
    out = _QUOTED_PAIR.sub(lambda m: f"{m.group(1)}{m.group(3)[0]}{MASK}{m.group(3)[0]}", text)
    out = _FORM_PAIR.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", out)
    for secret in _known_secrets:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """Masks secrets in records of loggers we do not own (urllib3 logs every request line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_THIRD_PARTY_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to the loggers of the HTTP stack (idempotent).

    urllib3 logs ``"GET /path?api_key=... HTTP/1.1" 200`` at DEBUG; a user who turns DEBUG on
    to diagnose a pull must not leak a token into a ticket.
    """
    for name in _THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
