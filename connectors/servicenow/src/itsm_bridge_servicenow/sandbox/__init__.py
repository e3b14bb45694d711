"""A fake ServiceNow instance on loopback, serving the generator's records.

Registered in the entry-point group ``itsm_bridge.sandboxes`` as ``servicenow``::

    from itsm_bridge.sandbox import generate_items, make_sandbox
    from itsm_bridge import Kind

    with make_sandbox("servicenow", generate_items(Kind.INCIDENT, 1000)) as sandbox:
        conn = ib.connect("servicenow", sandbox.url, auth=sandbox.auth(),
                          **sandbox.connect_options())

What it serves and how it misbehaves is described in :mod:`.app`; the data model in
:mod:`.render` and :mod:`.schema`. Run one by hand:
``python -m itsm_bridge_servicenow.sandbox``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from requests.auth import AuthBase

from itsm_bridge import BasicAuth, OAuth2
from itsm_bridge.sandbox import (
    FaultPlan,
    MutableStore,
    SandboxServer,
    ServedSandbox,
    TruthItem,
    generate_company,
)
from itsm_bridge_servicenow.sandbox.app import DATA_TABLES, ServiceNowApp
from itsm_bridge_servicenow.sandbox.render import KIND_TABLE, Renderer, sys_id_for
from itsm_bridge_servicenow.sandbox.schema import (
    LEGACY_CHANGE_STATES,
    LEGACY_PROBLEM_STATES,
    TABLES,
    FieldDef,
)
from itsm_bridge_servicenow.sandbox.store import Instance

__all__ = ["DEFAULT_CLIENT", "ServiceNowSandbox", "make_sandbox"]

DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "sandbox-admin"  # a fake instance on loopback, not a secret
DEFAULT_CLIENT = ("itsm-bridge", "sandbox-client-secret")


@lru_cache(maxsize=1)
def _default_services() -> dict[str, str]:
    # The generator's service catalogue (name -> business/technical), from its public API.
    return dict(generate_company(months=1, scale=0.05).services)


class ServiceNowSandbox(ServedSandbox):
    """A running (or ready-to-run) fake instance; use as a context manager."""

    connector = "servicenow"

    def __init__(
        self,
        items: Sequence[TruthItem],
        *,
        faults: FaultPlan | None = None,
        timezone: str = "UTC",
        seed: int = 0,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        oauth_clients: Mapping[str, str] | None = None,
        client_credentials_grant: bool = True,
        token_ttl: int = 1799,
        max_page_rows: int | None = None,
        aggregate: bool = True,
        dictionary_readable: bool = True,
        rate_limit_per_hour: int | None = None,
        services: Mapping[str, str] | None = None,
        state_models: Mapping[str, str] | None = None,
        custom_fields: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        absent_tables: Iterable[str] = (),
    ) -> None:
        self.faults = faults
        self.timezone = timezone
        self.username, self._password = username, password
        self.oauth_clients = dict(oauth_clients or {DEFAULT_CLIENT[0]: DEFAULT_CLIENT[1]})
        self.instance = Instance()
        self.renderer = Renderer(
            items,
            services or _default_services(),
            state_models=state_models,
            custom_fields=custom_fields,
        )
        # Tables of plugins this instance lacks (pm_project without Project Portfolio
        # Management): no rows, no dictionary entries, "Invalid table" from the Table API.
        self.absent_tables = frozenset(absent_tables)
        if self.absent_tables:
            items = [i for i in items if KIND_TABLE[i.kind] not in self.absent_tables]
        self.store = MutableStore(items, faults=faults, seed=seed)
        self._where: dict[str, tuple[str, str]] = {}  # number -> (sys_id, table)
        self._load(items, state_models or {}, custom_fields or {})
        self.app = ServiceNowApp(
            self.instance,
            faults=faults,
            timezone=timezone,
            credentials={username: password},
            oauth_clients=self.oauth_clients,
            client_credentials_grant=client_credentials_grant,
            token_ttl=token_ttl,
            max_page_rows=max_page_rows,
            aggregate_enabled=aggregate,
            dictionary_readable=dictionary_readable,
            rate_limit_per_hour=rate_limit_per_hour,
            churn=self._churn,
            absent_tables=self.absent_tables,
        )
        self.server = SandboxServer(self.app, faults=faults)
        self._lock = threading.Lock()

    # -- data ------------------------------------------------------------------------------------

    def _load(
        self,
        items: Sequence[TruthItem],
        state_models: Mapping[str, str],
        custom_fields: Mapping[str, Mapping[str, Sequence[str]]],
    ) -> None:
        instance = self.instance
        for table, fields in custom_fields.items():
            instance.extra_fields[table] = {name: FieldDef("string") for name in fields}
        if state_models.get("change_request") == "legacy":
            instance.choices[("change_request", "state")] = dict(LEGACY_CHANGE_STATES)
        if state_models.get("problem") == "legacy":
            instance.choices[("problem", "state")] = dict(LEGACY_PROBLEM_STATES)
        for item in items:
            table, row = self.renderer.row(item)
            instance.table(table).put(row)
            self._where[item.number] = (item.uid, table)
            if self.store.is_hidden(item):  # row-level ACLs, as the kit's store decides them
                instance.table(table).hidden.add(item.uid)
        for (table, name), labels in self.renderer.choice_labels.items():
            instance.choices.setdefault((table, name), {}).update(labels)
        for table, rows in self.renderer.refs.items():
            for row in rows.values():
                instance.table(table).put(row)
        self._load_dictionary()

    def _load_dictionary(self) -> None:
        objects = self.instance.table("sys_db_object")
        dictionary = self.instance.table("sys_dictionary")
        stamp = "2024-01-01 00:00:00"
        base = {"sys_created_on": stamp, "sys_updated_on": stamp, "sys_mod_count": "0"}
        for name, definition in TABLES.items():
            if name in self.absent_tables:
                continue
            parent = sys_id_for("sys_db_object", definition.parent) if definition.parent else ""
            objects.put(
                {
                    **base,
                    "sys_id": sys_id_for("sys_db_object", name),
                    "sys_class_name": "sys_db_object",
                    "name": name,
                    "label": definition.label,
                    "super_class": parent,
                }
            )
            fields = {**definition.fields, **self.instance.extra_fields.get(name, {})}
            for element, field in [("", FieldDef("collection")), *fields.items()]:
                dictionary.put(
                    {
                        **base,
                        "sys_id": sys_id_for("sys_dictionary", f"{name}.{element}"),
                        "sys_class_name": "sys_dictionary",
                        "name": name,
                        "element": element,
                        "internal_type": field.type,
                        "reference": field.reference or "",
                        "column_label": element.replace("_", " ").title(),
                    }
                )

    def _render(self, item: TruthItem) -> None:
        table, row = self.renderer.row(item)
        self.instance.table(table).put(row)

    def _churn(self, table: str, rows: int) -> None:
        """Records changing while a client pages: one draw of the plan per row served, so
        ``p_update_during_paging`` is the share of rows touched over a whole pull."""
        plan = self.faults
        if plan is None or not (plan.p_update_during_paging or plan.p_delete_during_paging):
            return
        for _ in range(rows):
            for event in self.store.churn():
                with self.instance.lock:
                    uid, where = self._where[event.number]
                    current = self.store.get(event.number)
                    if event.action == "update" and current is not None:
                        self._render(current)
                    elif event.action == "delete":
                        self.instance.table(where).remove(uid)

    @property
    def touched(self) -> int:
        """How many records were updated while clients paged."""
        return sum(1 for e in self.store.events if e.action == "update")

    def touch(
        self, key: str, *, when: datetime | None = None, note: str | None = None
    ) -> TruthItem:
        """Change a record (by sys_id or number) as a user would; returns its new version."""
        with self.instance.lock:
            found = self.store.by_uid(key) or self.store.get(key)
            if found is None:
                raise KeyError(f"no record {key!r} in the sandbox")
            moment = None if when is None else when.replace(microsecond=0)
            item = self.store.touch(found.number, moment, note=note or "Changed by a test.")
            self._render(item)
            return item

    def hidden_ids(self) -> set[str]:
        return {item.uid for item in self.store.current() if self.store.is_hidden(item)}

    def visible_items(self) -> list[TruthItem]:
        return self.store.visible()

    def data_requests(self, table: str | None = None) -> list[dict[str, str]]:
        """Parameters of every Table API request for data tables (or ``table``) so far."""
        wanted = {table} if table else DATA_TABLES
        found = []
        for _method, path, params in list(self.app.log):
            parts = [p for p in path.split("/") if p]
            if len(parts) >= 4 and parts[:3] == ["api", "now", "table"] and parts[3] in wanted:
                found.append(params)
        return found

    # -- the platform contract -------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return list(self.app.log)

    @property
    def password(self) -> str:
        """The sandbox's own basic-auth password (a loopback fake, not a secret)."""
        return self._password

    def auth(self) -> AuthBase:
        return BasicAuth(self.username, self._password)

    def oauth(self, grant: str = "password") -> OAuth2:
        """OAuth 2.0 against the sandbox's ``/oauth_token.do`` with its default client."""
        client, secret = next(iter(self.oauth_clients.items()))
        if grant == "client_credentials":
            return OAuth2(f"{self.url}/oauth_token.do", client_id=client, client_secret=secret)
        return OAuth2(
            f"{self.url}/oauth_token.do",
            client_id=client,
            client_secret=secret,
            grant="password",
            username=self.username,
            password=self._password,
        )

    def connect_options(self) -> dict[str, Any]:
        return {"allow_insecure_http": True}


def make_sandbox(
    items: Sequence[TruthItem],
    *,
    faults: FaultPlan | None = None,
    timezone: str = "UTC",
    seed: int = 0,
    **options: Any,
) -> ServiceNowSandbox:
    """The entry-point factory (``itsm_bridge.sandboxes``); ``options`` go to the sandbox."""
    return ServiceNowSandbox(items, faults=faults, timezone=timezone, seed=seed, **options)
