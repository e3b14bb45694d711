"""The fake Jira site: Cloud (REST v3) or Data Center (REST v2) over a list of TruthItems.

Endpoints (Cloud under ``/rest/api/3`` and ``/rest/api/2``, Data Center under ``/rest/api/2``):
``serverInfo``, ``myself``, ``field``, ``issuetype``, ``project/search``, ``search/jql`` (Cloud:
search-after page tokens, ``isLast``, bounded JQL only, optional eventual consistency),
``search/approximate-count`` (Cloud), ``search`` (Data Center: ``startAt``/``maxResults``/
``total``; 410 Gone on Cloud, as since 2025), ``issue/{id}``, ``issue/{id}/changelog``,
``changelog/bulkfetch`` (Cloud), ``worklog/updated``, ``worklog/list``, ``worklog/deleted``, and
``/oauth/token`` (Atlassian's JSON-body refresh grant with single-use rotating refresh tokens).

Every response carries rate-limit headers (Cloud: ``X-RateLimit-*``, ``Beta-RateLimit*``; Data
Center: ``X-RateLimit-Limit/Remaining/Interval-Seconds/FillRate``); a FaultPlan's 429 bursts are
answered the way Jira answers them (``Retry-After``, ``X-RateLimit-Reset``, ``RateLimit-Reason``).
Records change while a client pages (``FaultPlan.p_update_during_paging``) through the kit's
``MutableStore``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsm_bridge import _json
from itsm_bridge.sandbox import (
    Fault,
    FaultPlan,
    MutableStore,
    SandboxRequest,
    SandboxResponse,
    TruthItem,
    json_response,
)
from itsm_bridge_jira.sandbox.index import SearchIndex, epoch_ms
from itsm_bridge_jira.sandbox.jql import JqlError, Query, parse_jql
from itsm_bridge_jira.sandbox.render import (
    ISSUE_TYPES,
    RENDER_CACHE,
    Renderer,
    issue_id,
    project_key,
)

__all__ = ["JiraApp", "SandboxAuth"]

_V = r"/rest/api/(?P<v>[23])"
REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)


class SandboxAuth:
    """Credentials the fake accepts: e-mail + API token, a PAT, or OAuth 2.0 tokens."""

    def __init__(self, *, token_ttl: float = 3600.0) -> None:
        self.email = "bridge@northwind.example"
        self.api_token = "ATATT3x-sandbox-" + secrets.token_hex(8)
        self.pat = "NDc4-sandbox-" + secrets.token_hex(12)
        self.client_id = "sandbox-client"
        self.client_secret = "sandbox-secret-" + secrets.token_hex(6)
        self.refresh_tokens: set[str] = {"rt-" + secrets.token_hex(10)}
        self.used_refresh_tokens: set[str] = set()
        self.access: dict[str, float] = {}
        self.token_ttl = token_ttl
        self.grants = 0
        self._lock = threading.Lock()

    @property
    def initial_refresh_token(self) -> str:
        return sorted(self.refresh_tokens)[0]

    def basic_ok(self, header: str) -> bool:
        try:
            decoded = base64.b64decode(header.split(" ", 1)[1]).decode()
        except (ValueError, IndexError):
            return False
        return decoded == f"{self.email}:{self.api_token}"

    def bearer_ok(self, token: str) -> bool:
        if token == self.pat:
            return True
        with self._lock:
            expires = self.access.get(token)
            return expires is not None and expires > time.time()

    def grant(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The refresh-token grant: each refresh token works once and is replaced."""
        with self._lock:
            if body.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if body.get("client_id") != self.client_id or (
                body.get("client_secret") != self.client_secret
            ):
                return 401, {"error": "access_denied", "error_description": "Unauthorized"}
            token = str(body.get("refresh_token") or "")
            if token not in self.refresh_tokens:
                reused = token in self.used_refresh_tokens
                return 403, {
                    "error": "unauthorized_client",
                    "error_description": "refresh_token is invalid"
                    + (" (already used: rotating refresh tokens are single-use)" if reused else ""),
                }
            self.refresh_tokens.discard(token)
            self.used_refresh_tokens.add(token)
            rotated = "rt-" + secrets.token_hex(10)
            self.refresh_tokens.add(rotated)
            access = "at-" + secrets.token_hex(12)
            self.access[access] = time.time() + self.token_ttl
            self.grants += 1
            return 200, {
                "access_token": access,
                "expires_in": int(self.token_ttl),
                "token_type": "Bearer",
                "refresh_token": rotated,
                "scope": "read:jira-work read:jira-user offline_access",
            }


