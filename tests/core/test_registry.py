"""The connector registry: a third party's package, found through real entry points."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import itsm_bridge as ib
from itsm_bridge.connector import parse_kinds, parse_since
from itsm_bridge.sandbox import available_sandboxes, generate_items, make_sandbox

pytestmark = pytest.mark.usefixtures("acme_plugin")


def test_a_test_only_package_is_discovered_through_its_entry_point() -> None:
    assert "acme" in ib.available_connectors()
    assert ib.available_connectors() == sorted(ib.available_connectors())
    assert "acme" in available_sandboxes()
    cls = ib.connector_class("acme")
    assert issubclass(cls, ib.Connector)
    assert cls.__module__ == "itsm_bridge_acme"  # loaded from the tmp site dir, not the repo
    module_file = sys.modules["itsm_bridge_acme"].__file__
    assert module_file is not None
    assert "site-packages" in Path(module_file).parts[-3]


def test_it_is_used_exactly_like_a_built_in() -> None:
    items = generate_items(ib.Kind.INCIDENT, 30, seed=3, platform="acme")
    with make_sandbox("acme", items) as sandbox:
        conn = ib.connect(
            "acme", base_url=sandbox.url, auth=sandbox.auth(), page_size=7, team_prefix="acme/"
        )
        with conn:
            pulled = list(conn.pull(kinds=["incident"]))
            url = sandbox.url
            since = sorted(i.updated for i in items)[10]
            recent = list(conn.pull(kinds=[ib.Kind.INCIDENT], since=since.isoformat()))
            report = conn.report()
    assert sorted(i.key for i in pulled) == sorted(i.number for i in items)
    assert {i.key for i in recent} == {i.number for i in items if i.updated >= since}
    assert all(i.team is not None and i.team.startswith("acme/") for i in pulled)
    # the source defaults to the host and port: "127.0.0.1_PORT:<native id>"
    port = url.rsplit(":", 1)[-1].strip("/")
    assert all(i.id.startswith(f"127.0.0.1_{port}:") for i in pulled)
    assert report["records"] == 30 + len(recent)
    assert report["requests"] >= 5  # 30 records in pages of 7


def test_unknown_connector_lists_the_installed_ones() -> None:
    with pytest.raises(ib.UnknownConnectorError) as caught:
        ib.connect("remedy", base_url="https://itsm.example.com")
    text = str(caught.value)
    assert "'remedy'" in text
    assert "acme" in text
    for name in ib.available_connectors():
        assert name in text
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"page_sise": 100}, "unknown option 'page_sise' (known options: "),
        ({"page_size": 0}, "page_size: Input should be greater than or equal to 1"),
        ({"max_workers": "many"}, "max_workers: Input should be a valid integer"),
        ({"team_prefix": 7}, "team_prefix: Input should be a valid string"),
    ],
)
def test_invalid_options_raise_a_clear_error(options: dict[str, object], expected: str) -> None:
    with pytest.raises(ib.InvalidOptionsError) as caught:
        ib.connect("acme", base_url="https://acme.example.com", **options)  # type: ignore[arg-type]
    text = str(caught.value)
    assert "invalid options for connector 'acme'" in text
    assert expected in text
    assert "\n" not in text


def test_known_options_are_listed_with_the_connectors_own() -> None:
    with pytest.raises(ib.InvalidOptionsError, match=r"known options: .*page_size.*team_prefix"):
        ib.connect("acme", base_url="https://acme.example.com", colour="red")


def test_a_broken_entry_point_is_a_configuration_error(
    acme_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info = acme_plugin / "itsm_bridge_acme-0.1.0.dist-info" / "entry_points.txt"
    original = dist_info.read_text()
    try:
        dist_info.write_text(
            original + "\n[itsm_bridge.connectors]\n"
            "broken = itsm_bridge_acme:NoSuchClass\nwrong = itsm_bridge_acme:STATES\n"
        )
        importlib.invalidate_caches()
        with pytest.raises(ib.ConfigurationError, match="cannot be loaded"):
            ib.connector_class("broken")
        with pytest.raises(ib.ConfigurationError, match="does not name a Connector subclass"):
            ib.connector_class("wrong")
    finally:
        dist_info.write_text(original)
        importlib.invalidate_caches()


def test_plain_http_is_refused_for_a_remote_host() -> None:
    with pytest.raises(ib.InsecureTransportError):
        ib.connect("acme", base_url="http://acme.example.com")


def test_parse_kinds() -> None:
    supported = [ib.Kind.INCIDENT, ib.Kind.PROJECT]
    assert parse_kinds(None, supported) == supported
    assert parse_kinds(["project", ib.Kind.INCIDENT, "project"], supported) == [
        ib.Kind.PROJECT,
        ib.Kind.INCIDENT,
    ]
    with pytest.raises(ib.ConfigurationError, match="unknown kind 'epic'; kinds are: incident"):
        parse_kinds(["epic"], supported)
    with pytest.raises(
        ib.ConfigurationError, match="cannot pull 'change'; it has: incident, project"
    ):
        parse_kinds(["change"], supported)
    # One kind alone, as a string or a Kind (both are str: never read letter by letter).
    assert parse_kinds("incident", supported) == [ib.Kind.INCIDENT]
    assert parse_kinds(ib.Kind.PROJECT, supported) == [ib.Kind.PROJECT]
    # An empty list (a filter that came out empty) would pull nothing and report ok.
    for empty in ([], ()):
        with pytest.raises(ib.ConfigurationError, match="no kinds given"):
            parse_kinds(empty, supported)


def test_parse_since() -> None:
    assert parse_since(None) is None
    assert parse_since("2026-03-01T10:00:00+0530") == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)
    aware = datetime(2026, 3, 1, 10, tzinfo=UTC) + timedelta(seconds=1)
    assert parse_since(aware) == aware
    with pytest.raises(ib.ConfigurationError, match=r"^since: "):
        parse_since("last tuesday")
    with pytest.raises(ib.ConfigurationError, match="not int"):
        parse_since(1_700_000_000)  # type: ignore[arg-type]
    with pytest.raises(ib.ConfigurationError, match="timezone-aware"):
        parse_since(datetime(2026, 3, 1))
