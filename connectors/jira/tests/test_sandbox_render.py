"""The Jira sandbox's issues: as heavy as a real site's, and rendered once per version."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from itsm_bridge_jira.sandbox.render import Renderer

from itsm_bridge import Kind
from itsm_bridge.sandbox import generate_items


def _renderer(*, cloud: bool = True) -> Renderer:
    return Renderer(cloud=cloud, base_url="http://jira.test", tz=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize("cloud", [True, False])
def test_an_all_fields_issue_weighs_what_a_real_one_does(cloud: bool) -> None:
    renderer = _renderer(cloud=cloud)
    items = generate_items(Kind.INCIDENT, 50, seed=3, platform="jira")
    sizes = [len(json.dumps(renderer.issue(item, None, None))) for item in items]
    # A real Cloud search page (shared data) holds 5.7-8.7 KB per issue; the fake's used to
    # hold 3.4 KB, which made clients that read every field look cheaper than they are.
    assert 4_500 < sum(sizes) / len(sizes) < 9_000
    listed = {field["id"] for field in renderer.fields()}
    custom = {k for k in renderer.issue(items[0], None, None)["fields"] if k.startswith("custom")}
    assert custom <= listed  # every custom field an issue carries is in GET /field


def test_a_projection_carries_only_what_it_asks_for() -> None:
    renderer = _renderer()
    item = generate_items(Kind.INCIDENT, 1, seed=3, platform="jira")[0]
    body = renderer.issue(item, None, {"summary", "updated", "customfield_10019"})
    assert set(body["fields"]) == {"summary", "updated", "customfield_10019"}
    assert body["fields"]["summary"] == item.title


def test_an_issue_is_rendered_again_when_it_or_its_parent_changes() -> None:
    renderer = _renderer()
    parent, child = generate_items(Kind.INCIDENT, 2, seed=5, platform="jira")
    first = renderer.every_field(child, parent)
    assert renderer.every_field(child, parent) is first  # the same version: rendered once

    newer = child.touched(child.updated + timedelta(minutes=5), note="more detail")
    changed = renderer.every_field(newer, parent)
    assert changed["updated"] != first["updated"]
    assert renderer.every_field(child, parent) is first  # each version keeps its own rendering

    renamed = replace(parent, title="A different parent")
    assert renderer.every_field(newer, renamed)["parent"]["fields"]["summary"] == renamed.title

    renderer.base_url = "http://elsewhere.test"
    assert renderer.every_field(newer, renamed)["watches"]["self"].startswith(
        "http://elsewhere.test/"
    )
