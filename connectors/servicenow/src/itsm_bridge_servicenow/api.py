"""The Table API and Aggregate API calls a pull makes, all through the connector's transport.

Vendor pages: Table API ``GET /api/now/table/{table}`` (``platform-apis.md`` A1-A5, A7) and
Aggregate API ``GET /api/now/stats/{table}`` (A10). The error envelope is read here where the
transport would only see a status: a transaction the instance cancelled for exceeding its
execution time halves the page size instead of failing the pull.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from itsm_bridge import (
    EndpointNotFoundError,
    PermissionDeniedError,
    RequestContext,
    ResponseFormatError,
    ServerError,
)
from itsm_bridge.http import HttpResponse, Transport
from itsm_bridge_servicenow.paging import Fetched, PageSize
from itsm_bridge_servicenow.query import count_query, keyset_query
from itsm_bridge_servicenow.tables import TableSpec
from itsm_bridge_servicenow.values import parse_utc, value

__all__ = ["Stats", "TableApi"]

log = logging.getLogger("itsm_bridge.servicenow")

Stats = tuple[int | None, str | None, datetime | None]
"""An Aggregate API answer: the count, the oldest value asked for, and the server's clock."""

_CANCELLED = ("maximum execution time", "transaction cancelled", "transaction canceled")


def _total(response: HttpResponse) -> int | None:
    """``X-Total-Count``, or None where the instance did not send a usable one."""
    header = response.headers.get("X-Total-Count")
    if header is None or not header.strip().isdigit():
        return None
    return int(header)


