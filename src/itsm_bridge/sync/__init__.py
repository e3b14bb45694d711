"""Sync: incremental, resumable pulls into a store, with run reports and exports.

::

    import itsm_bridge as ib
    with ib.Store("itsm.db") as store:
        result = ib.sync(conn, store)          # each page + its cursor in one transaction
        print(result.summary())
"""

from __future__ import annotations

from itsm_bridge.sync.engine import ProgressCallback, run_sync, sync
from itsm_bridge.sync.result import KindReport, SyncProgress, SyncResult
from itsm_bridge.sync.store import PageCounts, QuarantineRecord, RunRecord, Store, StoredVerdict

__all__ = [
    "KindReport",
    "PageCounts",
    "ProgressCallback",
    "QuarantineRecord",
    "RunRecord",
    "Store",
    "StoredVerdict",
    "SyncProgress",
    "SyncResult",
    "run_sync",
    "sync",
]
