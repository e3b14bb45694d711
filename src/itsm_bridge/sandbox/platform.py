"""The contract between the core and each connector's fake platform.

A connector package registers a factory in the entry-point group ``itsm_bridge.sandboxes`` under
its connector's name. The demo, the benchmarks and the conformance kit find sandboxes there, so
the core never imports a connector package::

    [project.entry-points."itsm_bridge.sandboxes"]
    servicenow = "itsm_bridge_servicenow.sandbox:make_sandbox"
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, Self

import requests

from itsm_bridge.errors import UnknownConnectorError
from itsm_bridge.sandbox.faults import FaultPlan
from itsm_bridge.sandbox.model import TruthItem
from itsm_bridge.sandbox.server import SandboxServer

__all__ = [
    "PlatformSandbox",
    "SandboxFactory",
    "ServedSandbox",
    "available_sandboxes",
    "credentials_of",
    "make_sandbox",
]

SANDBOX_GROUP = "itsm_bridge.sandboxes"


class PlatformSandbox(Protocol):
    """A running fake platform serving a list of :class:`TruthItem` on loopback."""

    connector: str  # the connector name that reads this sandbox

    @property
    def url(self) -> str: ...

    def start(self) -> Self: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def auth(self) -> requests.auth.AuthBase:
        """Credentials the sandbox accepts."""
        ...

    def connect_options(self) -> dict[str, Any]:
        """Options to pass to ``ib.connect`` for this sandbox (allow_insecure_http, ...)."""
        ...

    def visible_items(self) -> list[TruthItem]:
        """The current version of every record a client may see (ACL-hidden ones excluded)."""
        ...


class ServedSandbox:
    """The lifecycle half of :class:`PlatformSandbox` for a sandbox that serves through
    ``self.server`` (a :class:`SandboxServer`): ``url``, ``start``/``stop`` and ``with``.

    Subclasses set ``server`` in ``__init__`` and add ``auth``, ``connect_options`` and
    ``visible_items``; one that must learn its URL once listening overrides :meth:`start`.
    """

    server: SandboxServer

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxFactory(Protocol):
    """What a connector package registers in ``itsm_bridge.sandboxes``: items in, sandbox out.

    ``options`` are the platform's own (a Jira ``deployment``, a ServiceNow ``aggregate``)."""

    def __call__(
        self,
        items: Sequence[TruthItem],
        *,
        faults: FaultPlan | None = None,
        timezone: str = "UTC",
        seed: int = 0,
        **options: Any,
    ) -> PlatformSandbox: ...


def credentials_of(auth: Any) -> tuple[str, str, str]:
    """``(scheme, user, secret)`` of what an auth object sends: ``"basic"`` with the user and
    password, else the header's scheme (``"bearer"``) with an empty user and its value. Read from
    the ``Authorization`` header it puts on a request, so no private attribute is relied upon
    (peers in the benchmark and the conformance kit's secret check need them as strings).
    ``TypeError`` when it sends no such header."""
    request = requests.Request("GET", "http://127.0.0.1/").prepare()
    header = str(auth(request).headers.get("Authorization", "")) if callable(auth) else ""
    scheme, _, value = header.partition(" ")
    if not value:
        raise TypeError(f"the auth {type(auth).__name__} sends no Authorization header")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return "basic", "", value
        return "basic", user, password
    return scheme.lower(), "", value


def available_sandboxes() -> list[str]:
    """Names of the connectors whose packages register a sandbox."""
    return sorted(ep.name for ep in entry_points(group=SANDBOX_GROUP))


def make_sandbox(
    name: str,
    items: Sequence[TruthItem],
    *,
    faults: FaultPlan | None = None,
    timezone: str = "UTC",
    seed: int = 0,
    **options: Any,
) -> PlatformSandbox:
    """Build (not start) the sandbox registered for connector ``name``; ``options`` go to the
    platform's own factory (``make_sandbox("jira", items, deployment="datacenter")``)."""
    for ep in entry_points(group=SANDBOX_GROUP):
        if ep.name == name:
            factory: SandboxFactory = ep.load()
            return factory(items, faults=faults, timezone=timezone, seed=seed, **options)
    raise UnknownConnectorError(
        f"no sandbox registered for {name!r} (installed: {', '.join(available_sandboxes())})"
    )
