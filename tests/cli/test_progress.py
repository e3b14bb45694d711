"""The progress bar draws on a terminal and stays silent elsewhere."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from itsm_bridge import cli
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


def test_a_log_line_erases_the_bar_instead_of_running_into_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stderr", out)
    restore = cli._configure_logging("INFO")
    try:
        with ProgressBar(out, interval=0) as bar:
            bar(SyncProgress("snow", "incident", 1, 50, 0))
            bar(SyncProgress("jira", "task", 1, 30, 0))
            logging.getLogger("itsm_bridge.sync").info("pulling snow problem")
            bar(SyncProgress("snow", "problem", 2, 60, 0))
    finally:
        restore()
    before, _, after = out.getvalue().partition("pulling snow problem")
    # The two lines drawn, then back to the first and erased to the end of the screen; the log
    # line starts at column 1 (its timestamp), and the bar is drawn again below it.
    drawn, erased, logged = before.rpartition("\x1b[1F\x1b[0J")
    assert "jira" in drawn
    assert erased
    assert logged.startswith(("19", "20"))
    assert after.startswith("\n\x1b[2Ksnow")
