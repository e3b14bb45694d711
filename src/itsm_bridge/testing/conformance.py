"""The conformance kit: the checks every connector package runs on itself, as a pytest class.

A connector's tests subclass :class:`ConnectorConformance` and name their connector; pytest then
runs the whole contract against the connector's recorded fixtures and its sandbox::

    from itsm_bridge.testing import ConnectorConformance, RecordedFixture

    class TestConformance(ConnectorConformance):
        connector_name = "servicenow"
        recorded = [RecordedFixture("incident", FIXTURES / "incident_page.json", "result")]

The checks themselves live in :mod:`itsm_bridge.testing._checks` and are exported as
``check_*`` functions. This module needs pytest (a ``dev`` dependency).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

import pytest

import itsm_bridge as ib
from itsm_bridge.sandbox import (
    PlatformSandbox,
    TruthItem,
    available_sandboxes,
    generate_items,
    make_sandbox,
)
from itsm_bridge.testing._checks import (
    PullRun,
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

__all__ = ["ConformanceWorld", "ConnectorConformance"]


@dataclass
class ConformanceWorld:
    """A started sandbox with generated records, a connector bound to it, and its pulls."""

    sandbox: PlatformSandbox
    connector: ib.Connector
    items: list[TruthItem]
    bounds: dict[ib.Kind, datetime]
    captured: list[tuple[ib.Kind, Mapping[str, Any]]] = field(default_factory=list)
    _runs: dict[ib.Kind, PullRun] = field(default_factory=dict)

    def run(self, kind: ib.Kind) -> PullRun:
        """The full pull of ``kind`` (done once, then shared by the checks)."""
        if kind not in self._runs:
            self._runs[kind] = run_pull(self.connector, kind)
        return self._runs[kind]

    def visible_keys(self, kind: ib.Kind) -> set[str]:
        return {i.number for i in self.sandbox.visible_items() if i.kind is kind}


def _distinct(items: Sequence[TruthItem]) -> list[TruthItem]:
    """Renumber records whose number another kind already used.

    ``generate_items`` numbers each call from one, so on a platform whose keys share a project
    across kinds (Jira's ITSM-1 incident and ITSM-1 request) separate calls collide.
    """
    taken = {item.number for item in items}
    seen: set[str] = set()
    out: list[TruthItem] = []
    for item in items:
        if item.number in seen:
            stem = item.number.rstrip("0123456789")
            n = 1
            while f"{stem}{n}" in taken:
                n += 1
            number = f"{stem}{n}"
            taken.add(number)
            uid = hashlib.md5(f"conformance:{number}".encode(), usedforsecurity=False).hexdigest()
            item = replace(item, number=number, uid=uid)
        seen.add(item.number)
        out.append(item)
    return out


def _capture(connector: ib.Connector, into: list[tuple[ib.Kind, Mapping[str, Any]]]) -> None:
    """Record (a sample of) the raw records the connector maps, for the purity check."""
    original: Callable[[ib.Kind, Mapping[str, Any]], ib.WorkItem] = connector.map_record

    def capturing(kind: ib.Kind, raw: Mapping[str, Any]) -> ib.WorkItem:
        if len(into) < 200:
            into.append((kind, copy.deepcopy(raw)))
        return original(kind, raw)

    connector.map_record = capturing  # type: ignore[method-assign]


class ConnectorConformance:
    """Subclass in a connector package's tests, set ``connector_name``; pytest runs the rest.

    Override the class attributes to fit the platform, or the methods to build things
    differently (a connector whose sandbox needs extra options overrides :meth:`connect`).
    """

    connector_name: ClassVar[str]
    """The entry-point name of the connector (and of its sandbox)."""

    recorded: ClassVar[Sequence[RecordedFixture]] = ()
    """Recorded API responses with the facts their records must map to."""

    kinds: ClassVar[Sequence[ib.Kind | str] | None] = None
    """The kinds to generate and pull (default: every kind the connector has)."""

    generated_per_kind: ClassVar[int] = 60
    page_size: ClassVar[int] = 25
    """Small pages, so that paging is exercised with few records."""

    seed: ClassVar[int] = 11
    platform: ClassVar[str | None] = None
    """The generator's ``platform`` argument (default: ``connector_name``)."""

    since_timezones: ClassVar[Sequence[str]] = ("UTC", "Asia/Kolkata")
    """Account time zones the ``since`` bound is checked in (+05:30 catches hour rounding)."""

    options: ClassVar[Mapping[str, Any]] = {}
    """Extra connector options for every connection."""

    # -- overridable builders ------------------------------------------------------------------

    def connector_class(self) -> type[ib.Connector]:
        return ib.connector_class(self.connector_name)

    def offline_connector(self, **options: Any) -> ib.Connector:
        """A connector that never connects: for endpoints and mappers."""
        merged = {**self.options, **options}
        return ib.connect(self.connector_name, base_url="https://conformance.example.com", **merged)

    def wanted_kinds(self) -> list[ib.Kind]:
        if self.kinds is not None:
            return [ib.Kind(k) for k in self.kinds]
        return list(self.offline_connector().kinds)

    def generate(self) -> list[TruthItem]:
        """The records the sandbox serves (boundary records are planted afterwards)."""
        items: list[TruthItem] = []
        for kind in self.wanted_kinds():
            items += generate_items(
                kind,
                self.generated_per_kind,
                seed=self.seed,
                platform=self.platform or self.connector_name,
            )
        return _distinct(items)

    def make_sandbox(self, items: Sequence[TruthItem], *, timezone: str = "UTC") -> PlatformSandbox:
        return make_sandbox(self.connector_name, items, timezone=timezone, seed=self.seed)

    def connect(self, sandbox: PlatformSandbox, **options: Any) -> ib.Connector:
        merged = {
            "page_size": self.page_size,
            **sandbox.connect_options(),
            **self.options,
            **options,
        }
        return ib.connect(self.connector_name, base_url=sandbox.url, auth=sandbox.auth(), **merged)

    # -- fixtures ---------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_world(cls) -> Iterator[ConformanceWorld]:
        """One sandbox per test class: started once, shared by the checks that pull."""
        kit = cls()
        items, bounds = plant_since_boundary(kit.generate())
        with kit.make_sandbox(items) as sandbox:
            connector = kit.connect(sandbox)
            world = ConformanceWorld(sandbox, connector, items, bounds)
            _capture(connector, world.captured)
            try:
                yield world
            finally:
                connector.close()

    # -- the checks -----------------------------------------------------------------------------

    def test_registered_through_entry_points(self) -> None:
        assert self.connector_name in ib.available_connectors()
        cls = self.connector_class()
        assert issubclass(cls, ib.Connector)
        assert cls.name == self.connector_name, f"{cls.__name__}.name is {cls.name!r}"
        assert self.connector_name in available_sandboxes(), (
            f"no sandbox registered for {self.connector_name!r} in itsm_bridge.sandboxes"
        )

    def test_options_are_validated(self) -> None:
        with pytest.raises(ib.InvalidOptionsError, match="unknown option"):
            self.offline_connector(no_such_option_exists=1)

    def test_reprs_hide_the_credentials(self, conformance_world: ConformanceWorld) -> None:
        secrets = secrets_of(conformance_world.sandbox.auth())
        assert secrets, "the sandbox's auth sends no credentials this check could look for"
        check_reprs_hide_secrets(conformance_world.connector, secrets)

    def test_endpoints_declared_and_unique(self) -> None:
        check_endpoints(self.offline_connector())

    def test_recorded_fixtures_map_cleanly(self) -> None:
        if not self.recorded:
            pytest.skip("no recorded fixtures declared (set `recorded`)")
        for fixture in self.recorded:
            check_recorded_fixture(self.offline_connector(**fixture.options), fixture)

    def test_mappers_do_no_io(self, conformance_world: ConformanceWorld) -> None:
        for kind in self.wanted_kinds():
            conformance_world.run(kind)
        checked = 0
        for fixture in self.recorded:
            kind = ib.Kind(fixture.kind)
            connector = self.offline_connector(**fixture.options)
            checked += check_mapper_purity(connector, ((kind, raw) for raw in fixture.records()))
        checked += check_mapper_purity(conformance_world.connector, conformance_world.captured)
        assert checked, "no raw records seen: does pull_pages map through self.map_record?"

    def test_paging_terminates_and_pages_are_well_formed(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for kind in self.wanted_kinds():
            run = conformance_world.run(kind)
            if len(run.items) > self.page_size:
                assert len(run.pages) >= 2, f"{kind.value}: {len(run.items)} records on one page"

    def test_sandbox_round_trip_returns_every_record_once(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for kind in self.wanted_kinds():
            expected = conformance_world.visible_keys(kind)
            assert expected, f"the sandbox shows no {kind.value} records"
            run = conformance_world.run(kind)
            check_round_trip(run, expected)
            check_times_match_truth(run, conformance_world.sandbox.visible_items())

    def test_a_record_that_fails_to_map_is_rejected_not_lost(
        self, conformance_world: ConformanceWorld
    ) -> None:
        kind = max(self.wanted_kinds(), key=lambda k: len(conformance_world.visible_keys(k)))
        with self.connect(conformance_world.sandbox) as connector:
            check_bad_record_rejected(connector, kind, conformance_world.visible_keys(kind))

    def test_incremental_pull_from_the_final_cursor_returns_nothing_new(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for kind in self.wanted_kinds():
            check_incremental(conformance_world.connector, conformance_world.run(kind))

    def test_a_page_cursor_resumes_after_its_page(
        self, conformance_world: ConformanceWorld
    ) -> None:
        for kind in self.wanted_kinds():
            run = conformance_world.run(kind)
            check_resume(conformance_world.connector, run, conformance_world.visible_keys(kind))

    def test_since_bound_is_exact(self, conformance_world: ConformanceWorld) -> None:
        for zone in self.since_timezones:
            if zone == "UTC":
                self._check_since(conformance_world.connector, conformance_world)
                continue
            with (
                self.make_sandbox(conformance_world.items, timezone=zone) as sandbox,
                self.connect(sandbox) as connector,
            ):
                self._check_since(connector, conformance_world, sandbox)

    def _check_since(
        self,
        connector: ib.Connector,
        world: ConformanceWorld,
        sandbox: PlatformSandbox | None = None,
    ) -> None:
        visible = (sandbox or world.sandbox).visible_items()
        for kind, bound in world.bounds.items():
            check_since_bound(connector, kind, bound, visible)
            if sandbox is not None:  # an account in another zone: the instants stay the same
                check_times_match_truth(run_pull(connector, kind), visible)
