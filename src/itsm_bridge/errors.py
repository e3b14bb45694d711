"""Every error itsm-bridge raises, grouped by what the caller can do about it.

::

    ItsmBridgeError                     anything raised on purpose by itsm-bridge
    ├── ConfigurationError              fix the configuration, then run again        exit 2
    │   ├── UnknownConnectorError       no connector of that name is installed
    │   ├── InvalidOptionsError         connector options or a config file are wrong
    │   ├── UnknownFieldError           a field named in a query or mapping does not exist
    │   ├── EndpointNotFoundError       404: wrong base URL, table or API version
    │   ├── KindUnavailableError        the instance has no collection for a kind (no plugin)
    │   └── InsecureTransportError      plain http:// to a non-loopback host, not allowed
    ├── AccessError                     re-authenticate or get permission            exit 3
    │   ├── AuthenticationError         401: wrong or expired credentials
    │   └── PermissionDeniedError       403: the account may not read this
    ├── SourceUnavailableError          retry later: failing after our retries       exit 4
    │   ├── SourceConnectionError       DNS, refused, reset, TLS, timeouts
    │   ├── RateLimitedError            429 still answered after the retry budget
    │   └── ServerError                 502-504 after the retry budget; 500 at once
    ├── DataError                       bad data: fix or skip the record             exit 5
    │   ├── ResponseFormatError         HTML where JSON was expected, malformed JSON, oversized body
    │   ├── MappingError                a record that cannot become a WorkItem
    │   └── IncompletePullError         paging stuck or repeated, counts that do not add up
    └── StoreError                      the store cannot be written (disk full, locked) exit 6

Every error may carry a :class:`RequestContext`: connector, endpoint, method, URL, status, a body
excerpt and the vendor's request id, all redacted, so that ``str(error)`` is one useful log line
and never contains a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "AccessError",
    "AuthenticationError",
    "ConfigurationError",
    "DataError",
    "EndpointNotFoundError",
    "IncompletePullError",
    "InsecureTransportError",
    "InvalidOptionsError",
    "ItsmBridgeError",
    "KindUnavailableError",
    "MappingError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestContext",
    "ResponseFormatError",
    "ServerError",
    "SourceConnectionError",
    "SourceUnavailableError",
    "StoreError",
    "UnknownConnectorError",
    "UnknownFieldError",
]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where an error happened. Build it only from redacted values (see ``itsm_bridge.http``)."""

    connector: str | None = None
    endpoint: str | None = None
    method: str | None = None
    url: str | None = None
    status: int | None = None
    body_excerpt: str | None = None
    request_id: str | None = None

    def describe(self) -> str:
        parts: list[str] = []
        if self.connector:
            parts.append(f"connector={self.connector}")
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint}")
        if self.method or self.url:
            parts.append(f"{self.method or 'GET'} {self.url or '?'}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.body_excerpt:
            parts.append(f"body={self.body_excerpt!r}")
        return " ".join(parts)


class ItsmBridgeError(Exception):
    """Root of the tree. ``exit_code`` is what the CLI exits with for this group."""

    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        context: RequestContext | None = None,
        source: str | None = None,
        record: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        self.source = source
        self.record = record

    def __str__(self) -> str:
        line = self.message
        where = []
        if self.source:
            where.append(f"source={self.source}")
        if self.record:
            where.append(f"record={self.record}")
        if self.context is not None:
            described = self.context.describe()
            if described:
                where.append(described)
        if where:
            line = f"{line} [{' '.join(where)}]"
        # One error, one log line: a vendor message with newlines must not split it.
        return " ".join(line.splitlines())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def named(self, source: str | None) -> None:
        """Name ``source`` as where it happened, unless the error names one already (the layers
        that raise it, a transport or a parser, may not know which source they serve)."""
        if self.source is None:
            self.source = source

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable across process pools with their keyword-only context.
        return (_rebuild, (type(self), self.message, self.context, self.source, self.record))


def _rebuild(
    cls: type[ItsmBridgeError],
    message: str,
    context: RequestContext | None,
    source: str | None,
    record: str | None,
) -> ItsmBridgeError:
    return cls(message, context=context, source=source, record=record)


class ConfigurationError(ItsmBridgeError):
    """The caller's configuration is wrong; running again unchanged will fail again."""

    exit_code = 2


class UnknownConnectorError(ConfigurationError):
    """No connector of that name is registered in the ``itsm_bridge.connectors`` group."""


class InvalidOptionsError(ConfigurationError):
    """Connector options, a rules file or a config file failed validation."""


class UnknownFieldError(ConfigurationError):
    """A field named in a query, projection or mapping does not exist on the platform."""


class EndpointNotFoundError(ConfigurationError):
    """The platform answered 404 for a collection: wrong base URL, table name or API version."""


class KindUnavailableError(ConfigurationError):
    """This instance has no collection for a kind: the product or plugin that holds it (a
    ServiceNow instance without Project Portfolio Management has no ``pm_project``) is not there.

    A pull or sync of every kind (no kinds named) skips such a kind with a warning and names it
    in the run report; one that names the kind raises this.
    """


class InsecureTransportError(ConfigurationError):
    """Plain ``http://`` to a host that is not loopback, without an explicit opt-in."""


class AccessError(ItsmBridgeError):
    """Credentials or permissions are insufficient: re-authenticate or ask for access."""

    exit_code = 3


class AuthenticationError(AccessError):
    """401: the credentials were refused or have expired."""


class PermissionDeniedError(AccessError):
    """403: the account is known but may not read this collection."""


class SourceUnavailableError(ItsmBridgeError):
    """The source kept failing after the retry budget was spent; try again later."""

    exit_code = 4


class SourceConnectionError(SourceUnavailableError):
    """The connection could not be made or was lost (DNS, refused, reset, TLS, timeout)."""


class RateLimitedError(SourceUnavailableError):
    """The source still answered 429 after the retry budget was spent."""


class ServerError(SourceUnavailableError):
    """The source answered 502-504 until the retry budget was spent, or 500 (not retried: a
    request that makes the server fail fails again)."""


class DataError(ItsmBridgeError):
    """A response or record is not what the contract says; the record is named where known."""

    exit_code = 5


class ResponseFormatError(DataError):
    """The body is not the JSON we asked for: an HTML login or hibernation page, broken JSON."""


class MappingError(DataError):
    """A record could not be mapped to a WorkItem; it goes to the quarantine, not the bin."""


class IncompletePullError(DataError):
    """Paging repeated a token, stopped advancing, or fetched counts disagree with the source's."""


class StoreError(ItsmBridgeError):
    """The store could not be written; the last committed page and cursor are intact."""

    exit_code = 6
