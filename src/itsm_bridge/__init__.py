"""itsm-bridge: pull ITSM and delivery work into one schema and measure where IT's effort goes.

The public API is what ``__all__`` lists (plus the documented subpackages ``itsm_bridge.testing``
and ``itsm_bridge.sandbox``); every other module is internal and may change without notice::

    import itsm_bridge as ib
    conn = ib.connect("servicenow", base_url="https://acme.service-now.com",
                      auth=ib.BasicAuth("user", "secret"))
    for item in conn.pull(kinds=["incident", "change"], since="2026-01-01T00:00:00Z"):
        ...
"""

from __future__ import annotations

from itsm_bridge.connector import (
    Capabilities,
    CompletenessCheck,
    Connector,
    ConnectorOptions,
    Cursor,
    Endpoint,
    Page,
    PullStats,
    Reject,
    available_connectors,
    connect,
    connector_class,
)
from itsm_bridge.errors import (
    AccessError,
    AuthenticationError,
    ConfigurationError,
    DataError,
    EndpointNotFoundError,
    IncompletePullError,
    InsecureTransportError,
    InvalidOptionsError,
    ItsmBridgeError,
    KindUnavailableError,
    MappingError,
    PermissionDeniedError,
    RateLimitedError,
    RequestContext,
    ResponseFormatError,
    ServerError,
    SourceConnectionError,
    SourceUnavailableError,
    StoreError,
    UnknownConnectorError,
    UnknownFieldError,
)
from itsm_bridge.http import (
    BasicAuth,
    BearerAuth,
    KeysetPaginator,
    LinkHeaderPaginator,
    OAuth2,
    OAuth2Token,
    OffsetPaginator,
    PageRequest,
    RateGovernor,
    RetryPolicy,
    TokenPaginator,
    Transport,
    fetch_pages,
)
from itsm_bridge.schema import (
    EffortSource,
    Kind,
    Label,
    Reason,
    ScoredItem,
    Status,
    Verdict,
    WorkItem,
    schema_json,
)
from itsm_bridge.scoring import score
from itsm_bridge.sync import Store, SyncResult, sync

__version__ = "0.1.0"

__all__ = [
    "AccessError",
    "AuthenticationError",
    "BasicAuth",
    "BearerAuth",
    "Capabilities",
    "CompletenessCheck",
    "ConfigurationError",
    "Connector",
    "ConnectorOptions",
    "Cursor",
    "DataError",
    "EffortSource",
    "Endpoint",
    "EndpointNotFoundError",
    "IncompletePullError",
    "InsecureTransportError",
    "InvalidOptionsError",
    "ItsmBridgeError",
    "KeysetPaginator",
    "Kind",
    "KindUnavailableError",
    "Label",
    "LinkHeaderPaginator",
    "MappingError",
    "OAuth2",
    "OAuth2Token",
    "OffsetPaginator",
    "Page",
    "PageRequest",
    "PermissionDeniedError",
    "PullStats",
    "RateGovernor",
    "RateLimitedError",
    "Reason",
    "Reject",
    "RequestContext",
    "ResponseFormatError",
    "RetryPolicy",
    "ScoredItem",
    "ServerError",
    "SourceConnectionError",
    "SourceUnavailableError",
    "Status",
    "Store",
    "StoreError",
    "SyncResult",
    "TokenPaginator",
    "Transport",
    "UnknownConnectorError",
    "UnknownFieldError",
    "Verdict",
    "WorkItem",
    "__version__",
    "available_connectors",
    "connect",
    "connector_class",
    "fetch_pages",
    "schema_json",
    "score",
    "sync",
]
