"""The fake instance's HTTP surface: Table API, Aggregate API, OAuth and the error envelope.

Behaviour copied from the real thing (``platform-apis.md`` part A): every value a string;
``sysparm_display_value`` false/true/all with display dates in the account's time zone;
reference links unless excluded; ``X-Total-Count`` and ``Link`` unless suppressed; unknown field
names ignored silently in queries and projections; ``sysparm_limit`` applied *before* row-level
ACLs, so pages come back short; the ``{"error": {...}, "status": "failure"}`` envelope; 401 for bad
credentials; optional rate-limit headers and 429s; and records touched while a client pages.

Choices where the real behaviour is not documented (stated in ``docs/connectors/servicenow.md``):
a page larger than ``max_page_rows`` is cancelled with HTTP 500 and the message "Transaction
cancelled: maximum execution time exceeded"; the Aggregate API counts rows hidden by row-level
ACLs (as ``X-Total-Count`` does).
"""

from __future__ import annotations

import base64
import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from itsm_bridge.sandbox import FaultPlan, SandboxRequest, SandboxResponse, json_response
from itsm_bridge_servicenow.sandbox.encoded_query import Query, QueryError, parse
from itsm_bridge_servicenow.sandbox.schema import TABLES, FieldDef
from itsm_bridge_servicenow.sandbox.store import Instance

__all__ = ["ServiceNowApp"]

DATA_TABLES = frozenset(
    {"incident", "problem", "change_request", "sc_req_item", "pm_project", "pm_project_task"}
)
_SYSTEM = frozenset({"sys_dictionary", "sys_db_object"})


def envelope(
    status: int, message: str, detail: str | None = None, **headers: str
) -> SandboxResponse:
    return json_response(
        {"error": {"message": message, "detail": detail}, "status": "failure"},
        status=status,
        headers=headers,
    )


def _flag(request: SandboxRequest, name: str) -> bool:
    return (request.param(name) or "false").strip().lower() == "true"


def _duration_text(raw: str) -> str:
    moment = datetime.fromisoformat(raw).replace(tzinfo=UTC)
    seconds = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}"
        for n, unit in ((days, "Day"), (hours, "Hour"), (minutes, "Minute"))
        if n
    ]
    return " ".join(parts) or "0 Seconds"


