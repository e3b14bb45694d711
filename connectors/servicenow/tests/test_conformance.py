"""The core conformance kit, run on the ServiceNow connector and its sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from itsm_bridge.testing import ConnectorConformance, RecordedFixture

from .conftest import REAL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _recorded() -> list[RecordedFixture]:
    own = [
        RecordedFixture(
            "incident",
            FIXTURES / "sandbox-incident-display-all.json",
            "result",
            expect={
                "INC0010003": {
                    "status": "closed",
                    "status_raw": "7",
                    "updated_at": "2025-10-06T20:36:19Z",  # raw UTC; the display is Pacific
                    "parent_key": "INC0010002",
                    "effort_hours": 1.25,
                    "extra.status_label": "Closed",
                }
            },
        ),
        RecordedFixture(
            "change",
            FIXTURES / "sandbox-change_request-display-all.json",
            "result",
            expect={
                "CHG0030027": {
                    "extra.linked_project": "PRJ0001002",
                    "extra.change_type": "normal",
                    "extra.risk": "high",
                    "effort_hours": 18.0,
                    "parent_key": None,
                }
            },
        ),
        RecordedFixture(
            "project",
            FIXTURES / "sandbox-pm_project-display-all.json",
            "result",
            expect={
                "PRJ0001006": {
                    "extra.investment.portfolio_category": "run",
                    "extra.investment.investment_class": "run",
                    "effort_hours": 294.0,
                    "effort_source": "estimated",
                }
            },
        ),
        RecordedFixture(
            "task",
            FIXTURES / "sandbox-pm_project_task-display-all.json",
            "result",
            expect={
                "PRJTASK0001001": {
                    "parent_key": "PRJ0001002",
                    "extra.project_key": "PRJ0001002",
                    "effort_hours": 6.0,
                    "effort_source": "measured",
                }
            },
        ),
        RecordedFixture("request", FIXTURES / "sandbox-sc_req_item-display-all.json", "result"),
        RecordedFixture("problem", FIXTURES / "sandbox-problem-display-all.json", "result"),
    ]
    real = [
        RecordedFixture(
            "incident",
            REAL / "sn-scripts-incident-INC0000060.json",
            "result",
            expect={"INC0000060": {"status": "closed", "priority": 3, "category": "inquiry"}},
        ),
        RecordedFixture(
            "problem",
            REAL / "servicenow-docs-table-get-problem-limit1.json",
            "result",
            expect={"PRB0000050": {"status": "closed", "extra.status_label": "Closed/Resolved"}},
        ),
        RecordedFixture(
            "incident", REAL / "servicenow-docs-table-get-incident-by-sys_id.json", "result"
        ),
    ]
    return own + [f for f in real if Path(f.path).exists()]


class TestServiceNowConformance(ConnectorConformance):
    connector_name = "servicenow"
    recorded: ClassVar = _recorded()
