"""Lenient JSONL input for ``score``, ``evaluate`` and ``train``: any field but ``title`` may be
missing.

People label spreadsheets, not schemas: an input line may carry only a title and a label. Missing
fields get neutral defaults (kind ``task``, status ``new``) that no default rule treats as
evidence, and values the schema would refuse (an unknown kind, a naive timestamp) are kept in
``extra`` rather than failing the whole file. A line that is not JSON, or has no title, fails
with an error naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsm_bridge import _json
from itsm_bridge.errors import ConfigurationError, DataError
from itsm_bridge.report.effort import finite_number
from itsm_bridge.schema import EffortSource, Kind, Label, Status, WorkItem

__all__ = [
    "location",
    "parse_label",
    "read_records",
    "record_to_item",
    "records_to_items",
    "score_records",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LABEL_ALIASES = {
    "business-facing": Label.BUSINESS,
    "business": Label.BUSINESS,
    "business_facing": Label.BUSINESS,
    "inward-facing": Label.INWARD,
    "inward": Label.INWARD,
    "inward_facing": Label.INWARD,
    "undetermined": Label.UNDETERMINED,
}
_STATUS_ALIASES = {s.value: s for s in Status} | {
    "open": Status.NEW,
    "in progress": Status.IN_PROGRESS,
    "on hold": Status.ON_HOLD,
    "done": Status.CLOSED,
    "canceled": Status.CANCELLED,
}
_LIST_FIELDS = ("labels",)
_WHERE = ("__line__", "__file__")  # where read_records found a record (not passed on)
_DATETIME_FIELDS = ("created_at", "updated_at", "resolved_at")


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """JSON objects from a UTF-8 JSONL file, one per non-blank line (``-`` is not special here).

    A byte order mark at the start (spreadsheet exports write one) is allowed. Each record
    remembers where it came from (``__file__``, ``__line__``), for errors that name the line.
    """
    file = Path(path)
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{file}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1});"
                    " save the file as UTF-8",
                    record=where,
                ) from None
            if not line.strip():
                continue
            try:
                record = _json.loads_exact(line)
            except ValueError as exc:
                raise DataError(f"{where}: not valid JSON: {exc}", record=where) from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object", record=where)
            record.setdefault("__line__", number)
            record.setdefault("__file__", str(file))
            yield record


def location(record: Mapping[str, Any], position: int | None = None) -> str | None:
    """Where a record came from: ``file:line`` when read from a file, else its position."""
    line = record.get("__line__", position)
    if line is None:
        return None
    file = record.get("__file__")
    return f"{file}:{line}" if file else f"line {line}"


def parse_label(value: Any) -> Label | None:
    """A label from a record (``business``/``inward`` aliases accepted); ``None`` when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, Label):
        return value
    label = _LABEL_ALIASES.get(str(value).strip().lower())
    if label is None:
        raise DataError(
            f"label must be business-facing, inward-facing or undetermined, got {value!r}"
        )
    return label


def record_to_item(record: Mapping[str, Any], *, position: int | None = None) -> WorkItem:
    """A WorkItem from a lenient record; only ``title`` is required."""
    line = record.get("__line__", position)
    where = location(record, position)
    title = record.get("title")
    if not isinstance(title, str):
        problem = "has no title" if title is None else f"has a title of type {type(title).__name__}"
        raise DataError(f"record {problem}: a text title is the one required field", record=where)
    extra = dict(record.get("extra") or {}) if isinstance(record.get("extra"), Mapping) else {}
    kind_raw = record.get("kind")
    try:
        kind = Kind(str(kind_raw).strip().lower()) if kind_raw else Kind.TASK
    except ValueError:
        kind = Kind.TASK
        extra["kind_input"] = kind_raw
    status_raw = record.get("status")
    status = _STATUS_ALIASES.get(str(status_raw).strip().lower(), Status.NEW)
    if status_raw and str(status_raw).strip().lower() not in _STATUS_ALIASES:
        extra["status_input"] = status_raw
    key = _text(record.get("key")) or _text(record.get("id")) or f"line-{line or 0}"
    source = _text(record.get("source")) or "input"
    item_id = _text(record.get("id")) or f"{source}:{key}"
    data: dict[str, Any] = {
        "id": item_id,
        "source": source,
        "kind": kind,
        "key": key,
        "title": title,
        "status": status,
        "extra": extra,
    }
    for name in ("description", "status_raw", "team", "assignee", "requester", "service"):
        value = record.get(name)
        if value is not None:
            data[name] = str(value)
    for name in ("category", "parent_key", "url"):
        value = record.get(name)
        if value is not None and value != "":
            data[name] = str(value)
    labels = record.get("labels")
    if isinstance(labels, (list, tuple)):
        data["labels"] = tuple(str(v) for v in labels)
    elif isinstance(labels, str) and labels:
        data["labels"] = tuple(v.strip() for v in labels.split(",") if v.strip())
    priority = finite_number(record.get("priority"))
    if priority is not None and priority in range(1, 6):
        data["priority"] = int(priority)
    elif _given(record.get("priority")):
        extra["priority_input"] = record.get("priority")
    effort = finite_number(record.get("effort_hours"))
    if effort is not None and effort >= 0:
        data["effort_hours"] = float(effort)
        source_value = record.get("effort_source")
        try:
            data["effort_source"] = EffortSource(source_value or "measured")
        except ValueError:
            data["effort_source"] = EffortSource.MEASURED
    elif _given(record.get("effort_hours")):
        extra["effort_hours_input"] = record.get("effort_hours")
    for name in _DATETIME_FIELDS:
        value = record.get(name)
        if value is None or value == "":
            continue
        try:
            data[name] = _parse_time(value)
        except ValueError:
            extra[f"{name}_input"] = value
    data.setdefault("updated_at", data.get("created_at") or _EPOCH)
    try:
        return WorkItem.model_validate(data)
    except Exception as exc:
        raise DataError(f"record cannot become a work item: {exc}", record=where) from None


def _parse_time(value: Any) -> datetime:
    from itsm_bridge._time import parse_datetime

    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)
    return parse_datetime(str(value))


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def records_to_items(records: Iterable[Mapping[str, Any]]) -> Iterator[WorkItem]:
    """WorkItems from lenient records, in order."""
    for position, record in enumerate(records, start=1):
        yield record_to_item(record, position=position)


def score_records(
    records: Iterable[Mapping[str, Any]],
    scorer: Any = None,
) -> Iterator[dict[str, Any]]:
    """Each input record, unchanged, plus a ``scoring`` object (the JSONL ``score`` output).

    ``scorer`` is a :class:`~itsm_bridge.scoring.Scorer` (default rules when omitted). Parent
    inheritance is resolved over the whole input, and the output keeps the input order.
    """
    from itsm_bridge.scoring.engine import Scorer

    active = scorer if scorer is not None else Scorer()

    def pairs() -> Iterator[tuple[Mapping[str, Any], WorkItem]]:
        for position, record in enumerate(records, start=1):
            yield record, record_to_item(record, position=position)

    for record, _item, verdict in active.score_pairs(pairs()):
        out = {k: v for k, v in record.items() if k not in _WHERE}
        out["scoring"] = verdict.model_dump(mode="json")
        yield out