class _FaultGate:
    """Lets the server drop, truncate or answer HTML, and hands 429s and 5xx to the app, which
    answers them the way Jira does (its headers and error envelope)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.local = threading.local()

    def draw(self, request: SandboxRequest | None = None) -> Fault | None:
        fault = self.plan.draw(request)
        self.local.fault = None
        if fault is not None and fault.kind in ("429", "5xx"):
            self.local.fault = fault
            return Fault("latency", latency=fault.latency) if fault.latency else None
        return fault

    def take(self) -> Fault | None:
        fault: Fault | None = getattr(self.local, "fault", None)
        self.local.fault = None
        return fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self.plan, name)


def _error(status: int, *messages: str, errors: Mapping[str, str] | None = None) -> SandboxResponse:
    return json_response({"errorMessages": list(messages), "errors": dict(errors or {})}, status)


def _csv(values: list[str] | str | None) -> list[str]:
    if values is None:
        return []
    items = values if isinstance(values, list) else [values]
    out: list[str] = []
    for value in items:
        out.extend(part.strip() for part in str(value).split(",") if part.strip())
    return out


class JiraApp:
    """The request handler; one instance per sandbox."""

    def __init__(
        self,
        items: list[TruthItem],
        *,
        cloud: bool,
        tz: ZoneInfo,
        faults: FaultPlan | None,
        seed: int,
        auth: SandboxAuth,
        oauth: bool = False,
        consistency_delay: float = 0.0,
        max_results: int = 1000,
        changelog_embed_limit: int | None = None,
        extra_histories: int = 0,
        single_issue_embed_limit: int = 0,
        offset_tokens: bool = False,
    ) -> None:
        self.cloud = cloud
        # Cloud's tokens are opaque; offset_tokens models the pessimistic reading (an offset in
        # disguise, which skips a record whenever an earlier one leaves the result).
        self.offset_tokens = offset_tokens
        self.tz = tz
        self.auth = auth
        self.oauth = oauth
        self.faults = faults
        self.gate = _FaultGate(faults) if faults is not None else None
        self.max_results = max_results
        self.embed_limit = changelog_embed_limit or (40 if cloud else 100)
        self.single_limit = single_issue_embed_limit
        self.extra_histories = extra_histories
        self.base_url = "http://127.0.0.1"
        self.renderer = Renderer(cloud=cloud, base_url=self.base_url, tz=tz)
        self.store = MutableStore(items, faults=faults, seed=seed)
        self.index = SearchIndex(self.renderer, delay=consistency_delay)
        self.index.load(i for i in self.store.current() if not self.store.is_hidden(i))
        self.requests: list[tuple[str, str, dict[str, Any], Any]] = []
        self.responses: list[tuple[str, str, int, Any]] = []
        self.record = False
        self._quota = 100_100
        self._bucket = 1000.0
        self._bucket_at = time.monotonic()
        self._lock = threading.Lock()
        self._lookup_cache: tuple[int, dict[str, TruthItem]] | None = None
        self._worklog_cache: tuple[int, list[tuple[int, dict[str, Any]]]] | None = None
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., SandboxResponse]]] = [
            ("POST", re.compile(r"^/oauth/token$"), self.oauth_token),
            ("GET", re.compile(_V + r"/serverInfo$"), self.server_info),
            ("GET", re.compile(_V + r"/myself$"), self.myself),
            ("GET", re.compile(_V + r"/field$"), self.field),
            ("GET", re.compile(_V + r"/issuetype$"), self.issuetype),
            ("GET", re.compile(_V + r"/project/search$"), self.project_search),
            ("GET", re.compile(_V + r"/search/jql$"), self.search_jql),
            ("POST", re.compile(_V + r"/search/jql$"), self.search_jql),
            ("POST", re.compile(_V + r"/search/approximate-count$"), self.approximate_count),
            ("GET", re.compile(_V + r"/search$"), self.search),
            ("POST", re.compile(_V + r"/search$"), self.search),
            ("GET", re.compile(_V + r"/issue/(?P<ref>[^/]+)/changelog$"), self.issue_changelog),
            ("GET", re.compile(_V + r"/issue/(?P<ref>[^/]+)$"), self.issue),
            ("POST", re.compile(_V + r"/changelog/bulkfetch$"), self.bulk_changelog),
            ("GET", re.compile(_V + r"/worklog/updated$"), self.worklog_updated),
            ("GET", re.compile(_V + r"/worklog/deleted$"), self.worklog_deleted),
            ("POST", re.compile(_V + r"/worklog/list$"), self.worklog_list),
        ]

    # -- plumbing --------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        if self.record:
            with self._lock:
                query = {k: v if len(v) > 1 else v[0] for k, v in request.query.items()}
                body = request.json() if request.body else None
                self.requests.append((request.method, request.path, query, body))
        fault = self.gate.take() if self.gate is not None else None
        if fault is not None and fault.kind == "429":
            response = self._rate_limited(fault.retry_after)
        elif fault is not None:
            response = _error(fault.status, "Service Unavailable: please retry shortly.")
            if fault.status == 503:
                response.headers["Retry-After"] = "0"  # Cloud sends Retry-After on some 503s
        elif not request.path.startswith("/oauth/") and not self._authorised(request):
            response = _error(
                401, "You are not authenticated. Authentication required to perform this operation."
            )
        else:
            response = self._route(request)
        response.headers.update(self._rate_headers())
        if self.record:
            data = json.loads(response.body) if response.body else None
            with self._lock:
                self.responses.append((request.method, request.path, response.status, data))
        return response

    def _route(self, request: SandboxRequest) -> SandboxResponse:
        matched_path = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            matched_path = True
            if method != request.method:
                continue
            groups = match.groupdict()
            version = groups.pop("v", None)
            if version == "3" and not self.cloud:
                return _error(404, "Data Center has no REST API v3.")
            try:
                return handler(request, version or "3", **groups)
            except JqlError as exc:
                return _error(400, str(exc))
            except (ValueError, TypeError, KeyError) as exc:
                return _error(400, f"Bad request: {exc}")
        if matched_path:
            return _error(405, "Method not allowed.")
        return _error(404, f"No resource at {request.path}.")

    def _authorised(self, request: SandboxRequest) -> bool:
        header = request.header("Authorization") or ""
        if header.startswith("Basic "):
            return self.cloud and not self.oauth and self.auth.basic_ok(header)
        if header.startswith("Bearer "):
            token = header.split(" ", 1)[1]
            if self.oauth:
                return token != self.auth.pat and self.auth.bearer_ok(token)
            return not self.cloud and token == self.auth.pat
        return False

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            now = time.monotonic()
            self._bucket = min(1000.0, self._bucket + (now - self._bucket_at) * 500.0) - 1
            self._bucket_at = now
            self._quota = max(0, self._quota - 1)
            remaining = max(0, int(self._bucket))
            quota = self._quota
        if not self.cloud:
            return {
                "X-RateLimit-Limit": "1000",
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Interval-Seconds": "1",
                "X-RateLimit-FillRate": "500",
            }
        headers = {
            "Beta-RateLimit-Policy": '"tenant-app-quota";q=100100;w=3600',
            "Beta-RateLimit": f'"tenant-app-quota";r={quota};t={3600 - int(time.time()) % 3600}',
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": str(remaining),
        }
        if remaining < 200:
            headers["X-RateLimit-NearLimit"] = "true"
        return headers

    def _rate_limited(self, retry_after: int) -> SandboxResponse:
        reset = (self.now() + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Reset": reset,
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Remaining": "0",
            "RateLimit-Reason": "jira-burst-based",
        }
        if self.cloud:
            headers["X-Beta-RateLimit-Reason"] = "jira-burst-based"
        response = _error(429, "Rate limit exceeded.")
        response.headers.update(headers)
        return response

    @staticmethod
    def _params(request: SandboxRequest) -> dict[str, Any]:
        params: dict[str, Any] = {k: v if len(v) > 1 else v[0] for k, v in request.query.items()}
        if request.method == "POST" and request.body:
            body = request.json()
            if isinstance(body, dict):
                params.update(body)
        return params

    def _lookup(self) -> dict[str, TruthItem]:
        """Visible issues by id and by key, rebuilt when the store changes."""
        with self._lock:
            if self._lookup_cache is None or self._lookup_cache[0] != self.store.revision:
                table: dict[str, TruthItem] = {}
                for item in self.store.current():
                    if not self.store.is_hidden(item):
                        table[str(issue_id(item.uid))] = item
                        table[item.number.upper()] = item
                self._lookup_cache = (self.store.revision, table)
            return self._lookup_cache[1]

    def _item(self, ref: str) -> TruthItem | None:
        lookup = self._lookup()
        return lookup.get(ref) or lookup.get(ref.upper())

    def _parent(
        self, item: TruthItem, source: Callable[[str], TruthItem | None]
    ) -> TruthItem | None:
        return source(item.parent) if item.parent else None

    # -- auth and metadata -----------------------------------------------------------------------

    def oauth_token(self, request: SandboxRequest, _v: str) -> SandboxResponse:
        body = request.json()
        status, payload = self.auth.grant(body if isinstance(body, dict) else {})
        return json_response(payload, status)

    def server_info(self, request: SandboxRequest, v: str) -> SandboxResponse:
        now = self.now()
        info: dict[str, Any] = {
            "baseUrl": self.base_url,
            "version": "1001.0.0-SNAPSHOT" if self.cloud else "9.12.15",
            "versionNumbers": [1001, 0, 0] if self.cloud else [9, 12, 15],
            "deploymentType": "Cloud" if self.cloud else "DataCenter",
            "buildNumber": 100289 if self.cloud else 9120015,
            "buildDate": "2026-01-05T00:00:00.000+0000",
            "serverTime": self.renderer.when(now),
            "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71",
            "serverTitle": "Northwind Jira (sandbox)",
        }
        if self.cloud:
            info["serverTimeZone"] = str(self.tz)
        return json_response(info)

    def myself(self, request: SandboxRequest, v: str) -> SandboxResponse:
        user = self.renderer.user("Bridge Service Account") or {}
        user["emailAddress"] = self.auth.email
        user["locale"] = "en_US"
        return json_response(user)

    def field(self, request: SandboxRequest, v: str) -> SandboxResponse:
        return json_response(self.renderer.fields())

    def issuetype(self, request: SandboxRequest, v: str) -> SandboxResponse:
        return json_response([self.renderer.issuetype_details(t) for t in ISSUE_TYPES.values()])

    def project_search(self, request: SandboxRequest, v: str) -> SandboxResponse:
        keys = sorted({project_key(i.number) for i in self.store.current()})
        jsm = {project_key(i.number) for i in self.store.current() if i.kind.value in (
            "incident", "request", "change", "problem")}  # fmt: skip
        start = int(request.param("startAt") or 0)
        limit = min(100, int(request.param("maxResults") or 50))
        values = [self.renderer.project(k, service_desk=k in jsm) for k in keys]
        page = values[start : start + limit]
        last = start + limit >= len(values)
        body: dict[str, Any] = {
            "self": f"{self.base_url}/rest/api/{v}/project/search?startAt={start}",
            "maxResults": limit,
            "startAt": start,
            "total": len(values),
            "isLast": last,
            "values": page,
        }
        if not last:
            body["nextPage"] = (
                f"{self.base_url}/rest/api/{v}/project/search?startAt={start + limit}"
            )
        return json_response(body)

    # -- search ----------------------------------------------------------------------------------

    def _compile(self, jql: str) -> Query:
        return parse_jql(jql, tz=self.tz, now=self.now())

    def _wanted_fields(self, raw: Any, default: str) -> set[str] | None:
        names = _csv(raw) if raw is not None else [default]
        if not names or "*all" in names or "*navigable" in names:
            excluded = {n[1:] for n in names if n.startswith("-")}
            if excluded:
                every = set(self.renderer.all_fields(self.store.current()[0], None)) if len(
                    self.store
                ) else set()  # fmt: skip
                return every - excluded
            return None
        wanted = {n for n in names if not n.startswith("-")}
        if wanted <= {"id", "key"}:
            return set()
        return wanted - {"id", "key"}

    def warm(self) -> None:
        """Render every issue once now (see ``Renderer.every_field``), so that the first client
        to read them does not pay for it: a benchmark's sandbox host calls this at start. More
        issues than the renderer keeps are not rendered ahead (they would push each other out)."""
        items = self.store.current()
        if len(items) > RENDER_CACHE:
            return
        for item in items:
            self.renderer.every_field(item, self.index.item(item.parent) if item.parent else None)

    def _render(
        self, item: TruthItem, fields: set[str] | None, expand: list[str], *, single: bool = False
    ) -> dict[str, Any]:
        parent = self.index.item(item.parent) if item.parent else None
        body = self.renderer.issue(item, parent, fields)
        if "changelog" in expand:
            histories = self.renderer.histories(item, self.extra_histories)
            # Quirk reproduced: searches embed a partial changelog; Data Center's single-issue
            # GET embeds all of it (unless the site caps it too: `single_issue_embed_limit`).
            limit = self.single_limit if single and not self.cloud else self.embed_limit
            recent = histories[-limit:] if limit else histories
            body["changelog"] = {
                "startAt": 0,
                "maxResults": len(recent),
                "total": len(histories),
                "histories": list(reversed(recent)) if self.cloud else recent,
            }
        return body

    def _churn(self, served: list[TruthItem]) -> None:
        if self.faults is None:
            return
        candidates = [i.number for i in served] if served and self.faults.chance(0.5) else None
        for event in self.store.churn(candidates=candidates):
            current = self.store.get(event.number) if event.action == "update" else None
            if current is not None and self.store.is_hidden(current):
                current = None  # ACLs hide it after the change as before: keep it unsearchable
            self.index.change(event.number, current)

    def search_jql(self, request: SandboxRequest, v: str) -> SandboxResponse:
        if not self.cloud:
            return _error(404, "No resource at /search/jql on Data Center.")
        params = self._params(request)
        jql = str(params.get("jql") or "")
        query = self._compile(jql)
        if not query.bounded:
            return _error(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query.",
            )
        fields = self._wanted_fields(params.get("fields"), "id")
        limit = int(params.get("maxResults") or 50)
        limit = max(1, min(limit, 5000 if fields == set() else 100))
        expand = _csv(params.get("expand"))
        digest = hashlib.sha1(jql.encode(), usedforsecurity=False).hexdigest()[:12]
        token = params.get("nextPageToken")
        after: tuple[int, int] | None = None
        offset = 0
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(str(token).encode()))
                if state["j"] != digest:
                    raise ValueError("token of another query")
                after = (int(state["a"][0]), int(state["a"][1])) if "a" in state else None
                offset = int(state.get("o", 0))
            except (ValueError, KeyError, TypeError, IndexError):
                return _error(400, "The provided next page token is invalid or expired.")
        if self.index.fast(query) and not self.offset_tokens:
            hits, more = self.index.page_after(query, after, limit)
            next_state: dict[str, Any] | None = (
                {"j": digest, "a": [hits[-1][0].updated, hits[-1][0].id]} if more and hits else None
            )
        else:
            hits, total = self.index.page_at(query, offset, limit, key=jql)
            more = offset + len(hits) < total
            next_state = {"j": digest, "o": offset + len(hits)} if more else None
        body: dict[str, Any] = {
            "issues": [self._render(item, fields, expand) for _, item in hits],
            "isLast": next_state is None,
        }
        if next_state is not None:
            # Quirk reproduced: on the last page nextPageToken is absent, not null.
            body["nextPageToken"] = base64.urlsafe_b64encode(
                _json.dumps(next_state).encode()
            ).decode()
        if "names" in expand:
            body["names"] = {f["id"]: f["name"] for f in self.renderer.fields()}
        self._churn([item for _, item in hits])
        return json_response(body)

    def approximate_count(self, request: SandboxRequest, v: str) -> SandboxResponse:
        if not self.cloud:
            return _error(404, "No resource at /search/approximate-count on Data Center.")
        query = self._compile(str(self._params(request).get("jql") or ""))
        if not query.bounded:
            return _error(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query.",
            )
        return json_response({"count": self.index.count(query)})

    def search(self, request: SandboxRequest, v: str) -> SandboxResponse:
        if self.cloud:
            # Quirk reproduced: the classic search was removed from Cloud (CHANGE-2046).
            return _error(410, REMOVED)
        params = self._params(request)
        query = self._compile(str(params.get("jql") or ""))
        fields = self._wanted_fields(params.get("fields"), "*navigable")
        start = max(0, int(params.get("startAt") or 0))
        limit = max(0, min(int(params.get("maxResults") or 50), self.max_results))
        expand = _csv(params.get("expand"))
        hits, total = self.index.page_at(query, start, limit, key=str(params.get("jql") or ""))
        body = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": limit,
            "total": total,
            "issues": [self._render(item, fields, expand) for _, item in hits],
        }
        self._churn([item for _, item in hits])
        return json_response(body)

    # -- issues, changelogs and worklogs ---------------------------------------------------------

    def issue(self, request: SandboxRequest, v: str, ref: str) -> SandboxResponse:
        item = self._item(ref)
        if item is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        fields = self._wanted_fields(request.param("fields"), "*all")
        expand = _csv(request.param("expand"))
        return json_response(self._render(item, fields, expand, single=True))

    def issue_changelog(self, request: SandboxRequest, v: str, ref: str) -> SandboxResponse:
        item = self._item(ref)
        if item is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        histories = self.renderer.histories(item, self.extra_histories)
        start = max(0, int(request.param("startAt") or 0))
        limit = max(1, min(100, int(request.param("maxResults") or 100)))
        page = histories[start : start + limit]
        last = start + len(page) >= len(histories)
        path = f"{self.base_url}/rest/api/{v}/issue/{issue_id(item.uid)}/changelog"
        body: dict[str, Any] = {
            "self": f"{path}?maxResults={limit}&startAt={start}",
            "maxResults": limit,
            "startAt": start,
            "total": len(histories),
            "isLast": last,
            "values": page,
        }
        if not last:
            body["nextPage"] = f"{path}?maxResults={limit}&startAt={start + limit}"
        return json_response(body)

    def bulk_changelog(self, request: SandboxRequest, v: str) -> SandboxResponse:
        if not self.cloud:
            return _error(404, "No resource at /changelog/bulkfetch on Data Center.")
        params = self._params(request)
        refs = [str(r) for r in params.get("issueIdsOrKeys") or []]
        if not refs or len(refs) > 1000:
            return _error(400, "issueIdsOrKeys must name between 1 and 1000 issues.")
        field_ids = set(params.get("fieldIds") or [])
        limit = max(1, min(10000, int(params.get("maxResults") or 1000)))
        offset = 0
        if params.get("nextPageToken"):
            offset = int(base64.urlsafe_b64decode(str(params["nextPageToken"]).encode()))
        rows: list[tuple[str, dict[str, Any]]] = []
        for ref in refs:
            item = self._item(ref)
            if item is None:
                continue
            for history in self.renderer.histories(item, self.extra_histories):
                if field_ids and not any(i.get("fieldId") in field_ids for i in history["items"]):
                    continue
                rows.append((str(issue_id(item.uid)), history))
        page = rows[offset : offset + limit]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for iid, history in page:
            grouped.setdefault(iid, []).append(history)
        body: dict[str, Any] = {
            "issueChangeLogs": [{"issueId": k, "changeHistories": h} for k, h in grouped.items()]
        }
        if offset + limit < len(rows):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return json_response(body)

    def _all_worklogs(self) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            cached = self._worklog_cache
            if cached is not None and cached[0] == self.store.revision:
                return cached[1]
        out = []
        for item in self.store.current():
            if self.store.is_hidden(item):
                continue
            for worklog in self.renderer.worklogs(item):
                when = datetime.strptime(worklog["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
                out.append((epoch_ms(when), worklog))
        out.sort(key=lambda pair: (pair[0], int(pair[1]["id"])))
        with self._lock:
            self._worklog_cache = (self.store.revision, out)
        return out

    def worklog_updated(self, request: SandboxRequest, v: str) -> SandboxResponse:
        since = int(request.param("since") or 0)
        # Quirk reproduced: worklogs changed in the last minute are left out.
        horizon = epoch_ms(self.now() - timedelta(minutes=1))
        rows = [(t, w) for t, w in self._all_worklogs() if since <= t < horizon]
        page = rows[:1000]
        last = len(rows) <= 1000
        until = page[-1][0] if page else since
        body: dict[str, Any] = {
            "values": [
                {"worklogId": int(w["id"]), "updatedTime": t, "properties": []} for t, w in page
            ],
            "since": since,
            "until": until,
            "self": f"{self.base_url}/rest/api/{v}/worklog/updated?since={since}",
            "lastPage": last,
        }
        if not last:
            body["nextPage"] = f"{self.base_url}/rest/api/{v}/worklog/updated?since={until}"
        return json_response(body)

    def worklog_deleted(self, request: SandboxRequest, v: str) -> SandboxResponse:
        since = int(request.param("since") or 0)
        return json_response({"values": [], "since": since, "until": since, "lastPage": True,
                              "self": f"{self.base_url}/rest/api/{v}/worklog/deleted"})  # fmt: skip

    def worklog_list(self, request: SandboxRequest, v: str) -> SandboxResponse:
        ids = {int(i) for i in (self._params(request).get("ids") or [])}
        if len(ids) > 1000:
            return _error(400, "The number of worklog ids must not exceed 1000.")
        return json_response([w for _, w in self._all_worklogs() if int(w["id"]) in ids])
