"""Exports: JSONL, CSV, Parquet and pandas, streamed, with atomic output files.

Every file is written to a temporary sibling and moved over the target with ``os.replace`` only
when complete, so a failed or killed export leaves the previous file untouched and a reader never
sees half a file. Parquet and pandas are optional extras, imported only when asked for.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from itsm_bridge import _json
from itsm_bridge.errors import ConfigurationError, StoreError
from itsm_bridge.schema import ScoredItem, WorkItem

__all__ = [
    "CSV_FIELDS",
    "FORMATS",
    "atomic_output",
    "flat_row",
    "to_dataframe",
    "write_csv",
    "write_items",
    "write_jsonl",
    "write_parquet",
]

FORMATS = ("jsonl", "csv", "parquet")
CSV_FIELDS: tuple[str, ...] = tuple(WorkItem.model_fields)
SCORING_FIELDS = ("label", "p_business", "reasons")
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation below the text layer


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; replace ``path`` only on success.

    ``"-"`` writes to standard output instead (no atomicity: the caller chose a stream).
    """
    if str(path) == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        (sys.stdout.buffer if binary else sys.stdout).flush()
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp = _temporary_sibling(target, directory)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        mode = "wb" if binary else "w"
        kwargs: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StoreError(
            f"cannot write {target}: {exc.strerror or exc}; the previous file is untouched"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _temporary_sibling(target: Path, directory: Path) -> tuple[int, str]:
    """A new file beside ``target`` with the mode the target will keep: its own when it exists,
    else what the umask gives any new file (``mkstemp`` would make it 0600, and a loader running
    as another user could no longer read the export)."""
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = None
    for _ in range(100):
        temp = directory / f".{target.name}.{secrets.token_hex(4)}.part"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.chmod(temp, mode)
            except OSError:
                os.close(fd)
                os.unlink(temp)
                raise
        return fd, str(temp)
    raise FileExistsError(f"no free temporary name beside {target}")


def _line(item: WorkItem) -> str:
    data = item.model_dump(mode="json")
    # ``extra`` keys sorted, as the store keeps them: a record written by ``pull --out`` and by
    # ``export`` from a store is the same line, byte for byte.
    extra = data.get("extra")
    data["extra"] = _json.loads(_json.dumps(extra, sort_keys=True)) if extra else {}
    return _json.dumps(data)


def write_jsonl(items: Iterable[WorkItem], path: str | os.PathLike[str]) -> int:
    """One ``model_dump(mode="json")`` per line (scored items carry ``"scoring"``)."""
    count = 0
    with atomic_output(path) as out:
        for item in items:
            out.write(_line(item))
            out.write("\n")
            count += 1
    return count


def flat_row(item: WorkItem) -> dict[str, Any]:
    """A CSV/Parquet row: lists joined with ``"; "``, ``extra`` and reasons as JSON text."""
    data = item.model_dump(mode="json")
    row: dict[str, Any] = {}
    for name in CSV_FIELDS:
        value = data.get(name)
        if name == "labels":
            value = "; ".join(value or ())
        elif name == "extra":
            value = _json.dumps(value or {}, sort_keys=True)
        row[name] = value
    if isinstance(item, ScoredItem):
        row["label"] = item.scoring.label.value
        row["p_business"] = item.scoring.p_business
        row["reasons"] = _json.dumps([r.model_dump(mode="json") for r in item.scoring.reasons])
    return row


def write_csv(
    items: Iterable[WorkItem], path: str | os.PathLike[str], *, scored: bool = False
) -> int:
    """A flat CSV with a header; scored items add ``label``, ``p_business`` and ``reasons``.

    ``scored`` says the items are scored, so that an empty export has those columns too (a
    loader expecting them must not fail on a quiet day)."""
    count = 0
    with atomic_output(path) as out:
        writer: csv.DictWriter[str] | None = None
        for item in items:
            row = flat_row(item)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow(row)
            count += 1
        if writer is None:
            csv.writer(out, lineterminator="\n").writerow(_columns(scored))
    return count


def _columns(scored: bool) -> list[str]:
    return [*CSV_FIELDS, *(SCORING_FIELDS if scored else ())]


def _require(module: str, extra: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigurationError(
            f'{what} needs the optional package {module!r}: pip install "itsm-bridge[{extra}]"'
        ) from None


def write_parquet(
    items: Iterable[WorkItem],
    path: str | os.PathLike[str],
    *,
    batch_size: int = 10_000,
    scored: bool = False,
) -> int:
    """Parquet (the ``parquet`` extra), written in row groups so memory stays flat; ``scored``
    as for :func:`write_csv`."""
    _require("pyarrow", "parquet", "Parquet export")
    import pyarrow as pa
    import pyarrow.parquet as pq

    count = 0
    with atomic_output(path, binary=True) as out:
        writer: Any = None
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal writer
            # A fixed schema: inferred from the first batch, a column null throughout it would
            # be typed null and the next batch with a value would fail ("Invalid null value").
            schema = writer.schema if writer else _parquet_schema(pa, "label" in batch[0])
            table = pa.Table.from_pylist(batch, schema=schema)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
            batch.clear()

        for item in items:
            batch.append(flat_row(item))
            count += 1
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        if writer is None:
            writer = pq.ParquetWriter(out, _parquet_schema(pa, scored))
        writer.close()
    return count


def _parquet_schema(pa: Any, scored: bool) -> Any:
    """The columns of :func:`flat_row`: text, but the numbers as numbers."""
    numbers = {"priority": pa.int64(), "effort_hours": pa.float64(), "p_business": pa.float64()}
    return pa.schema([(name, numbers.get(name, pa.string())) for name in _columns(scored)])


def to_dataframe(items: Iterable[WorkItem], *, scored: bool = False) -> Any:
    """A pandas DataFrame of flat rows (the ``pandas`` extra); datetimes are UTC-aware.
    ``scored`` as for :func:`write_csv`."""
    pd = _require("pandas", "pandas", "A DataFrame")
    frame = pd.DataFrame.from_records(
        (flat_row(item) for item in items),
        columns=None,
    )
    if frame.empty:
        return pd.DataFrame(columns=_columns(scored))
    for name in ("created_at", "updated_at", "resolved_at"):
        # Whole seconds serialise without a fraction ("...:52Z" beside "...:18.343000Z"):
        # parsed as ISO 8601 each, not in the first value's format.
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def write_items(
    items: Iterable[WorkItem], path: str | os.PathLike[str], fmt: str, *, scored: bool = False
) -> int:
    """Write ``items`` as ``fmt`` (one of :data:`FORMATS`); ``scored`` as for :func:`write_csv`."""
    if fmt == "jsonl":
        return write_jsonl(items, path)
    if fmt == "csv":
        return write_csv(items, path, scored=scored)
    if fmt == "parquet":
        return write_parquet(items, path, scored=scored)
    raise ConfigurationError(f"unknown export format {fmt!r}; formats are: {', '.join(FORMATS)}")
