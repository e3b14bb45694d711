"""The conformance kit, proved on the test-only ``acme`` connector before real ones exist.

``TestAcmeConformance`` is what a connector package writes: the kit passes on a correct
connector. The other tests break the connector one way at a time and show that the check
meant to catch that breakage fails, with a message that says what is wrong.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

import itsm_bridge as ib
from itsm_bridge.sandbox import PlatformSandbox, TruthItem, generate_items, make_sandbox
from itsm_bridge.testing import (
    ConnectorConformance,
    RecordedFixture,
    check_bad_record_rejected,
    check_endpoints,
    check_incremental,
    check_mapper_purity,
    check_recorded_fixture,
    check_reprs_hide_secrets,
    check_resume,
    check_round_trip,
    check_since_bound,
    check_times_match_truth,
    plant_since_boundary,
    run_pull,
    secrets_of,
)

pytestmark = pytest.mark.usefixtures("acme_plugin")

FIXTURES = Path(__file__).parent / "fixtures"
TICKETS = RecordedFixture(
    "incident",
    FIXTURES / "acme_tickets.json",
    records_path="items",
    expect={
        "INC0010001": {
            "status": "resolved",
            "status_raw": "fixed",
            "updated_at": "2026-03-02T13:10:12Z",  # +05:30 in the recording
            "labels": ["checkout", "loyalty"],
            "effort_source": "measured",
            "team": "Digital Commerce",
        },
        "INC0010002": {"status": "new", "assignee": None, "effort_hours": None},
    },
)


class TestAcmeConformance(ConnectorConformance):
    """What a connector package writes to run the kit on itself."""

    connector_name = "acme"
    recorded = (TICKETS,)
    generated_per_kind = 40
    page_size = 15


# -- each check catches the breakage it is for ---------------------------------------------------


@pytest.fixture(scope="module")
def acme(acme_plugin: Path) -> ModuleType:
    return importlib.import_module("itsm_bridge_acme")


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[PlatformSandbox, list[TruthItem], dict[ib.Kind, datetime]]]:
    items = generate_items(ib.Kind.INCIDENT, 40, seed=5, platform="acme")
    items += generate_items(ib.Kind.TASK, 12, seed=5, platform="acme")
    planted, bounds = plant_since_boundary(items)
    with make_sandbox("acme", planted) as sandbox:
        yield sandbox, planted, bounds


def _bind(cls: type[ib.Connector], sandbox: PlatformSandbox, **options: Any) -> ib.Connector:
    return cls(sandbox.url, auth=sandbox.auth(), page_size=7, **options)


def _keys(sandbox: PlatformSandbox, kind: ib.Kind = ib.Kind.INCIDENT) -> set[str]:
    return {i.number for i in sandbox.visible_items() if i.kind is kind}


def test_the_correct_connector_passes_every_check(acme: ModuleType, world: Any) -> None:
    sandbox, _items, bounds = world
    conn = _bind(acme.AcmeConnector, sandbox)
    check_endpoints(conn)
    run = run_pull(conn, ib.Kind.INCIDENT)
    check_round_trip(run, _keys(sandbox))
    check_incremental(conn, run)
    check_resume(conn, run, _keys(sandbox))
    check_since_bound(conn, ib.Kind.INCIDENT, bounds[ib.Kind.INCIDENT], sandbox.visible_items())
    assert len(run.pages) >= 6  # 40 records in pages of 7, then the final page


def test_duplicate_endpoints_are_caught(acme: ModuleType) -> None:
    class Twice(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def endpoints(self) -> Sequence[ib.Endpoint]:
            first = super().endpoints()
            return [*first, replace(first[0], description="again")]

    with pytest.raises(AssertionError, match=r"names declared twice: \['tickets'\]"):
        check_endpoints(Twice("https://acme.example.com"))

    class SamePath(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def endpoints(self) -> Sequence[ib.Endpoint]:
            first = super().endpoints()
            return [*first, replace(first[0], name="tickets-again")]

    with pytest.raises(AssertionError, match="same kind and path"):
        check_endpoints(SamePath("https://acme.example.com"))


def test_a_kind_without_an_endpoint_is_caught(acme: ModuleType) -> None:
    class Partial(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def endpoints(self) -> Sequence[ib.Endpoint]:
            return [ep for ep in super().endpoints() if ep.kind is not ib.Kind.TASK]

    with pytest.raises(AssertionError, match=r"kinds without an endpoint: \['task'\]"):
        check_endpoints(Partial("https://acme.example.com"))


def test_a_mapper_using_the_network_is_caught(acme: ModuleType) -> None:
    class Chatty(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
            # looks up the team's display name per record: I/O in a mapper
            requests.get("https://acme.example.com/api/v1/teams/1", timeout=1)
            return super().map_record(kind, raw)  # type: ignore[no-any-return]

    records = [(ib.Kind.INCIDENT, raw) for raw in TICKETS.records()]
    with pytest.raises(AssertionError, match="mappers must be pure"):
        check_mapper_purity(Chatty("https://acme.example.com"), records)
    assert check_mapper_purity(acme.AcmeConnector("https://acme.example.com"), records) == 2


def test_a_mapper_using_a_raw_socket_is_caught(acme: ModuleType) -> None:
    import socket

    class Sneaky(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
            socket.getaddrinfo("acme.example.com", 443)
            return super().map_record(kind, raw)  # type: ignore[no-any-return]

    with pytest.raises(AssertionError, match="mappers must be pure"):
        check_mapper_purity(Sneaky("https://acme.example.com"), [(ib.Kind.INCIDENT, {})])


def test_a_mapper_changing_its_input_is_caught(acme: ModuleType) -> None:
    class Mutating(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
            raw["labels"].append("seen")  # type: ignore[index]
            return super().map_record(kind, raw)  # type: ignore[no-any-return]

    records = [(ib.Kind.INCIDENT, raw) for raw in TICKETS.records()]
    with pytest.raises(AssertionError, match="changed its input record: id="):
        check_mapper_purity(Mutating("https://acme.example.com"), records)


def test_recorded_facts_that_do_not_hold_are_caught(acme: ModuleType, tmp_path: Path) -> None:
    wrong = replace(TICKETS, expect={"INC0010001": {"status": "closed"}})
    with pytest.raises(
        AssertionError, match=r"INC0010001: status is .*RESOLVED.*expected 'closed'"
    ):
        check_recorded_fixture(acme.AcmeConnector("https://acme.example.com"), wrong)
    missing = replace(TICKETS, expect={"INC9999999": {"status": "new"}})
    with pytest.raises(AssertionError, match="no record maps to key 'INC9999999'"):
        check_recorded_fixture(acme.AcmeConnector("https://acme.example.com"), missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"items": [{"id": "x1", "ref": "INC1", "state": "weird"}]}')
    with pytest.raises((AssertionError, KeyError)):
        check_recorded_fixture(
            acme.AcmeConnector("https://acme.example.com"),
            RecordedFixture("incident", broken, "items"),
        )


def test_recorded_facts_reach_into_extra() -> None:
    item = ib.WorkItem(
        id="s:1", source="s", kind=ib.Kind.PROJECT, key="PRJ1", title="t", status=ib.Status.NEW,
        updated_at=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
        extra={"investment": {"portfolio_category": "grow"}},
    )  # fmt: skip
    from itsm_bridge.testing._checks import _fact

    assert _fact(item, "extra.investment.portfolio_category") == "grow"
    assert _fact(item, "extra.investment.missing") is None


def test_a_short_page_taken_as_the_end_is_caught(acme: ModuleType, world: Any) -> None:
    sandbox = world[0]

    class StopsEarly(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            pages = super().pull_pages(kind, cursor, since=since)
            first = next(pages)
            yield first
            yield ib.Page(kind, [], cursor=ib.Cursor(watermark=first.cursor.watermark), final=True)

    run = run_pull(_bind(StopsEarly, sandbox), ib.Kind.INCIDENT)
    with pytest.raises(AssertionError, match=r"7 records for 40 expected; missing \["):
        check_round_trip(run, _keys(sandbox))


def test_records_returned_twice_are_caught(acme: ModuleType, world: Any) -> None:
    sandbox = world[0]

    class Stutters(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            for page in super().pull_pages(kind, cursor, since=since):
                if page.items:
                    yield replace(page, items=page.items[:1])
                yield page

    run = run_pull(_bind(Stutters, sandbox), ib.Kind.INCIDENT)
    with pytest.raises(AssertionError, match=r"twice \['INC"):
        check_round_trip(run, _keys(sandbox))


def test_endless_paging_is_caught(acme: ModuleType, world: Any) -> None:
    class Endless(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            while True:
                yield ib.Page(kind, [])

    with pytest.raises(AssertionError, match="paging did not terminate"):
        run_pull(_bind(Endless, world[0]), ib.Kind.INCIDENT, max_pages=50)


def test_a_missing_final_page_is_caught(acme: ModuleType, world: Any) -> None:
    class NoFinal(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            for page in super().pull_pages(kind, cursor, since=since):
                if not page.final:
                    yield page

    with pytest.raises(AssertionError, match="not marked final"):
        run_pull(_bind(NoFinal, world[0]), ib.Kind.INCIDENT)


def test_a_foreign_item_on_a_page_is_caught(acme: ModuleType, world: Any) -> None:
    class WrongSource(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
            item = super().map_record(kind, raw)
            return item.model_copy(update={"id": raw["id"]})  # type: ignore[no-any-return]

    with pytest.raises(AssertionError, match="lacks the source"):
        run_pull(_bind(WrongSource, world[0]), ib.Kind.INCIDENT)


def test_an_ignored_cursor_is_caught(acme: ModuleType, world: Any) -> None:
    sandbox = world[0]

    class Forgetful(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            return super().pull_pages(kind, None, since=since)

    conn = _bind(Forgetful, sandbox)
    with pytest.raises(AssertionError, match="the cursor was ignored"):
        check_incremental(conn, run_pull(conn, ib.Kind.INCIDENT))


def test_a_cursor_that_does_not_resume_after_its_page_is_caught(
    acme: ModuleType, world: Any
) -> None:
    sandbox = world[0]

    class Overshoots(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            for page in super().pull_pages(kind, cursor, since=since):
                if page.cursor is not None and not page.final:
                    ahead = page.cursor.watermark + timedelta(days=30)
                    page = replace(page, cursor=ib.Cursor(watermark=ahead))
                yield page

    conn = _bind(Overshoots, sandbox)
    with pytest.raises(AssertionError, match=r"resuming after page .* lost"):
        check_resume(conn, run_pull(conn, ib.Kind.INCIDENT), _keys(sandbox))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (lambda since: since - timedelta(seconds=1), "unexpected \\['INC"),  # a > for a >=, etc.
        (lambda since: since.replace(second=0), "unexpected \\['INC"),  # minute precision
        (lambda since: since + timedelta(seconds=1), "missing \\['INC"),
        (lambda since: since + timedelta(hours=5, minutes=30), "missing \\['INC"),  # local time
    ],
)
def test_an_inexact_since_bound_is_caught(
    acme: ModuleType, world: Any, error: Any, expected: str
) -> None:
    sandbox, _items, bounds = world

    class Sloppy(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def pull_pages(self, kind: ib.Kind, cursor: Any = None, *, since: Any = None) -> Any:
            return super().pull_pages(kind, cursor, since=error(since))

    with pytest.raises(AssertionError, match=expected):
        check_since_bound(
            _bind(Sloppy, sandbox),
            ib.Kind.INCIDENT,
            bounds[ib.Kind.INCIDENT],
            sandbox.visible_items(),
        )


def test_rejected_records_fail_the_round_trip(acme: ModuleType, world: Any) -> None:
    sandbox = world[0]

    class Picky(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        def map_record(self, kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
            if raw["ref"].endswith("7"):
                raise ib.MappingError("state 'x7' is not in the code table")
            return super().map_record(kind, raw)  # type: ignore[no-any-return]

    run = run_pull(_bind(Picky, sandbox), ib.Kind.INCIDENT)
    assert run.rejects
    with pytest.raises(AssertionError, match=r"rejected, first: .*not in the code table"):
        check_round_trip(run, _keys(sandbox))


def test_plant_since_boundary_moves_two_records_per_kind() -> None:
    items = generate_items(ib.Kind.INCIDENT, 5, seed=1, platform="acme")
    items += generate_items(ib.Kind.TASK, 1, seed=1, platform="acme")
    planted, bounds = plant_since_boundary(items)
    assert list(bounds) == [ib.Kind.INCIDENT]  # one task cannot straddle a boundary
    bound = bounds[ib.Kind.INCIDENT]
    moved = sorted(i.updated for i in planted if i.updated in {bound, bound - timedelta(seconds=1)})
    assert moved == [bound - timedelta(seconds=1), bound]
    assert all(i.created <= i.updated for i in planted)
    assert len(planted) == len(items)


def test_generated_records_of_several_kinds_get_distinct_numbers() -> None:
    from itsm_bridge.testing.conformance import _distinct

    items = generate_items(ib.Kind.INCIDENT, 3, seed=2, platform="jira")
    items += generate_items(ib.Kind.REQUEST, 3, seed=2, platform="jira")
    assert len({i.number for i in items}) < len(items)  # ITSM-1 twice: the collision is real
    distinct = _distinct(items)
    assert len({i.number for i in distinct}) == len({i.uid for i in distinct}) == len(items)
    assert [i.kind for i in distinct] == [i.kind for i in items]


def test_an_account_offset_read_as_utc_is_caught(acme: ModuleType, world: Any) -> None:
    """Keys alone cannot see it: every record comes back, each hours off."""
    sandbox, _items, _bounds = world
    run = run_pull(_bind(acme.AcmeConnector, sandbox), ib.Kind.INCIDENT)
    check_times_match_truth(run, sandbox.visible_items())
    shifted = [
        replace(
            page,
            items=[
                i.model_copy(update={"updated_at": i.updated_at - timedelta(hours=5, minutes=30)})
                for i in page.items
            ],
        )
        for page in run.pages
    ]
    with pytest.raises(AssertionError, match="time zone read wrongly"):
        check_times_match_truth(replace(run, pages=shifted), sandbox.visible_items())


def test_a_credential_in_a_repr_is_caught(acme: ModuleType, world: Any) -> None:
    sandbox, _items, _bounds = world
    secrets = secrets_of(sandbox.auth())
    assert secrets  # the password and its base64 form
    check_reprs_hide_secrets(_bind(acme.AcmeConnector, sandbox), secrets)

    class Leaky(acme.AcmeConnector):  # type: ignore[misc,name-defined]
        def __repr__(self) -> str:
            return f"Leaky(auth={self.auth.__dict__})"

    with pytest.raises(AssertionError, match="repr of: connector"):
        check_reprs_hide_secrets(_bind(Leaky, sandbox), secrets)


def test_a_record_that_fails_to_map_must_be_rejected_not_dropped(
    acme: ModuleType, world: Any
) -> None:
    sandbox = world[0]
    conn = _bind(acme.AcmeConnector, sandbox)
    check_bad_record_rejected(conn, ib.Kind.INCIDENT, _keys(sandbox))

    class Forgetful(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        """Drops its rejects: the failed record vanishes without a word."""

        def pull_pages(self, *args: Any, **kwargs: Any) -> Iterator[ib.Page]:
            for page in super().pull_pages(*args, **kwargs):
                yield replace(page, rejects=[])

    with pytest.raises(AssertionError, match="0 rejects came out"):
        check_bad_record_rejected(_bind(Forgetful, sandbox), ib.Kind.INCIDENT, _keys(sandbox))

    class Fragile(acme.AcmeConnector):  # type: ignore[name-defined,misc]
        """Maps without map_safely: one bad record ends the run."""

        def map_safely(
            self, kind: ib.Kind, raw: Mapping[str, Any], native_id: str | None
        ) -> ib.WorkItem:
            return self.map_record(kind, raw)  # type: ignore[no-any-return]

    with pytest.raises(AssertionError, match="stopped the whole run"):
        check_bad_record_rejected(_bind(Fragile, sandbox), ib.Kind.INCIDENT, _keys(sandbox))
