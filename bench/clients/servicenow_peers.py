"""ServiceNow peers, driven as their documentation shows for reading a whole table.

pysnc 1.2.1: ``client.GlideRecord(table, batch_size=...)``, ``query()``, iterate. It refuses
``http://`` instance URLs (``pysnc.utils.get_instance`` raises "Must provide https:// url"), so the
harness replaces ``pysnc.client.get_instance`` with a pass-through, the same shim as in
shared/reference/peer-performance.md; nothing else of pysnc is touched.

pysnow 0.7.17: ``resource.get(query, limit=..., offset=...)`` is one request; pagination is left to
the caller, who loops over offsets (its README's recipe for large tables).
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from bench.target import Fetch, Target


def pysnc(t: Target, *, batch_size: int | None) -> Fetch:
    import pysnc as _pysnc
    import pysnc.client

    # shim: pysnc rejects http:// (sandbox is plain-http loopback); pass the URL through.
    pysnc.client.get_instance = lambda instance: instance.rstrip("/")  # type: ignore[attr-defined]
    client = _pysnc.ServiceNowClient(t.url, (t.username, t.password))

    def fetch() -> Collection[str]:
        if batch_size is None:
            gr = client.GlideRecord(t.table)  # factory default: batch_size=100
        else:
            gr = client.GlideRecord(t.table, batch_size=batch_size)
        gr.query()
        return [r.sys_id for r in gr]  # GlideElement is a str subclass

    return fetch


def pysnow(t: Target, *, limit: int) -> Fetch:
    import pysnow as _pysnow
    from pysnow.exceptions import NoResults

    host = urlsplit(t.url).netloc
    client = _pysnow.Client(host=host, user=t.username, password=t.password, use_ssl=False)
    resource = client.resource(api_path=f"/table/{t.table}")

    def fetch() -> Collection[str]:
        ids: list[str] = []
        offset = 0
        while True:
            try:
                rows = resource.get(query="ORDERBYsys_id", limit=limit, offset=offset).all()
            except NoResults:  # pysnow raises on an empty page (raise_on_empty default)
                return ids
            ids.extend(row["sys_id"] for row in rows)
            offset += len(rows)
            if len(rows) < limit:
                return ids

    return fetch
