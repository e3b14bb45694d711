"""Sources in one store: two sites on one host are two sources, and a source name belongs to one
connector (its cursors would skip the other platform's records without a word)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import itsm_bridge as ib
from itsm_bridge.connector import default_source
from itsm_bridge.errors import StoreError
from itsm_bridge.sandbox import PlatformSandbox, generate_company, make_sandbox
from itsm_bridge.sync import Store, run_sync


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://acme.service-now.com", "acme.service-now.com"),
        ("https://ACME.service-now.com/", "acme.service-now.com"),
        ("https://acme.service-now.com:443", "acme.service-now.com"),
        ("http://127.0.0.1:80/", "127.0.0.1"),
        ("http://127.0.0.1:8080", "127.0.0.1_8080"),
        ("https://tools.example.com/jira/", "tools.example.com/jira"),
        ("https://tools.example.com:8443/jira-legacy", "tools.example.com_8443/jira-legacy"),
        ("http://[::1]:9000", "--1_9000"),
    ],
)
def test_the_default_source_is_the_host_with_its_port_and_path(url: str, source: str) -> None:
    assert default_source(url) == source
    assert ":" not in source  # an id "<source>:<native id>" splits at its first colon


@contextmanager
def both_platforms(months: int, scale: float) -> Iterator[tuple[PlatformSandbox, PlatformSandbox]]:
    """A ServiceNow and a Jira sandbox of one generated company, both on 127.0.0.1."""
    company = generate_company(seed=3, months=months, scale=scale)
    with (
        make_sandbox("servicenow", company.for_platform("servicenow")) as sn,
        make_sandbox("jira", company.for_platform("jira")) as jira,
    ):
        yield sn, jira


def test_two_platforms_on_one_host_sync_into_one_store_completely(tmp_path: Path) -> None:
    store = tmp_path / "both.db"
    with both_platforms(months=2, scale=0.2) as (sn, jira):
        sources = []
        for sandbox in (sn, jira):
            conn = ib.connect(
                sandbox.connector, sandbox.url, auth=sandbox.auth(), **sandbox.connect_options()
            )
            assert conn.source.startswith("127.0.0.1_")
            result = ib.sync(conn, store=store)
            assert result.status == "ok", result.summary()
            assert result.records == len(sandbox.visible_items()), result.summary()
            sources.append(conn.source)
    assert len(set(sources)) == 2
    with Store(store) as db:
        assert {s for s, _ in db.cursors()} == set(sources)


def test_a_source_name_used_by_another_connector_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "named.db"
    with both_platforms(months=1, scale=0.1) as (sn, jira):
        first = ib.connect(
            "servicenow", sn.url, auth=sn.auth(), **{**sn.connect_options(), "source": "prod"}
        )
        assert ib.sync(first, store=store).status == "ok"
        second = ib.connect(
            "jira", jira.url, auth=jira.auth(), **{**jira.connect_options(), "source": "prod"}
        )
        with pytest.raises(StoreError, match="'prod' belongs to a servicenow source"):
            ib.sync(second, store=store)


def test_errors_name_the_source_they_came_from(tmp_path: Path) -> None:
    company = generate_company(seed=3, months=1, scale=0.1)
    with make_sandbox("jira", company.for_platform("jira")) as jira:
        options = {**jira.connect_options(), "source": "jira-prod"}
        wrong = ib.connect("jira", jira.url, auth=ib.BasicAuth("nobody", "wrong"), **options)
        with pytest.raises(ib.AuthenticationError) as caught:
            list(wrong.pull(kinds=["task"]))
        assert caught.value.source == "jira-prod"
        assert "source=jira-prod" in str(caught.value)
        # The same through a sync, whose report keeps the error.
        result = run_sync(wrong, store=tmp_path / "s.db")
        assert result.exception is not None
        assert "source=jira-prod" in str(result.error)


def test_platform_options_reach_the_platform_sandbox() -> None:
    """As docs/connectors/jira.md shows: make_sandbox("jira", items, deployment="datacenter")."""
    items = generate_company(seed=3, months=1, scale=0.1).for_platform("jira")
    sandbox = make_sandbox("jira", items, deployment="datacenter")
    assert sandbox.deployment == "datacenter"  # type: ignore[attr-defined]
