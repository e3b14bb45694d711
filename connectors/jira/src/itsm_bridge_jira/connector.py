"""The Jira connector: Cloud and Data Center issues as WorkItems, complete and time-zone safe.

One pull of one kind runs in three steps over a window closed in the past:

1. the main pass pages ``updated >= lo AND updated < hi ORDER BY updated ASC, id ASC`` with
   ``hi`` = the server's clock minus ``lag_seconds``; each page carries a keyset cursor;
2. a census reads the window's ids alone (cheap, large pages) and fetches anything the main
   pass did not see (offset shifts, late indexing on Cloud's eventually consistent search);
3. catch-up passes read ``[hi, now - lag)`` for records that changed while the pull ran, until
   a pass finds nothing new; the final cursor closes at that pass's upper bound.

Each record is emitted once per pull. A record already emitted that changed again during the
pull is not emitted twice; the final watermark is held at its new ``updated`` so the next pull
reads the newer version.

API: https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/ (Cloud),
https://docs.atlassian.com/software/jira/docs/api/REST/latest/ (Data Center).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from itsm_bridge import (
    Capabilities,
    CompletenessCheck,
    Connector,
    ConnectorOptions,
    Cursor,
    Endpoint,
    Kind,
    Page,
    Reject,
    Status,
    WorkItem,
)
from itsm_bridge._time import to_epoch_ms
from itsm_bridge_jira.changelog import attach_changelogs
from itsm_bridge_jira.deployment import Deployment, detect, server_time
from itsm_bridge_jira.fields import FieldCatalog
from itsm_bridge_jira.jql import check_user_jql, window_jql
from itsm_bridge_jira.kinds import KindRules
from itsm_bridge_jira.mapping import (
    DEFAULT_INVESTMENT_MAP,
    PRIORITY_BY_NAME,
    STATUS_BY_NAME,
    MappingConfig,
    ServiceFrom,
    TeamFrom,
    is_kind,
    map_issue,
    normalise_value,
    parse_jira_datetime,
)
from itsm_bridge_jira.window import search_pages
from itsm_bridge_jira.worklogs import worklogs_since

__all__ = ["DEFAULT_EXTRA_FIELDS", "JiraConnector", "JiraOptions", "Site"]

log = logging.getLogger("itsm_bridge.jira")
_sleep = time.sleep  # waits for the server clock to pass a window's end (patchable in tests)

# extra[...] key -> the field name Jira Service Management uses for it.
DEFAULT_EXTRA_FIELDS: Mapping[str, str] = {
    "change_type": "Change type",
    "risk": "Change risk",
    "planned_start": "Planned start",
    "planned_end": "Planned end",
    "actual_start": "Actual start",
    "actual_end": "Actual end",
    "request_type": "Request Type",
}

# Fields every search asks for (Cloud's /search/jql returns only ids unless fields are named).
BASE_FIELDS: tuple[str, ...] = (
    "summary",
    "description",
    "issuetype",
    "status",
    "resolution",
    "priority",
    "assignee",
    "reporter",
    "created",
    "updated",
    "resolutiondate",
    "timespent",
    "timeoriginalestimate",
    "aggregatetimespent",
    "parent",
    "components",
    "labels",
    "project",
)


class JiraOptions(ConnectorOptions):
    """Options of the ``jira`` connector (plus the common ones of every connector)."""

    deployment: Literal["auto", "cloud", "datacenter", "server"] = "auto"
    projects: tuple[str, ...] = Field(default=(), description="Project keys (all if empty).")
    jql: str | None = Field(default=None, description="Extra JQL restriction, without ORDER BY.")
    kind_map: dict[str, Kind] = Field(default_factory=dict, description="Issue type -> kind.")
    team_from: TeamFrom = "field"
    team_field: str | None = "Team"
    service_from: ServiceFrom = "component"
    service_field: str | None = None
    story_points_field: str | None = "Story Points"
    investment_field: str | None = "Investment Category"
    investment_map: dict[str, str] = Field(default_factory=dict)
    epic_link_field: str | None = "Epic Link"
    extra_fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EXTRA_FIELDS))
    status_map: dict[str, Status] = Field(default_factory=dict)
    priority_map: dict[str, int] = Field(default_factory=dict)
    service_classification: dict[str, Literal["business", "technical"]] = Field(
        default_factory=dict
    )
    changelog: bool = False
    worklogs: bool = False
    census: bool = True
    catchup_passes: int = Field(default=3, ge=0, le=20)
    census_page_size: int = Field(default=5000, ge=1, le=10_000)
    browse_url: str | None = None


@dataclass(frozen=True)
class Site:
    """What is learned once per site: deployment, fields, issue types and the mapping config."""

    deployment: Deployment
    catalog: FieldCatalog
    type_ids: Mapping[Kind, Sequence[str]]
    mapping: MappingConfig
    account_time_zone: str | None = None
    fields: tuple[str, ...] = field(default=BASE_FIELDS)


@dataclass
class _Run:
    """Book-keeping of one pull of one kind: what was emitted, and at which ``updated``."""

    kind: Kind
    lo: datetime | None
    skip_at_lo: frozenset[str]
    floor: datetime | None = None
    emitted: dict[str, datetime] = field(default_factory=dict)
    watermark: datetime | None = None
    at_watermark: set[str] = field(default_factory=set)
    census_ids: set[str] = field(default_factory=set)
    held: datetime | None = None


class JiraConnector(Connector):
    """Jira Cloud (REST v3) and Data Center / Server (REST v2) issues."""

    name: ClassVar[str] = "jira"
    options_model: ClassVar[type[ConnectorOptions]] = JiraOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True, parallel_ranges=False, completeness_check=True, census=True
    )
    options: JiraOptions

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._user_jql = check_user_jql(self.options.jql)
        self._site: Site | None = None
        self._site_lock = threading.Lock()
        self.restarts = 0  # offset-shift restarts of Data Center windows (for the run report)
        self.census_found = 0  # issues the census found that the main pass had not returned

    # -- declarations ----------------------------------------------------------------------------

    @property
    def kinds(self) -> Sequence[Kind]:
        return list(Kind)

    def endpoints(self) -> Sequence[Endpoint]:
        search = "/rest/api/3/search/jql (Cloud) | /rest/api/2/search (Data Center)"
        return [
            Endpoint(f"search:{kind.value}", kind, search, f"issues whose type maps to {kind}")
            for kind in Kind
        ]

    # -- mapping ---------------------------------------------------------------------------------

    def map_record(self, kind: Kind, raw: Mapping[str, Any]) -> WorkItem:
        return map_issue(raw, self.mapping_config())

    def mapping_config(self, catalog: FieldCatalog | None = None) -> MappingConfig:
        """The mapper's configuration: the discovered site's, or one built from options alone."""
        if catalog is None and self._site is not None:
            return self._site.mapping
        catalog = catalog or FieldCatalog()
        opts = self.options
        extra = {k: catalog.resolve(v) for k, v in opts.extra_fields.items()}
        epic_link = catalog.epic_link() if opts.epic_link_field == "Epic Link" else None
        return MappingConfig(
            source=self.source,
            browse_url=opts.browse_url or self.base_url,
            kinds=KindRules.build(opts.kind_map),
            team_from=opts.team_from,
            team_field=catalog.resolve(opts.team_field),
            service_from=opts.service_from,
            service_field=catalog.resolve(opts.service_field),
            story_points_field=catalog.resolve(opts.story_points_field),
            investment_field=catalog.resolve(opts.investment_field),
            epic_link_field=epic_link or catalog.resolve(opts.epic_link_field),
            extra_fields={k: v for k, v in extra.items() if v},
            investment_map={
                **DEFAULT_INVESTMENT_MAP,
                **{normalise_value(k): v.lower() for k, v in opts.investment_map.items()},
            },
            status_names={
                **STATUS_BY_NAME,
                **{normalise_value(k): v for k, v in opts.status_map.items()},
            },
            priorities={
                **PRIORITY_BY_NAME,
                **{normalise_value(k): v for k, v in opts.priority_map.items()},
            },
            service_classification=dict(opts.service_classification),
        )

    # -- site discovery (once per connector) -----------------------------------------------------

    def site(self) -> Site:
        """Deployment, ``/field`` and ``/issuetype``, read once and then reused."""
        with self._site_lock:
            if self._site is None:
                self._site = self._discover()
            return self._site

    def _discover(self) -> Site:
        deployment, _ = detect(self.transport, self.options.deployment)
        api = deployment.api
        me = self.transport.get(f"{api}/myself", endpoint="myself").data
        account_tz = me.get("timeZone") if isinstance(me, dict) else None
        raw_fields = self.transport.get(f"{api}/field", endpoint="field").data or []
        catalog = FieldCatalog.from_fields(f for f in raw_fields if isinstance(f, dict))
        raw_types = self.transport.get(f"{api}/issuetype", endpoint="issuetype").data or []
        mapping = self.mapping_config(catalog)
        type_ids = mapping.kinds.type_ids_by_kind([t for t in raw_types if isinstance(t, dict)])
        wanted = list(BASE_FIELDS)
        for field_id in (
            mapping.team_field,
            mapping.service_field,
            mapping.story_points_field,
            mapping.investment_field,
            mapping.epic_link_field,
            *mapping.extra_fields.values(),
        ):
            if field_id and field_id not in wanted:
                wanted.append(field_id)
        log.info(
            "jira site %s: %s, account time zone %s, %d fields, %d issue types",
            self.source,
            deployment.kind,
            account_tz,
            len(catalog.names),
            len(raw_types),
        )
        return Site(deployment, catalog, type_ids, mapping, account_tz, tuple(wanted))

    # -- pulling ---------------------------------------------------------------------------------

    def _now(self, site: Site) -> datetime:
        reported = server_time(self.transport, site.deployment)
        return reported if reported is not None else datetime.now(UTC)

    def _type_clause(self, site: Site, kind: Kind) -> dict[str, Any] | None:
        """JQL type restriction for ``kind``; ``None`` when the site has no type of that kind."""
        if kind is Kind.TASK:
            others = [t for k, ids in site.type_ids.items() if k is not Kind.TASK for t in ids]
            return {"type_ids": None, "exclude_type_ids": others}
        ids = list(site.type_ids.get(kind, ()))
        return {"type_ids": ids, "exclude_type_ids": ()} if ids else None

    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        site = self.site()
        opts = self.options
        lag = timedelta(seconds=opts.lag_seconds)
        hi = self._now(site) - lag
        lo: datetime | None = since
        skip: frozenset[str] = frozenset()
        if cursor is not None and cursor.watermark is not None:
            lo = cursor.watermark - timedelta(seconds=opts.overlap_seconds)
            if opts.overlap_seconds == 0:
                skip = frozenset(cursor.boundary_ids)
            if since is not None and since > lo:
                lo = since
        run = _Run(kind, lo, skip, floor=cursor.watermark if cursor is not None else None)
        types = self._type_clause(site, kind)
        if types is None or (lo is not None and lo >= hi):
            yield self._final(site, run, hi)
            return

        def jql(window_lo: datetime | None, window_hi: datetime | None, exact: bool = False) -> str:
            return window_jql(
                lo=window_lo,
                hi=window_hi,
                projects=opts.projects,
                user_jql=self._user_jql,
                exact_lo=exact,
                **types,
            )

        worklogs: dict[str, list[dict[str, Any]]] | None = None
        if opts.worklogs:
            since_ms = to_epoch_ms(lo) if lo is not None else 0
            worklogs = worklogs_since(self.transport, site.deployment, since_ms)

        expand = ["changelog"] if opts.changelog and not site.deployment.cloud else []

        def main_from(position: datetime | None) -> str:
            # A restart resumes at a record's own `updated`: exact, nothing to widen.
            if position is not None and (lo is None or position > lo):
                return jql(position, hi, True)
            return jql(lo, hi)

        # 1. the main pass
        for records in search_pages(
            self.transport,
            site.deployment,
            main_from,
            fields=site.fields,
            page_size=opts.page_size,
            expand=expand,
            start=lo,
            on_restart=self._count_restart,
        ):
            yield self._page(site, run, records, upper=hi, worklogs=worklogs, expand=expand)
        # 2. the census: ids of the window compared with what was emitted
        if opts.census:
            # Exact lower bound: the minute-widened records before `lo` are not missing.
            missing = self._census(site, run, lambda position: jql(position or lo, hi, True))
            for page in self._fetch_ids(site, run, missing, worklogs, expand):
                yield page
            window = f"[{lo.isoformat() if lo else '-inf'}, {hi.isoformat()})"
            fetched = sum(1 for i in run.census_ids if i in run.emitted)
            self.stats.completeness.append(
                CompletenessCheck(kind, window, expected=len(run.census_ids), fetched=fetched)
            )
        # 3. catch-up: records that changed while the pull ran. Changes are only trusted once
        # they are `lag` old (clock skew, Cloud's eventually consistent index), so the first pass
        # waits until the window can close after the last page was read.
        paged_until = self._now(site)
        for number in range(opts.catchup_passes):
            upper = self._now(site) - lag
            if number == 0 and upper < paged_until:
                _sleep((paged_until - upper).total_seconds())
                upper = paged_until
            if upper <= hi:
                break
            before = len(run.emitted)
            moved = False

            def catchup(
                position: datetime | None, low: datetime = hi, high: datetime = upper
            ) -> str:
                return jql(position or low, high)

            for records in search_pages(
                self.transport,
                site.deployment,
                catchup,
                fields=site.fields,
                page_size=opts.page_size,
                expand=expand,
                start=hi,
                on_restart=self._count_restart,
            ):
                page = self._page(
                    site, run, records, upper=upper, worklogs=worklogs, expand=expand,
                    checkpoint=False,
                )  # fmt: skip
                moved = moved or bool(page.items or page.rejects)
                yield page
            hi = upper
            if not moved and len(run.emitted) == before:
                break
        yield self._final(site, run, hi)

    def _count_restart(self) -> None:
        self.restarts += 1
        log.info("jira %s: the window shrank while paging; restarting from the keyset", self.source)

    def report(self) -> dict[str, Any]:
        return {**super().report(), "restarts": self.restarts, "census_found": self.census_found}

    def _final(self, site: Site, run: _Run, hi: datetime) -> Page:
        watermark = hi if run.held is None else min(hi, run.held)
        if run.floor is not None and watermark < run.floor:
            watermark = run.floor  # a server clock behind the cursor must not move it back
        boundary = tuple(sorted(i for i, when in run.emitted.items() if when == watermark))
        # window_end: where this pull's window closed. The watermark is below it only when an
        # issue already returned changed again during the pull (the next pull reads it).
        cursor = Cursor(
            watermark=watermark,
            boundary_ids=boundary,
            state={"deployment": site.deployment.kind, "window_end": hi.isoformat()},
        )
        return Page(run.kind, (), (), cursor=cursor, final=True)

    def _accept(
        self, site: Site, run: _Run, records: Sequence[dict[str, Any]], upper: datetime
    ) -> list[dict[str, Any]]:
        """The records of this page that belong to the pull and were not emitted yet."""
        accepted: list[dict[str, Any]] = []
        for record in records:
            issue_id = str(record.get("id") or "")
            fields = record.get("fields")
            try:
                updated = parse_jira_datetime(
                    fields.get("updated") if isinstance(fields, Mapping) else None
                )
            except ValueError:
                updated = None
            if updated is None:
                if issue_id and issue_id not in run.emitted:
                    accepted.append(record)  # the mapper rejects it with the reason
                    run.emitted[issue_id] = datetime.min.replace(tzinfo=UTC)
                continue
            if issue_id in run.emitted:
                if updated > run.emitted[issue_id]:
                    # Emitted earlier at an older version: hold the watermark so the next pull
                    # reads this one, rather than emitting the record twice in one pull.
                    run.held = updated if run.held is None else min(run.held, updated)
                continue
            if run.lo is not None and updated < run.lo:
                continue  # the server-side bound is widened to the minute; this is exact
            if updated >= upper:
                continue  # belongs to the next window (or to the catch-up pass)
            if updated == run.lo and issue_id in run.skip_at_lo:
                continue
            if not is_kind(record, run.kind, site.mapping):
                continue  # an issue type created after discovery; its own kind pulls it
            run.emitted[issue_id] = updated
            accepted.append(record)
        return accepted

    def _page(
        self,
        site: Site,
        run: _Run,
        records: Sequence[dict[str, Any]],
        *,
        upper: datetime,
        worklogs: Mapping[str, list[dict[str, Any]]] | None,
        expand: Sequence[str],
        checkpoint: bool = True,
    ) -> Page:
        accepted = self._accept(site, run, records, upper)
        if self.options.changelog:
            attach_changelogs(self.transport, site.deployment, accepted)
        if worklogs is not None:
            for record in accepted:
                record["worklogs"] = worklogs.get(str(record.get("id")), [])
        items: list[WorkItem] = []
        rejects: list[Reject] = []
        for record in accepted:
            result = self.map_safely(run.kind, record, str(record.get("id") or "") or None)
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                items.append(result)
                if checkpoint and (run.watermark is None or result.updated_at > run.watermark):
                    run.watermark = result.updated_at
                    run.at_watermark = set()
                if checkpoint and result.updated_at == run.watermark:
                    run.at_watermark.add(result.id.rsplit(":", 1)[-1])
        self.stats.count_page(len(items), len(rejects))
        for item in items:
            for code in item.extra.get("unknown_codes", ()):
                self.stats.unknown_code(str(code))
        cursor = None
        if checkpoint and run.watermark is not None:
            boundary = tuple(sorted(run.at_watermark))
            cursor = Cursor(
                watermark=run.watermark,
                boundary_ids=boundary,
                state={"deployment": site.deployment.kind},
            )
        return Page(run.kind, items, rejects, cursor=cursor, final=False)

    def _census(
        self, site: Site, run: _Run, jql_from: Callable[[datetime | None], str]
    ) -> list[str]:
        """Ids in the window that the main pass did not emit (id-only pages, large).

        On Data Center the census asks for ``updated`` too, so that a shifted offset restarts it
        from its keyset like the main pass instead of from the beginning.
        """
        cloud = site.deployment.cloud
        missing: list[str] = []
        seen: set[str] = set()
        for records in search_pages(
            self.transport,
            site.deployment,
            jql_from,
            fields=["id"] if cloud else ["updated"],
            page_size=self.options.census_page_size,
            start=run.lo,
            keyset=not cloud,
            on_restart=self._count_restart,
        ):
            for record in records:
                issue_id = str(record.get("id") or "")
                if issue_id:
                    run.census_ids.add(issue_id)
                if issue_id and issue_id not in run.emitted and issue_id not in seen:
                    seen.add(issue_id)
                    missing.append(issue_id)
        self.census_found += len(missing)
        if missing:
            log.warning(
                "jira census: %d %s issues were not returned by the main pass; fetching them",
                len(missing),
                run.kind.value,
            )
        return missing

    def _fetch_ids(
        self,
        site: Site,
        run: _Run,
        ids: Sequence[str],
        worklogs: Mapping[str, list[dict[str, Any]]] | None,
        expand: Sequence[str],
    ) -> Iterator[Page]:
        far = datetime.max.replace(tzinfo=UTC)
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            query = window_jql(lo=None, hi=None, issue_ids=chunk)
            for records in search_pages(
                self.transport,
                site.deployment,
                _constant(query),
                fields=site.fields,
                page_size=100,
                expand=expand,
                keyset=False,
            ):
                yield self._page(
                    site, run, records, upper=far, worklogs=worklogs, expand=expand,
                    checkpoint=False,
                )  # fmt: skip

    def census(self, kind: Kind) -> Iterator[str]:
        """Every visible issue id of ``kind`` (id-only pages; for marking deletions)."""
        site = self.site()
        types = self._type_clause(site, kind)
        if types is None:
            return
        query = window_jql(
            lo=None,
            hi=self._now(site) + timedelta(days=1),
            projects=self.options.projects,
            user_jql=self._user_jql,
            **types,
        )
        for records in search_pages(
            self.transport,
            site.deployment,
            lambda _position: query,
            fields=["id"],
            page_size=self.options.census_page_size,
            keyset=False,
        ):
            for record in records:
                if record.get("id"):
                    yield str(record["id"])

    def approximate_count(self, kind: Kind, since: datetime | None = None) -> int | None:
        """Cloud's estimate of issues of ``kind`` updated since ``since`` (None on Data Center)."""
        site = self.site()
        types = self._type_clause(site, kind)
        if not site.deployment.cloud:
            return None
        if types is None:
            return 0
        query = window_jql(
            lo=since,
            hi=self._now(site),
            projects=self.options.projects,
            user_jql=self._user_jql,
            order=False,
            **types,
        )
        data = self.transport.request(
            "POST", "/rest/api/3/search/approximate-count", json={"jql": query}, endpoint="count"
        ).data
        count = data.get("count") if isinstance(data, dict) else None
        return int(count) if isinstance(count, int) else None


def _constant(query: str) -> Callable[[datetime | None], str]:
    def jql(_position: datetime | None) -> str:
        return query

    return jql
