"""Pulls against the fake instance: completeness, incremental exactness, time zones, resume."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest
import requests

import itsm_bridge as ib
from itsm_bridge import Cursor, Kind, Page
from itsm_bridge.sandbox import FaultPlan, TruthItem, generate_items

from .conftest import SandboxFactory, connect, pulled_ids


def _is_data_page(request: object) -> bool:
    path = getattr(request, "path", "")
    return isinstance(path, str) and path.startswith("/api/now/table/incident")


def test_50k_with_acls_429s_and_updates_returns_the_visible_set_once(
    sandbox: SandboxFactory, incidents_50k: list[TruthItem]
) -> None:
    faults = FaultPlan(
        seed=3,
        p_429=0.04,
        burst_429=3,
        retry_after=0,
        acl_hidden_share=0.10,
        p_update_during_paging=0.01,
        applies_to=_is_data_page,
    )
    box = sandbox(incidents_50k, faults=faults)
    conn = connect(box)
    pages = list(conn.pull_pages(Kind.INCIDENT))
    ids = pulled_ids(pages)
    visible = {item.uid for item in box.visible_items()}
    hidden = box.hidden_ids()
    assert len(ids) == len(set(ids)), "a record was returned twice"
    assert set(ids) == visible
    assert 4_000 < len(hidden) < 6_000
    assert faults.injected.get("429", 0) >= 3, "no 429 burst happened"
    assert box.touched >= 200, "records were not updated during the pull"
    assert conn.transport.stats.retries >= 3
    assert pages[-1].final
    assert pages[-1].cursor is not None
    assert all(not p.final for p in pages[:-1])
    # The Aggregate API counts ACL-hidden rows: the difference is reported, not hidden.
    (check,) = conn.stats.completeness
    assert check.expected is not None
    assert check.expected - check.fetched == len(hidden)
    assert check.ok is False
    assert box.server.max_in_flight > 1, "ranges were not fetched in parallel"


def test_second_pull_returns_exactly_what_changed(
    sandbox: SandboxFactory, incidents_3k: list[TruthItem]
) -> None:
    box = sandbox(incidents_3k)
    conn = connect(box, max_workers=3)
    first = list(conn.pull_pages(Kind.INCIDENT))
    assert len(pulled_ids(first)) == 3_000
    cursor = first[-1].cursor
    assert cursor is not None
    assert cursor.watermark is not None
    stamp = cursor.watermark
    changed = [
        box.touch(incidents_3k[10].uid, when=stamp).uid,  # the cursor's own second
        box.touch(incidents_3k[20].uid, when=stamp).uid,
        box.touch(incidents_3k[30].uid, when=stamp - timedelta(seconds=30)).uid,  # in the overlap
        box.touch(incidents_3k[40].uid).uid,  # now
    ]
    second = list(connect(box, max_workers=3).pull_pages(Kind.INCIDENT, cursor))
    ids = pulled_ids(second)
    assert sorted(ids) == sorted(changed)
    # And a third pull with nothing changed returns nothing at all.
    third = list(connect(box).pull_pages(Kind.INCIDENT, second[-1].cursor))
    assert pulled_ids(third) == []
    assert third[-1].final


def test_account_time_zone_never_leaks_into_datetimes(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.CHANGE, 300, seed=9)
    box = sandbox(items, timezone="America/Los_Angeles")
    # The trap is real: display values are Pacific time, raw values UTC.
    raw = requests.get(
        f"{box.url}/api/now/table/change_request",
        params={"sysparm_limit": 1, "sysparm_display_value": "all"},
        auth=("admin", "sandbox-admin"),
        timeout=10,
    ).json()["result"][0]
    assert raw["sys_updated_on"]["display_value"] != raw["sys_updated_on"]["value"]
    truth = {i.uid: i for i in items}
    conn = connect(box)
    pulled = list(conn.pull(kinds=["change"]))
    assert len(pulled) == 300
    for item in pulled:
        t = truth[item.id.split(":", 1)[1]]
        assert item.updated_at == t.updated.replace(microsecond=0)
        assert item.created_at == t.created.replace(microsecond=0)
        if t.resolved is not None:
            assert item.resolved_at == t.resolved.replace(microsecond=0)
        if t.planned_start is not None:
            assert item.extra["planned_start"] == t.planned_start.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unknown_field_fails_before_any_data_request(
    sandbox: SandboxFactory, incidents_3k: list[TruthItem]
) -> None:
    box = sandbox(incidents_3k[:50])
    conn = connect(box, extra_fields={"incident": ["u_bussiness_value"]})
    with pytest.raises(ib.UnknownFieldError, match="u_bussiness_value"):
        list(conn.pull_pages(Kind.INCIDENT))
    conn = connect(box, filters={"incident": "u_regoin=EMEA"})
    with pytest.raises(ib.UnknownFieldError, match="u_regoin"):
        list(conn.pull_pages(Kind.INCIDENT))
    assert box.data_requests() == []
    # The typo would have matched everything: the instance ignores unknown conditions.
    everything = requests.get(
        f"{box.url}/api/now/table/incident",
        params={"sysparm_query": "u_regoin=EMEA", "sysparm_fields": "sys_id"},
        auth=("admin", "sandbox-admin"),
        timeout=10,
    ).json()["result"]
    assert len(everything) == 50


def test_custom_field_and_filter_are_read(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 200, seed=2)
    box = sandbox(items, custom_fields={"incident": {"u_business_value": ["low", "high"]}})
    conn = connect(
        box,
        extra_fields={"incident": ["u_business_value"]},
        filters={"incident": "u_business_value=high^priority<=3"},
    )
    pulled = list(conn.pull(kinds=["incident"]))
    assert pulled
    assert {p.extra["u_business_value"] for p in pulled} == {"high"}
    assert all(p.priority is not None and p.priority <= 3 for p in pulled)
    expected = {
        i.uid
        for i in items
        if i.priority <= 3 and ["low", "high"][int(i.uid[8:16], 16) % 2] == "high"
    }
    assert {p.id.split(":", 1)[1] for p in pulled} == expected


def test_transaction_cancellation_halves_the_page_size(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 700, seed=4)
    box = sandbox(items, max_page_rows=300)
    conn = connect(box, max_workers=1)
    ids = pulled_ids(conn.pull_pages(Kind.INCIDENT))
    assert sorted(ids) == sorted(i.uid for i in items)
    assert conn.report()["page_size"]["incident"] == 250
    limits = [int(p["sysparm_limit"]) for p in box.data_requests("incident")]
    assert limits[:3] == [1000, 500, 250]


def test_transaction_cancellation_gives_up_at_the_minimum(sandbox: SandboxFactory) -> None:
    box = sandbox(generate_items(Kind.INCIDENT, 20, seed=4), max_page_rows=5)
    conn = connect(box, max_workers=1, page_size=40, min_page_size=10)
    with pytest.raises(ib.ServerError, match="cancelled even at 10"):
        list(conn.pull_pages(Kind.INCIDENT))


@pytest.mark.parametrize("grant", ["password", "client_credentials"])
def test_oauth_grants(sandbox: SandboxFactory, grant: str) -> None:
    items = generate_items(Kind.PROBLEM, 40, seed=1)
    box = sandbox(items)
    options = {
        "oauth_client_id": "itsm-bridge",
        "oauth_client_secret": "sandbox-client-secret",
        "oauth_grant": grant,
        **box.connect_options(),
    }
    if grant == "password":
        options.update(username="admin", password="sandbox-admin")
    conn = ib.connect("servicenow", box.url, **options)
    assert "sandbox-client-secret" not in repr(conn.options)
    first = list(islice(conn.pull(kinds=["problem"]), 5))
    box.app.expire_tokens()  # the next request is refused once, then the token is renewed
    rest = list(conn.pull(kinds=["problem"]))
    assert len(first) == 5
    assert len(rest) == 40
    posts = [r for r in box.requests if r[1] == "/oauth_token.do"]
    assert len(posts) == 2


def test_bad_credentials_and_hibernation(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 10, seed=1)
    box = sandbox(items)
    with pytest.raises(ib.AuthenticationError):
        list(connect(box, auth=ib.BasicAuth("admin", "wrong")).pull(kinds=["incident"]))
    asleep = sandbox(items, faults=FaultPlan(hibernating=True))
    with pytest.raises(ib.ResponseFormatError, match="hibernating"):
        list(connect(asleep).pull(kinds=["incident"]))


def _take(pages: list[Page], upto: int) -> tuple[set[str], Cursor]:
    delivered = set(pulled_ids(pages[: upto + 1]))
    cursor = pages[upto].cursor
    assert cursor is not None
    return delivered, cursor


@pytest.mark.parametrize("kill_after", [0, 3, 9])
def test_resume_from_a_mid_pull_cursor_loses_nothing(
    sandbox: SandboxFactory, kill_after: int
) -> None:
    items = generate_items(Kind.INCIDENT, 4_000, seed=8)
    faults = FaultPlan(seed=kill_after, acl_hidden_share=0.05, p_update_during_paging=0.01)
    box = sandbox(items, faults=faults)
    conn = connect(box, page_size=250, max_workers=4)
    stream = conn.pull_pages(Kind.INCIDENT)
    pages = list(islice(stream, kill_after + 1))
    stream.close()  # the process dies here: only these pages were stored
    delivered, cursor = _take(pages, kill_after)
    assert "phase" in json.loads(cursor.model_dump_json())["state"]
    rest = list(connect(box, page_size=250, max_workers=4).pull_pages(Kind.INCIDENT, cursor))
    again = pulled_ids(rest)
    visible = {i.uid for i in box.visible_items()}
    assert delivered | set(again) == visible
    assert len(again) == len(set(again))
    # Only records touched after they were delivered come again (as newer versions).
    assert len(delivered & set(again)) <= box.touched


def test_whole_hidden_pages_do_not_end_a_range(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.REQUEST, 300, seed=6)
    box = sandbox(items, faults=FaultPlan(seed=2, acl_hidden_share=0.6))
    ids = pulled_ids(connect(box, page_size=3, min_page_size=1).pull_pages(Kind.REQUEST))
    assert sorted(ids) == sorted(i.uid for i in box.visible_items())
    offsets = [p for p in box.data_requests("sc_req_item") if p.get("sysparm_offset")]
    assert offsets, "no page was entirely hidden: the test does not test anything"


def test_without_the_aggregate_api_and_dictionary(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.REQUEST, 300, seed=6)
    faults = FaultPlan(seed=2, acl_hidden_share=0.3)
    box = sandbox(items, faults=faults, aggregate=False, dictionary_readable=False)
    conn = connect(box, page_size=4, min_page_size=1)
    ids = pulled_ids(conn.pull_pages(Kind.REQUEST))
    assert sorted(ids) == sorted(i.uid for i in box.visible_items())
    assert [c.expected for c in conn.stats.completeness] == [None]
    with pytest.raises(ib.UnknownFieldError, match="validate_fields"):
        list(connect(box, extra_fields={"sc_req_item": ["u_x"]}).pull_pages(Kind.REQUEST))
    unchecked = connect(box, extra_fields={"sc_req_item": ["u_x"]}, validate_fields="off")
    assert len(pulled_ids(unchecked.pull_pages(Kind.REQUEST))) == len(ids)


@pytest.mark.parametrize("block", [20, 30, 55])
def test_a_block_of_hidden_rows_without_the_aggregate_api_does_not_end_a_range(
    sandbox: SandboxFactory, block: int
) -> None:
    """Several whole pages hidden by an ACL mid-range, and no Aggregate API to count past them:
    the empty page's own X-Total-Count (hidden rows included) says how far to look. Looking one
    page further and then believing the end lost every row after the block."""
    items = generate_items(Kind.REQUEST, 200, seed=6)
    box = sandbox(items, aggregate=False)
    table = box.instance.tables["sc_req_item"]
    order = [sys_id for _, sys_id in table.by_updated]
    table.hidden.update(order[40 : 40 + block])
    conn = connect(box, page_size=10, min_page_size=1, max_workers=1, adaptive_page_size=False)
    ids = pulled_ids(conn.pull_pages(Kind.REQUEST))
    assert sorted(ids) == sorted(set(order) - set(order[40 : 40 + block]))


def test_a_census_past_hidden_rows_without_the_aggregate_api_marks_only_those_gone(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    items = generate_items(Kind.REQUEST, 200, seed=6)
    box = sandbox(items, aggregate=False)
    table = box.instance.tables["sc_req_item"]
    options = {"page_size": 10, "min_page_size": 1, "max_workers": 1, "adaptive_page_size": False}
    store = tmp_path / "census.db"
    assert ib.sync(connect(box, **options), store=store, kinds=["request"]).records == 200
    table.hidden.update(table.by_id[40:70])  # a role loses access to 30 records
    again = ib.sync(connect(box, **options), store=store, kinds=["request"], census=True)
    assert again.deleted == 30


def test_census_lists_every_visible_id(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.TASK, 500, seed=3)
    box = sandbox(items, faults=FaultPlan(seed=1, acl_hidden_share=0.2))
    census = list(connect(box, page_size=7, min_page_size=1).census(Kind.TASK))
    assert len(census) == len(set(census))
    assert set(census) == {i.uid for i in box.visible_items()}
    assert all(p["sysparm_fields"] == "sys_id" for p in box.data_requests("pm_project_task"))


def test_since_is_exact_to_the_second(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 1_000, seed=12)
    box = sandbox(items)
    bound = sorted(i.updated.replace(microsecond=0) for i in items)[600]
    pulled = list(connect(box).pull(kinds=["incident"], since=bound))
    expected = {i.uid for i in items if i.updated.replace(microsecond=0) >= bound}
    assert {p.id.split(":", 1)[1] for p in pulled} == expected


def test_a_kind_read_from_two_tables(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.REQUEST, 120, seed=6)
    box = sandbox(items)
    conn = connect(box, tables=[{"table": "sc_request", "kind": "request"}], max_workers=2)
    pages = list(conn.pull_pages(Kind.REQUEST))
    keys = {item.key for page in pages for item in page.items}
    assert {k for k in keys if k.startswith("RITM")} == {i.number for i in items}
    assert len({k for k in keys if k.startswith("REQ")}) == 120
    tables = [c.window.split()[0] for c in conn.stats.completeness]
    assert tables == ["sc_req_item", "sc_request"]
    # Resume in the middle of the second table.
    middle = next(p for p in pages if p.cursor and p.cursor.state.get("table_index") == 1)
    assert middle.cursor is not None
    rest = list(
        connect(box, tables=[{"table": "sc_request", "kind": "request"}]).pull_pages(
            Kind.REQUEST, middle.cursor
        )
    )
    assert all(item.key.startswith("REQ") for page in rest for item in page.items)


def test_unknown_codes_are_counted_in_the_report(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.CHANGE, 200, seed=5)
    box = sandbox(items, state_models={"change_request": "legacy"})
    conn = connect(box, state_tables={"change_request": ["change_state"]})
    pulled = list(conn.pull(kinds=["change"]))
    unknown = [p for p in pulled if "unknown_codes" in p.extra]
    assert unknown
    report = conn.report()["unknown_codes"]
    assert sum(report.values()) == len(unknown)
    assert all(key.startswith("change_request.state=") for key in report)
    # With both tables (the default) the legacy labels are recognised.
    assert not [p for p in connect(box).pull(kinds=["change"]) if "unknown_codes" in p.extra]


def test_records_deleted_while_paging(sandbox: SandboxFactory) -> None:
    items = generate_items(Kind.INCIDENT, 2_000, seed=14)
    faults = FaultPlan(seed=4, p_delete_during_paging=0.01, p_update_during_paging=0.01)
    box = sandbox(items, faults=faults)
    ids = pulled_ids(connect(box, page_size=100).pull_pages(Kind.INCIDENT))
    deleted = {i.uid for i in items if i.number in box.store.deleted()}
    visible = {i.uid for i in box.visible_items()}
    assert deleted, "nothing was deleted: the test does not test anything"
    assert len(ids) == len(set(ids))
    assert visible <= set(ids) <= visible | deleted
    faults.p_delete_during_paging = faults.p_update_during_paging = 0.0  # a quiet census
    census = set(connect(box).census(Kind.INCIDENT))
    assert census == {i.uid for i in box.visible_items()}


@pytest.mark.parametrize("dictionary_readable", [True, False])
def test_a_kind_whose_plugin_is_not_installed_is_skipped_only_when_not_named(
    sandbox: SandboxFactory, tmp_path: Path, dictionary_readable: bool
) -> None:
    # An instance without Project Portfolio Management has no pm_project or pm_project_task:
    # a pull of every kind must still deliver the rest, and say what it skipped.
    items = [
        *generate_items(Kind.INCIDENT, 40, seed=3),
        *generate_items(Kind.PROJECT, 10, seed=4),
    ]
    box = sandbox(
        items,
        dictionary_readable=dictionary_readable,
        absent_tables=("pm_project", "pm_project_task"),
    )
    conn = connect(box)
    pulled = list(conn.pull())
    assert sorted(i.key for i in pulled) == sorted(i.number for i in box.visible_items())
    assert {i.kind for i in pulled} == {Kind.INCIDENT}
    skipped = conn.report()["unavailable_kinds"]
    assert set(skipped) == {"project", "task"}
    assert "no table 'pm_project'" in skipped["project"]

    with pytest.raises(ib.KindUnavailableError, match="pm_project") as named:
        list(connect(box).pull(kinds=["incident", "project"]))
    assert named.value.exit_code == 2  # a configuration error when the kind is asked for

    result = ib.sync(connect(box), store=tmp_path / "s.db")
    assert result.status == "ok"
    assert result.records == 40
    report = result.as_dict()["kinds"]
    assert report["project"]["unavailable"]
    assert not report["project"]["complete"]
    assert report["incident"]["unavailable"] is None
    assert "not on this instance: project, task" in result.summary()


def test_no_table_of_any_kind_is_an_error_not_an_empty_pull(sandbox: SandboxFactory) -> None:
    # A base URL pointing at the wrong thing can look like that: it must not pass as "ok".
    tables = ("incident", "change_request", "problem", "sc_req_item", "pm_project",
              "pm_project_task")  # fmt: skip
    box = sandbox(generate_items(Kind.INCIDENT, 5, seed=4), absent_tables=tables)
    with pytest.raises(ib.KindUnavailableError, match=r"check the base URL.*pm_project_task"):
        list(connect(box).pull())