class ServiceNowApp:
    """Answers requests for one :class:`Instance`; thread-safe (the instance lock guards data)."""

    def __init__(
        self,
        instance: Instance,
        *,
        faults: FaultPlan | None,
        timezone: str,
        credentials: Mapping[str, str],
        oauth_clients: Mapping[str, str],
        client_credentials_grant: bool,
        token_ttl: int,
        max_page_rows: int | None,
        aggregate_enabled: bool,
        dictionary_readable: bool,
        rate_limit_per_hour: int | None,
        churn: Callable[[str, int], None],
        absent_tables: frozenset[str] = frozenset(),
    ) -> None:
        self.instance = instance
        self.faults = faults
        self.zone = ZoneInfo(timezone)
        self.credentials = dict(credentials)
        self.oauth_clients = dict(oauth_clients)
        self.client_credentials_grant = client_credentials_grant
        self.token_ttl = token_ttl
        self.max_page_rows = max_page_rows
        self.aggregate_enabled = aggregate_enabled
        self.dictionary_readable = dictionary_readable
        self.rate_limit_per_hour = rate_limit_per_hour
        self.churn = churn
        self.absent_tables = absent_tables
        self.tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._hour: tuple[int, int] = (0, 0)
        self._display_dt = lru_cache(maxsize=65536)(self._display_datetime)

    # -- dispatch --------------------------------------------------------------------------------

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        params = {k: v[-1] for k, v in request.query.items()}
        self.log.append((request.method, request.path, params))
        if request.path == "/oauth_token.do":
            if request.method != "POST":
                return envelope(405, "Method not Supported")
            return self.oauth(request)
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        limited = self.rate_limit()
        if isinstance(limited, SandboxResponse):
            return limited
        response = self.route(request)
        response.headers.update(limited)
        return response

    def route(self, request: SandboxRequest) -> SandboxResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] == ["api", "now"] and len(parts) > 2 and parts[2] in ("v1", "v2"):
            parts = parts[:2] + parts[3:]
        if request.method != "GET":
            return envelope(405, "Method not Supported", "the sandbox is read-only")
        if len(parts) in (4, 5) and parts[:3] == ["api", "now", "table"]:
            table = parts[3]
            denied = self.check_table(table)
            if denied is not None:
                return denied
            if len(parts) == 5:
                return self.one(request, table, parts[4])
            return self.table_list(request, table)
        if len(parts) == 4 and parts[:3] == ["api", "now", "stats"]:
            return self.stats(request, parts[3])
        return envelope(400, "Requested URI does not represent any resource", request.path)

    def check_table(self, table: str) -> SandboxResponse | None:
        if table not in TABLES or table in self.absent_tables:
            return envelope(400, f"Invalid table {table}", f"Table {table} does not exist")
        if table in _SYSTEM and not self.dictionary_readable:
            return envelope(403, "Insufficient rights to query records", None)
        return None

    # -- auth and rate limits --------------------------------------------------------------------

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(token).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if user in self.credentials and secrets.compare_digest(
                self.credentials[user], password
            ):
                return None
        elif scheme.lower() == "bearer":
            with self._lock:
                expires = self.tokens.get(token)
            if expires is not None and expires > time.time():
                return None
        return envelope(401, "User Not Authenticated", "Required to provide Auth information")

    def rate_limit(self) -> SandboxResponse | dict[str, str]:
        if not self.rate_limit_per_hour:
            return {}
        now = time.time()
        hour = int(now // 3600)
        with self._lock:
            current, used = self._hour
            used = used + 1 if current == hour else 1
            self._hour = (hour, used)
        reset = (hour + 1) * 3600
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit_per_hour),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Rule": "f1e2d3c4b5a6978800112233445566aa",
        }
        if used > self.rate_limit_per_hour:
            return envelope(
                429,
                "Rate limit exceeded",
                f"Rate limit of {self.rate_limit_per_hour} requests per hour for Table API "
                "exceeded",
                **headers,
                **{"Retry-After": str(max(1, math.ceil(reset - now)))},
            )
        return headers

    def oauth(self, request: SandboxRequest) -> SandboxResponse:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        refused = json_response(
            {"error_description": "access_denied", "error": "server_error"}, status=401
        )
        if client not in self.oauth_clients or not secrets.compare_digest(
            self.oauth_clients[client], secret
        ):
            return refused
        grant = form.get("grant_type")
        if grant == "password":
            user, password = form.get("username", ""), form.get("password", "")
            if user not in self.credentials or not secrets.compare_digest(
                self.credentials[user], password
            ):
                return refused
        elif grant == "client_credentials":
            if not self.client_credentials_grant:
                return json_response(
                    {"error_description": "unsupported grant", "error": "invalid_request"},
                    status=400,
                )
        elif grant == "refresh_token":
            with self._lock:
                if self.refresh_tokens.pop(form.get("refresh_token", ""), None) != client:
                    return refused
        else:
            return json_response({"error": "unsupported_grant_type"}, status=400)
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[access] = time.time() + self.token_ttl
            self.refresh_tokens[refresh] = client
        return json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
            }
        )

    def expire_tokens(self) -> None:
        """Make every issued access token expired (tests of the refresh path)."""
        with self._lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    # -- Table API -------------------------------------------------------------------------------

    def _query(self, table: str, text: str) -> Query:
        query = parse(text)
        return query.restrict(lambda name: self.instance.path_def(table, name) is not None)

    def table_list(self, request: SandboxRequest, table: str) -> SandboxResponse:
        try:
            limit = int(request.param("sysparm_limit") or 10000)
            offset = int(request.param("sysparm_offset") or 0)
        except ValueError:
            return envelope(400, "Invalid sysparm_limit or sysparm_offset")
        if limit < 0 or offset < 0:
            return envelope(400, "sysparm_limit and sysparm_offset must not be negative")
        if self.max_page_rows is not None and table in DATA_TABLES and limit > self.max_page_rows:
            return envelope(
                500,
                "Transaction cancelled: maximum execution time exceeded",
                f"the sandbox cancels pages over {self.max_page_rows} rows",
            )
        try:
            query = self._query(table, request.param("sysparm_query") or "")
        except QueryError as exc:
            return envelope(400, "Invalid query", str(exc))
        no_count = _flag(request, "sysparm_no_count")
        instance = self.instance
        with instance.lock:
            matched = instance.select(table, query)
            total = None
            if no_count:
                window = list(itertools.islice(matched, offset, offset + limit))
            else:
                everything = list(matched)
                total = len(everything)
                window = everything[offset : offset + limit]
            hidden = instance.tables[table].hidden if table in instance.tables else set()
            # Quirk: the limit is applied before row-level ACLs, so pages come back short.
            visible = [row for row in window if row["sys_id"] not in hidden]
            body = {"result": self.render(request, table, visible)}
        if table in DATA_TABLES and window:
            self.churn(table, len(window))  # records change while the client pages
        headers: dict[str, str] = {}
        if total is not None:
            headers["X-Total-Count"] = str(total)
            if not _flag(request, "sysparm_suppress_pagination_header"):
                link = self.link_header(request, table, offset, limit, total)
                if link:
                    headers["Link"] = link
        return json_response(body, headers=headers)

    def one(self, request: SandboxRequest, table: str, sys_id: str) -> SandboxResponse:
        instance = self.instance
        with instance.lock:
            t = instance.tables.get(table)
            row = t.rows.get(sys_id) if t else None
            if row is None or (t is not None and sys_id in t.hidden):
                return envelope(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            body = {"result": self.render(request, table, [row])[0]}
        return json_response(body)

    def link_header(
        self, request: SandboxRequest, table: str, offset: int, limit: int, total: int
    ) -> str:
        base = f"{self.base(request)}/api/now/table/{table}"
        params = {k: v[-1] for k, v in request.query.items()}

        def url(at: int) -> str:
            return f"{base}?{urlencode({**params, 'sysparm_offset': at, 'sysparm_limit': limit})}"

        if limit == 0 or (total <= limit and offset == 0):
            return ""
        last = max(0, (total - 1) // limit * limit)
        links = [f'<{url(0)}>;rel="first"']
        if offset > 0:
            links.append(f'<{url(max(0, offset - limit))}>;rel="prev"')
        if offset + limit < total:
            links.append(f'<{url(offset + limit)}>;rel="next"')
        links.append(f'<{url(last)}>;rel="last"')
        return ",".join(links)

    @staticmethod
    def base(request: SandboxRequest) -> str:
        return f"http://{request.header('Host') or 'localhost'}"

    # -- rendering -------------------------------------------------------------------------------

    def _display_datetime(self, raw: str) -> str:
        moment = datetime.fromisoformat(raw).replace(tzinfo=UTC).astimezone(self.zone)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def render(
        self, request: SandboxRequest, table: str, rows: list[dict[str, str]]
    ) -> list[dict[str, Any]]:
        instance = self.instance
        mode = (request.param("sysparm_display_value") or "false").strip().lower()
        exclude = _flag(request, "sysparm_exclude_reference_link")
        wanted = request.param("sysparm_fields")
        base = self.base(request)
        out: list[dict[str, Any]] = []
        plans: dict[str, list[tuple[str, FieldDef, bool, dict[str, str] | None]]] = {}
        for row in rows:
            cls = row.get("sys_class_name") or table
            plan = plans.get(cls)
            if plan is None:
                plan = plans[cls] = self._plan(cls, wanted)
            record: dict[str, Any] = {}
            for name, definition, dotted, labels in plan:
                if dotted:
                    raw, owner = instance.resolve(cls, row, name)
                    leaf = name.rsplit(".", 1)[-1]
                    labels = instance.choices_for(owner, leaf)
                else:
                    raw, owner = row.get(name, ""), cls
                record[name] = self._field(owner, definition, raw, labels, mode, exclude, base)
            out.append(record)
        return out

    def _plan(
        self, cls: str, wanted: str | None
    ) -> list[tuple[str, FieldDef, bool, dict[str, str] | None]]:
        instance = self.instance
        names = (
            [n.strip() for n in wanted.split(",") if n.strip()]
            if wanted
            else instance.all_fields(cls)
        )
        plan = []
        for name in names:
            found = instance.path_def(cls, name)
            if found is None:
                continue  # Quirk: unknown names in sysparm_fields are silently left out.
            dotted = "." in name
            labels = None if dotted else instance.choices_for(cls, name)
            plan.append((name, found[1], dotted, labels))
        return plan

    def _field(
        self,
        owner: str,
        definition: FieldDef,
        raw: str,
        labels: dict[str, str] | None,
        mode: str,
        exclude: bool,
        base: str,
    ) -> Any:
        is_ref = definition.type == "reference"
        link = f"{base}/api/now/table/{definition.reference}/{raw}" if is_ref and raw else None
        if mode not in ("true", "all"):
            if link and not exclude:
                return {"link": link, "value": raw}
            return raw
        if not raw:
            shown = ""
        elif is_ref:
            shown = self.instance.display_of(owner, raw, definition.reference or "")
        elif definition.type == "glide_date_time":
            shown = self._display_dt(raw)
        elif definition.type in ("glide_duration", "timer"):
            shown = _duration_text(raw)
        elif definition.type == "sys_class_name":
            shown = TABLES[raw].label if raw in TABLES else raw
        elif labels is not None:
            shown = labels.get(raw, raw)
        else:
            shown = raw
        if mode == "true":
            if link and not exclude:
                return {"display_value": shown, "link": link}
            return shown
        if link and not exclude:
            return {"display_value": shown, "value": raw, "link": link}
        return {"display_value": shown, "value": raw}

    # -- Aggregate API ---------------------------------------------------------------------------

    def stats(self, request: SandboxRequest, table: str) -> SandboxResponse:
        if not self.aggregate_enabled:
            return envelope(403, "Insufficient rights to query records", None)
        denied = self.check_table(table)
        if denied is not None:
            return denied
        try:
            query = self._query(table, request.param("sysparm_query") or "")
        except QueryError as exc:
            return envelope(400, "Invalid query", str(exc))
        group_by = [g for g in (request.param("sysparm_group_by") or "").split(",") if g]
        with self.instance.lock:
            # Counts are not filtered by row-level ACLs (like X-Total-Count).
            rows = list(self.instance.select(table, query))
            groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
            for row in rows:
                key = tuple(self.instance.resolve(table, row, g)[0] for g in group_by)
                groups.setdefault(key, []).append(row)
        results = [
            {
                "stats": self._aggregate(request, table, members),
                **(
                    {"groupby_fields": [{"field": g, "value": v} for g, v in zip(group_by, key)]}
                    if group_by
                    else {}
                ),
            }
            for key, members in (groups.items() if group_by else [((), rows)])
        ]
        return json_response({"result": results if group_by else results[0]})

    def _aggregate(
        self, request: SandboxRequest, table: str, rows: list[dict[str, str]]
    ) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if _flag(request, "sysparm_count"):
            stats["count"] = str(len(rows))
        for param, name, pick in (
            ("sysparm_min_fields", "min", min),
            ("sysparm_max_fields", "max", max),
        ):
            fields = [f for f in (request.param(param) or "").split(",") if f]
            if fields:
                stats[name] = {
                    f: pick(
                        (v for v in (self.instance.resolve(table, r, f)[0] for r in rows) if v),
                        default="",
                    )
                    for f in fields
                }
        return stats
