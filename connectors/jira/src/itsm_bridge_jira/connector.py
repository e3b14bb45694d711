"""The Jira connector: Cloud and Data Center issues as WorkItems, complete and time-zone safe.

This module holds the declarations (options, kinds, endpoints), the site discovery done once per
site (deployment, ``/field``, ``/issuetype``) and the pure ``map_record``; one pull of one kind is
:class:`itsm_bridge_jira.pull.KindPull` (main pass, census, catch-up).

API: https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/ (Cloud),
https://docs.atlassian.com/software/jira/docs/api/REST/latest/ (Data Center).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from itsm_bridge import (
    Capabilities,
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
from itsm_bridge.connector import parse_kinds, parse_since, relaxed_gc
from itsm_bridge_jira.deployment import (
    Deployment,
    ServerClock,
    cloud_host,
    discover,
    server_reading,
)
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
    map_issue,
    normalise_value,
)
from itsm_bridge_jira.pull import KindPull
from itsm_bridge_jira.window import search_pages

__all__ = ["DEFAULT_EXTRA_FIELDS", "JiraConnector", "JiraOptions", "Site"]

log = logging.getLogger("itsm_bridge.jira")

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


PortfolioCategory = Annotated[
    Literal["run", "grow", "transform"],
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
]


class JiraOptions(ConnectorOptions):
    """Options of the ``jira`` connector (plus the common ones of every connector)."""

    # Cloud caps a search page at 100 issues, so a pull is hundreds of round trips: eight pages
    # in flight by default (the governor still slows down on 429s and Jira's rate headers).
    max_workers: int = Field(default=8, ge=1, le=32, description="Parallel ranges per kind.")
    max_concurrency: int = Field(default=8, ge=1, le=64)
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
    investment_map: dict[str, PortfolioCategory] = Field(
        default_factory=dict, description="Investment value -> run, grow or transform."
    )
    epic_link_field: str | None = "Epic Link"
    extra_fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EXTRA_FIELDS))
    status_map: dict[str, Status] = Field(default_factory=dict)
    priority_map: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=dict, description="Priority name -> 1 (highest) to 5."
    )
    service_classification: dict[str, Literal["business", "technical"]] = Field(
        default_factory=dict
    )
    changelog: bool = False
    worklogs: bool = False
    census: bool = True
    catchup_passes: int = Field(default=3, ge=0, le=20)
    census_page_size: int = Field(default=5000, ge=1, le=10_000)
    browse_url: str | None = None

    @model_validator(mode="after")
    def _service_needs_its_field(self) -> JiraOptions:
        if self.service_from == "field" and not self.service_field:
            # else every item's service is None, without a word
            raise ValueError("service_from='field' needs service_field (the field's name or id)")
        return self


@dataclass(frozen=True)
class Site:
    """What is learned once per site: deployment, fields, issue types and the mapping config."""

    deployment: Deployment
    catalog: FieldCatalog
    type_ids: Mapping[Kind, Sequence[str]]
    mapping: MappingConfig
    account_time_zone: str | None = None
    fields: tuple[str, ...] = field(default=BASE_FIELDS)


class JiraConnector(Connector):
    """Jira Cloud (REST v3) and Data Center / Server (REST v2) issues."""

    name: ClassVar[str] = "jira"
    options_model: ClassVar[type[ConnectorOptions]] = JiraOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        incremental=True, parallel_ranges=True, completeness_check=True, census=True
    )
    options: JiraOptions

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.user_jql = check_user_jql(self.options.jql)
        self._site: Site | None = None
        self._site_lock = threading.Lock()
        self.clock: ServerClock | None = None  # the server's clock, once the site is known
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
        readings: list[tuple[datetime, float, float]] = []
        # serverInfo (deployment and clock), the account, fields and types: one round trip.
        deployment, data = discover(
            self.transport,
            self.options.deployment,
            ("myself", "field", "issuetype"),
            cloud_site=cloud_host(self.base_url),
            observe=lambda *r: readings.append(r),
        )
        clock = ServerClock(lambda: server_reading(self.transport, deployment))
        for reading in readings:  # serverInfo's own reading primes the clock: no extra request
            clock.observe(*reading)
        me, raw_fields, raw_types = data["myself"], data["field"], data["issuetype"]
        self.clock = clock
        account_tz = me.get("timeZone") if isinstance(me, dict) else None
        catalog = FieldCatalog.from_fields(f for f in raw_fields or [] if isinstance(f, dict))
        raw_types = raw_types or []
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

    def server_now(self, site: Site) -> datetime:
        """The server's time now, or a little before it (see :class:`ServerClock`)."""
        if self.clock is None:
            self.clock = ServerClock(lambda: server_reading(self.transport, site.deployment))
        return self.clock.earliest()

    def type_clause(self, site: Site, kind: Kind) -> dict[str, Any] | None:
        """JQL type restriction for ``kind``; ``None`` when the site has no type of that kind."""
        if kind is Kind.TASK:
            others = [t for k, ids in site.type_ids.items() if k is not Kind.TASK for t in ids]
            return {"type_ids": None, "exclude_type_ids": others}
        ids = list(site.type_ids.get(kind, ()))
        return {"type_ids": ids, "exclude_type_ids": ()} if ids else None

    def pull_pages(
        self, kind: Kind, cursor: Cursor | None = None, *, since: datetime | None = None
    ) -> Iterator[Page]:
        """Main pass, census and catch-up over one window (see :mod:`itsm_bridge_jira.pull`)."""
        yield from KindPull(self, self.site(), kind, cursor, since).pages()

    def pull(
        self,
        kinds: Iterable[str | Kind] | None = None,
        since: datetime | str | None = None,
        *,
        on_reject: Callable[[Reject], None] | None = None,
    ) -> Iterator[WorkItem]:
        """Every issue of ``kinds`` updated at or after ``since``, each once.

        As :meth:`Connector.pull`, except that every kind's main pass comes first and the
        catch-up passes after them: each kind's catch-up waits until its window is
        ``lag_seconds`` old, and by then the other kinds' pages have usually filled that time.
        """
        wanted = parse_kinds(kinds, self.kinds)
        bound = parse_since(since)
        site = self.site()
        pulls = [KindPull(self, site, kind, None, bound) for kind in wanted]
        with relaxed_gc():
            for pages in [p.opening for p in pulls] + [p.closing for p in pulls]:
                yield from self._items_of(pages(), on_reject)

    def count_restart(self) -> None:
        self.restarts += 1
        log.info("jira %s: the window shrank while paging; restarting from the keyset", self.source)

    def report(self) -> dict[str, Any]:
        return {**super().report(), "restarts": self.restarts, "census_found": self.census_found}

    def census(self, kind: Kind) -> Iterator[str]:
        """Every visible issue id of ``kind`` (id-only pages; for marking deletions)."""
        site = self.site()
        types = self.type_clause(site, kind)
        if types is None:
            return
        query = window_jql(
            lo=None,
            hi=self.server_now(site) + timedelta(days=1),
            projects=self.options.projects,
            user_jql=self.user_jql,
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
        types = self.type_clause(site, kind)
        if not site.deployment.cloud:
            return None
        if types is None:
            return 0
        query = window_jql(
            lo=since,
            hi=self.server_now(site),
            projects=self.options.projects,
            user_jql=self.user_jql,
            order=False,
            **types,
        )
        data = self.transport.request(
            "POST", "/rest/api/3/search/approximate-count", json={"jql": query}, endpoint="count"
        ).data
        count = data.get("count") if isinstance(data, dict) else None
        return int(count) if isinstance(count, int) else None
