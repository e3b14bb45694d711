"""The progress bar draws on a terminal and stays silent elsewhere."""

from __future__ import annotations

import io

from itsm_bridge._progress import ProgressBar
from itsm_bridge.sync import SyncProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_one_line_per_source_on_a_terminal() -> None:
    out = Terminal()
    bar = ProgressBar(out, totals={"snow": 200}, interval=0)
    bar(SyncProgress("snow", "incident", 1, 50, 0))
    bar(SyncProgress("snow", "incident", 2, 100, 0, done=True))
    bar(SyncProgress("jira", "task", 1, 30, 2))
    bar(SyncProgress("snow", "change", 1, 50, 1))
    bar.close()
    text = out.getvalue()
    final = text.rsplit("\x1b[1F", 1)[-1]  # the last redraw of both lines
    snow, jira = [line.replace("\x1b[2K", "") for line in final.strip("\n").split("\n")]
    assert snow.startswith("snow")
    assert "[##################......]  75%" in snow  # 150 of 200 records
    assert "150 records" in snow
    assert "1 quarantined" in snow
    assert jira.startswith("jira")
    assert "30 records" in jira
    assert "2 quarantined" in jira


def test_silent_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interval=0)
    bar(SyncProgress("snow", "incident", 1, 50, 0))
    bar.close()
    assert out.getvalue() == ""
    assert not bar.enabled
