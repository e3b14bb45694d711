"""One pull of one kind: a window closed in the past, read completely, each issue once.

1. The **main pass** pages ``updated >= lo AND updated < hi ORDER BY updated ASC, id ASC`` with
   ``hi`` = the server's clock minus ``lag_seconds``; each page carries a keyset cursor.
2. The **census** reads the window's ids alone (cheap, large pages) and fetches anything the main
   pass did not see (offset shifts, late indexing on Cloud's eventually consistent search).
3. **Catch-up** passes read ``[hi, now - lag)`` for issues that changed while the pull ran, until
   a pass finds nothing new; the final cursor closes the window at that pass's upper bound.

An issue already emitted that changed again during the pull is not emitted twice: the final
watermark is held at its new ``updated`` so the next pull reads the newer version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsm_bridge import CompletenessCheck, Cursor, Kind, Page, Reject, WorkItem
from itsm_bridge._time import to_epoch_ms
from itsm_bridge_jira.changelog import attach_changelogs
from itsm_bridge_jira.jql import window_jql
from itsm_bridge_jira.mapping import is_kind, parse_jira_datetime
from itsm_bridge_jira.window import search_pages
from itsm_bridge_jira.worklogs import worklogs_since

if TYPE_CHECKING:
    from itsm_bridge_jira.connector import JiraConnector, Site

__all__ = ["KindPull"]

log = logging.getLogger("itsm_bridge.jira")
_sleep = time.sleep  # waits for the server clock to pass a window's end (patchable in tests)


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


class KindPull:
    """The pull of one kind from a cursor (or ``since``); :meth:`pages` yields its pages."""

    def __init__(
        self,
        conn: JiraConnector,
        site: Site,
        kind: Kind,
        cursor: Cursor | None,
        since: datetime | None,
    ) -> None:
        self.conn = conn
        self.site = site
        self.kind = kind
        self.cursor = cursor
        self.since = since
        self.run = _Run(kind, None, frozenset())

    def pages(self) -> Iterator[Page]:
        conn, site, kind, cursor, since = self.conn, self.site, self.kind, self.cursor, self.since
        opts = conn.options
        lag = timedelta(seconds=opts.lag_seconds)
        hi = conn.server_now(site) - lag
        lo: datetime | None = since
        skip: frozenset[str] = frozenset()
        if cursor is not None and cursor.watermark is not None:
            lo = cursor.watermark - timedelta(seconds=opts.overlap_seconds)
            if opts.overlap_seconds == 0:
                skip = frozenset(cursor.boundary_ids)
            if since is not None and since > lo:
                lo = since
        run = self.run = _Run(
            kind, lo, skip, floor=cursor.watermark if cursor is not None else None
        )
        types = conn.type_clause(site, kind)
        if types is None or (lo is not None and lo >= hi):
            yield self.final(hi)
            return

        def jql(window_lo: datetime | None, window_hi: datetime | None, exact: bool = False) -> str:
            return window_jql(
                lo=window_lo,
                hi=window_hi,
                projects=opts.projects,
                user_jql=conn.user_jql,
                exact_lo=exact,
                **types,
            )

        worklogs: dict[str, list[dict[str, Any]]] | None = None
        if opts.worklogs:
            since_ms = to_epoch_ms(lo) if lo is not None else 0
            worklogs = worklogs_since(self.conn.transport, site.deployment, since_ms)

        expand = ["changelog"] if opts.changelog and not site.deployment.cloud else []

        def main_from(position: datetime | None) -> str:
            # A restart resumes at a record's own `updated`: exact, nothing to widen.
            if position is not None and (lo is None or position > lo):
                return jql(position, hi, True)
            return jql(lo, hi)

        # 1. the main pass
        for records in search_pages(
            self.conn.transport,
            site.deployment,
            main_from,
            fields=site.fields,
            page_size=opts.page_size,
            expand=expand,
            start=lo,
            on_restart=self.conn.count_restart,
        ):
            yield self.page(records, upper=hi, worklogs=worklogs, expand=expand)
        # 2. the census: ids of the window compared with what was emitted
        if opts.census:
            # Exact lower bound: the minute-widened records before `lo` are not missing.
            missing = self.census(lambda position: jql(position or lo, hi, True))
            for page in self.fetch_ids(missing, worklogs, expand):
                yield page
            window = f"[{lo.isoformat() if lo else '-inf'}, {hi.isoformat()})"
            fetched = sum(1 for i in run.census_ids if i in run.emitted)
            self.conn.stats.completeness.append(
                CompletenessCheck(kind, window, expected=len(run.census_ids), fetched=fetched)
            )
        # 3. catch-up: records that changed while the pull ran. Changes are only trusted once
        # they are `lag` old (clock skew, Cloud's eventually consistent index), so the first pass
        # waits until the window can close after the last page was read.
        paged_until = conn.server_now(site)
        for number in range(opts.catchup_passes):
            upper = conn.server_now(site) - lag
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
                self.conn.transport,
                site.deployment,
                catchup,
                fields=site.fields,
                page_size=opts.page_size,
                expand=expand,
                start=hi,
                on_restart=self.conn.count_restart,
            ):
                page = self.page(
                    records, upper=upper, worklogs=worklogs, expand=expand,
                    checkpoint=False,
                )  # fmt: skip
                moved = moved or bool(page.items or page.rejects)
                yield page
            hi = upper
            if not moved and len(run.emitted) == before:
                break
        yield self.final(hi)

    def final(self, hi: datetime) -> Page:
        site, run = self.site, self.run
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

    def accept(self, records: Sequence[dict[str, Any]], upper: datetime) -> list[dict[str, Any]]:
        """The records of this page that belong to the pull and were not emitted yet."""
        site, run = self.site, self.run
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

    def page(
        self,
        records: Sequence[dict[str, Any]],
        *,
        upper: datetime,
        worklogs: Mapping[str, list[dict[str, Any]]] | None,
        expand: Sequence[str],
        checkpoint: bool = True,
    ) -> Page:
        site, run = self.site, self.run
        accepted = self.accept(records, upper)
        if self.conn.options.changelog:
            attach_changelogs(self.conn.transport, site.deployment, accepted)
        if worklogs is not None:
            for record in accepted:
                record["worklogs"] = worklogs.get(str(record.get("id")), [])
        items: list[WorkItem] = []
        rejects: list[Reject] = []
        for record in accepted:
            result = self.conn.map_safely(run.kind, record, str(record.get("id") or "") or None)
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                items.append(result)
                if checkpoint and (run.watermark is None or result.updated_at > run.watermark):
                    run.watermark = result.updated_at
                    run.at_watermark = set()
                if checkpoint and result.updated_at == run.watermark:
                    run.at_watermark.add(result.id.rsplit(":", 1)[-1])
        self.conn.stats.count_page(len(items), len(rejects))
        for item in items:
            for code in item.extra.get("unknown_codes", ()):
                self.conn.stats.unknown_code(str(code))
        cursor = None
        if checkpoint and run.watermark is not None:
            boundary = tuple(sorted(run.at_watermark))
            cursor = Cursor(
                watermark=run.watermark,
                boundary_ids=boundary,
                state={"deployment": site.deployment.kind},
            )
        return Page(run.kind, items, rejects, cursor=cursor, final=False)

    def census(self, jql_from: Callable[[datetime | None], str]) -> list[str]:
        """Ids in the window that the main pass did not emit (id-only pages, large).

        On Data Center the census asks for ``updated`` too, so that a shifted offset restarts it
        from its keyset like the main pass instead of from the beginning.
        """
        site, run = self.site, self.run
        cloud = site.deployment.cloud
        missing: list[str] = []
        seen: set[str] = set()
        for records in search_pages(
            self.conn.transport,
            site.deployment,
            jql_from,
            fields=["id"] if cloud else ["updated"],
            page_size=self.conn.options.census_page_size,
            start=run.lo,
            keyset=not cloud,
            on_restart=self.conn.count_restart,
        ):
            for record in records:
                issue_id = str(record.get("id") or "")
                if issue_id:
                    run.census_ids.add(issue_id)
                if issue_id and issue_id not in run.emitted and issue_id not in seen:
                    seen.add(issue_id)
                    missing.append(issue_id)
        self.conn.census_found += len(missing)
        if missing:
            log.warning(
                "jira census: %d %s issues were not returned by the main pass; fetching them",
                len(missing),
                run.kind.value,
            )
        return missing

    def fetch_ids(
        self,
        ids: Sequence[str],
        worklogs: Mapping[str, list[dict[str, Any]]] | None,
        expand: Sequence[str],
    ) -> Iterator[Page]:
        site = self.site
        far = datetime.max.replace(tzinfo=UTC)
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            query = window_jql(lo=None, hi=None, issue_ids=chunk)
            for records in search_pages(
                self.conn.transport,
                site.deployment,
                _constant(query),
                fields=site.fields,
                page_size=100,
                expand=expand,
                keyset=False,
            ):
                yield self.page(
                    records, upper=far, worklogs=worklogs, expand=expand,
                    checkpoint=False,
                )  # fmt: skip


def _constant(query: str) -> Callable[[datetime | None], str]:
    def jql(_position: datetime | None) -> str:
        return query

    return jql