class TableApi:
    """Pages, counts and probes for one instance; shared by every worker of a pull."""

    def __init__(self, transport: Transport, *, source: str, connector: str) -> None:
        self.transport = transport
        self.source = source
        self.name = connector
        self.stats_denied = False
        self.page_sizes: dict[str, int] = {}
        # The fastest row-less request seen (dictionary reads, counts, cut points): the
        # instance's round trip, which a page's elapsed time is weighed against (PageSize).
        self.round_trip: float | None = None
        self._lock = threading.Lock()

    def note_round_trip(self, response: HttpResponse) -> None:
        elapsed = getattr(response, "elapsed", None)
        if not isinstance(elapsed, float):
            return  # (a test double without timings)
        with self._lock:
            if self.round_trip is None or elapsed < self.round_trip:
                self.round_trip = elapsed

    def _weigh(
        self, size: PageSize, limit: int, response: HttpResponse, rows: list[dict[str, Any]]
    ) -> None:
        elapsed = getattr(response, "elapsed", None)
        if isinstance(elapsed, float):
            body = getattr(response, "body", None)
            nbytes = len(body) if isinstance(body, bytes) else None
            size.observe(limit, len(rows), elapsed, nbytes, self.round_trip)

    def _decode_page(
        self, table: str, size: PageSize, limit: int, response: HttpResponse
    ) -> list[dict[str, Any]]:
        rows = self.result_list(table, response)
        self._weigh(size, limit, response, rows)
        return rows

    def page(
        self,
        spec: TableSpec,
        fields: str,
        size: PageSize,
        query: str,
        offset: int,
        count: bool = False,
        *,
        lazy: bool = False,
    ) -> Fetched:
        """One Table API page, halving the page size while the instance cancels the transaction.

        ``count`` asks for ``X-Total-Count`` (a ``select count(*)`` on the instance, so only where
        it saves a request). ``lazy``: the body is decoded when the rows are first used.
        """
        lazy = lazy and isinstance(self.transport, Transport)
        while True:
            limit = size.current
            params: dict[str, Any] = {
                "sysparm_query": query,
                "sysparm_fields": fields,
                "sysparm_limit": limit,
                "sysparm_display_value": "all",
                "sysparm_exclude_reference_link": "true",
                "sysparm_no_count": "false" if count else "true",
                "sysparm_suppress_pagination_header": "true",
            }
            if offset:
                params["sysparm_offset"] = offset
            path = f"/api/now/table/{spec.table}"
            if lazy:
                response = self.transport.get(
                    path, params=params, endpoint=spec.table, accept=(408, 500), decode=False
                )
            else:
                response = self.transport.get(
                    path, params=params, endpoint=spec.table, accept=(408, 500)
                )
            if response.status < 300:
                total = _total(response) if count else None
                if lazy:
                    return Fetched(
                        None,
                        limit,
                        response.server_date,
                        total,
                        pending=partial(self._decode_page, spec.table, size, limit, response),
                    )
                rows = self.result_list(spec.table, response)
                self._weigh(size, limit, response, rows)
                return Fetched(rows, limit, response.server_date, total)
            message = self._envelope_message(response)
            if any(marker in message.lower() for marker in _CANCELLED):
                # Quirk: a page too large to build within the REST quota is cancelled (A12, #4).
                if not size.halve(limit):
                    raise ServerError(
                        f"{spec.table}: transaction cancelled even at {limit} records per page",
                        context=self._context(spec.table, response, message),
                    )
                self.page_sizes[spec.table] = size.current
                log.warning(
                    "%s: %s cancelled a %d-record page (%s); page size now %d",
                    self.source,
                    spec.table,
                    limit,
                    message,
                    size.current,
                )
                continue
            raise ServerError(
                f"{spec.table}: server error {response.status}: {message or 'no message'}",
                context=self._context(spec.table, response, message),
            )

    def _context(self, endpoint: str, response: HttpResponse, message: str) -> RequestContext:
        return RequestContext(
            connector=self.name,
            endpoint=endpoint,
            method="GET",
            url=response.url,
            status=response.status,
            body_excerpt=message[:300] or None,
        )

    @staticmethod
    def _envelope_message(response: HttpResponse) -> str:
        data = response.data
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = data["error"]
            parts = [str(error.get("message") or ""), str(error.get("detail") or "")]
            return ": ".join(p for p in parts if p)
        return ""

    def result_list(self, table: str, response: HttpResponse) -> list[dict[str, Any]]:
        body = getattr(response, "body", None)  # (a test double may build its own responses)
        data = response.data if body is None else self.transport.decode(response, endpoint=table)
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            # An error object in place of the rows ("Insufficient rights", a script's message)
            # says why: name it.
            said = self._envelope_message(response)
            if not said and isinstance(result, dict) and isinstance(result.get("error"), dict):
                said = str(result["error"].get("message") or "")
            raise ResponseFormatError(
                f"{table}: expected {{'result': [...]}} from the Table API"
                + (f"; it said: {said[:200]}" if said else ""),
                context=RequestContext(
                    connector=self.name, endpoint=table, url=response.url, status=response.status
                ),
                source=self.source,
            )
        return [row for row in result if isinstance(row, dict)]

    def stats(self, table: str, query: str, *, min_field: str | None = None) -> Stats:
        """Aggregate API count (and oldest ``min_field``), or Nones where it is not permitted."""
        if self.stats_denied:
            return None, None, None
        params: dict[str, Any] = {"sysparm_count": "true", "sysparm_query": query}
        if min_field:
            params["sysparm_min_fields"] = min_field
        try:
            response = self.transport.get(
                f"/api/now/stats/{table}", params=params, endpoint=f"{table} (stats)"
            )
        except (PermissionDeniedError, EndpointNotFoundError) as exc:
            self.stats_denied = True
            log.warning(
                "%s: the Aggregate API is not available (%s); completeness is not checked and "
                "empty pages are confirmed by reading one page further",
                self.source,
                type(exc).__name__,
            )
            return None, None, None
        self.note_round_trip(response)
        stats = (response.data or {}).get("result", {}) if isinstance(response.data, dict) else {}
        stats = stats.get("stats", {}) if isinstance(stats, dict) else {}
        raw_count = stats.get("count")
        try:
            count = int(raw_count) if raw_count is not None else None
        except (TypeError, ValueError):
            raise ResponseFormatError(
                f"{table}: Aggregate API count {stats.get('count')!r} is not a number",
                source=self.source,
            ) from None
        oldest = None
        if min_field and isinstance(stats.get("min"), dict):
            oldest = str(stats["min"].get(min_field) or "") or None
        return count, oldest, response.server_date

    def count(self, table: str, query: str) -> int | None:
        return self.stats(table, query)[0]

    def quantiles(
        self, spec: TableSpec, lo: datetime | None, hi: datetime, count: int, parts: int
    ) -> list[datetime]:
        """``sys_updated_on`` of the records that cut the window into ``parts`` equal counts.

        One ``sysparm_offset`` read of a single field per cut, all at once. Offsets count rows
        hidden by ACLs too (the limit applies before them); a cut that lands on a hidden row is
        simply left out.
        """
        query = keyset_query(lo, hi, None, spec.filter)
        offsets = [count * k // parts for k in range(1, parts)]

        def cut_at(offset: int) -> str:
            stamp, response = self.stamp_at(spec, query, offset)
            self.note_round_trip(response)
            return stamp

        with ThreadPoolExecutor(len(offsets), thread_name_prefix="itsm-servicenow-cut") as pool:
            stamps = list(pool.map(cut_at, offsets))
        return [moment for moment in (parse_utc(s) for s in stamps if s) if moment is not None]

    def stamp_at(
        self, spec: TableSpec, query: str, offset: int | None = None
    ) -> tuple[str, HttpResponse]:
        """``sys_updated_on`` of the row at ``offset`` of ``query`` (``""`` past its end), read
        alone, with the response (its ``Date`` and its round trip)."""
        params: dict[str, Any] = {
            "sysparm_query": query,
            "sysparm_fields": "sys_updated_on",
            "sysparm_limit": 1,
            "sysparm_no_count": "true",
            "sysparm_suppress_pagination_header": "true",
        }
        if offset is not None:
            params["sysparm_offset"] = offset
        response = self.transport.get(
            f"/api/now/table/{spec.table}", params=params, endpoint=spec.table
        )
        rows = self.result_list(spec.table, response)
        return (value(rows[0], "sys_updated_on") if rows else ""), response

    def window_stats(self, spec: TableSpec, lo: datetime | None) -> Stats:
        """The Aggregate API's view of the window from ``lo`` on: size, oldest update, clock."""
        return self.stats(
            spec.table, count_query(lo, None, spec.filter), min_field="sys_updated_on"
        )

    def probe(
        self, spec: TableSpec, lo: datetime | None, known: Stats | None = None
    ) -> tuple[datetime, int | None, datetime | None]:
        """Server time, and the size and oldest update of the window from ``lo`` on.

        ``known``: :meth:`window_stats` already read for this window.
        """
        count, oldest, now = known if known is not None else self.window_stats(spec, lo)
        first = parse_utc(oldest) if oldest else None
        if now is None:
            stamp, response = self.stamp_at(spec, keyset_query(lo, None, None, spec.filter))
            first = first or (parse_utc(stamp) if stamp else None)
            now = response.server_date
        if now is None:
            log.warning("%s: no Date header from the instance; using the local clock", self.source)
            now = datetime.now(UTC)
        return now, count, first
