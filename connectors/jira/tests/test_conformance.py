"""The core conformance kit (itsm_bridge.testing), run on the Jira connector.

The kit pulls from the Jira sandbox (every kind, small pages), checks the round trip, resume from
a page cursor, incremental pulls from the final cursor, exact ``since`` bounds in several account
time zones, mapper purity, and maps the recorded fixtures below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from itsm_bridge.testing import ConnectorConformance, RecordedFixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# The fixtures' site has these custom field ids (another site's differ: names resolve via /field).
FIELDS: dict[str, Any] = {
    "team_field": "customfield_10001",
    "story_points_field": "customfield_10016",
    "investment_field": "customfield_10100",
    "epic_link_field": "customfield_10014",
}


class TestJiraConformance(ConnectorConformance):
    connector_name = "jira"
    since_timezones = ("UTC", "Asia/Kolkata", "America/Los_Angeles")
    generated_per_kind = 40
    recorded: ClassVar[list[RecordedFixture]] = [
        RecordedFixture(
            "incident",
            FIXTURES / "cloud-v3-search-jql-incidents.json",
            "issues",
            options=FIELDS,
            expect={
                "ITSM-214": {
                    "status": "resolved",
                    "priority": 2,
                    "created_at": "2026-01-05T04:30:00Z",
                    "updated_at": "2026-01-05T10:15:12.345Z",
                    "resolved_at": "2026-01-05T10:10:00Z",
                    "effort_hours": 2.5,
                    "effort_source": "measured",
                    "team": "Network Ops",
                    "service": "VPN",
                    "labels": ["network", "p2"],
                    "extra.issue_type": "[System] Incident",
                    "description": (
                        "Impact\n\nRemote staff lose VPN every hour; raised by @Priya Raman.\n\n"
                        "- vpn-gw-prd-01\n- vpn-gw-prd-02\n\nIKE SA expired\n\n"
                        "[attachment: gateway.png]"
                    ),
                },
                "ITSM-215": {
                    "status": "on_hold",
                    "priority": 4,
                    "created_at": "2026-01-05T05:10:00Z",
                    "updated_at": "2026-01-05T06:00:59.999Z",
                    "effort_hours": 2.0,
                    "effort_source": "estimated",
                    "team": "IT Service Desk",
                    "service": None,
                    "requester": "Store 112",
                    "description": None,
                },
            },
        ),
        RecordedFixture(
            "project",
            FIXTURES / "cloud-v3-search-jql-epics.json",
            "issues",
            options=FIELDS,
            expect={
                "SHOP-1": {
                    "status": "in_progress",
                    "parent_key": "SHOP-0",
                    "created_at": "2025-11-03T08:00:00Z",
                    "effort_hours": 160.0,
                    "effort_source": "estimated",
                    "team": "Digital Commerce",
                    "extra.investment.category_raw": "Grow the business",
                    "extra.investment.portfolio_category": "grow",
                    "extra.aggregate_hours": 42.0,
                    "extra.hierarchy_level": 1,
                    "description": (
                        "Business case: https://northwind.atlassian.net/wiki/x/AbCd\n\n"
                        "[info] Target: Q2"
                    ),
                },
            },
        ),
        RecordedFixture(
            "task",
            FIXTURES / "dc-v2-search-story-epic-link.json",
            "issues",
            options=FIELDS,
            expect={
                "OPS-88": {
                    "status": "closed",
                    "priority": 3,
                    "parent_key": "OPS-12",  # the legacy Epic Link field
                    "created_at": "2026-02-02T07:15:00Z",
                    "effort_hours": 7.5,
                    "effort_source": "measured",
                    "team": "Platform Engineering",
                    "assignee": "Lars Eriksen",
                    "extra.story_points": 5.0,
                    "description": (
                        "h3. Why\nThe wildcard certificate expires on *1 March*.\n# renew\n"
                        "# deploy\n{code}kubectl rollout restart deploy/ingress{code}"
                    ),
                },
            },
        ),
    ]
