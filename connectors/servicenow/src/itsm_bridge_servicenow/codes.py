"""ServiceNow choice codes as data: state models, priority, and how each maps to the schema.

Sources (see ``platform-apis.md`` part A): incident states [SN-DOC incident][ANS], the change state
model and its legacy values on the same numbers [SN-CHGSM], both problem state models [SN-PRB],
planned-task and task states [SN-PRJST], priority [SN-PRIO].

Every table here is a plain mapping ``code -> (status, label)``; an instance whose codes differ
overrides or extends them with the connector option ``code_tables`` (see
``docs/connectors/servicenow.md``). A field may be read against several tables (a change can use
the state model or the legacy values, which share numbers): :meth:`CodeBook.state` picks the table
whose label matches the label the instance sent, so ``sysparm_display_value=all`` settles it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from itsm_bridge import Status

__all__ = [
    "DEFAULT_PRIORITY",
    "DEFAULT_STATE_TABLES",
    "CodeBook",
    "StateCode",
    "fallback_status",
]

N, P, H, R, C, X = (
    Status.NEW,
    Status.IN_PROGRESS,
    Status.ON_HOLD,
    Status.RESOLVED,
    Status.CLOSED,
    Status.CANCELLED,
)

DEFAULT_STATE_TABLES: dict[str, dict[str, tuple[Status, str]]] = {
    "incident_state": {
        "1": (N, "New"),
        "2": (P, "In Progress"),
        "3": (H, "On Hold"),
        "6": (R, "Resolved"),
        "7": (C, "Closed"),
        "8": (X, "Canceled"),
    },
    # The change state model (Istanbul and later). "Review" follows implementation: the work is
    # done and only the post-implementation review is open, so it counts as resolved.
    "change_state": {
        "-5": (N, "New"),
        "-4": (P, "Assess"),
        "-3": (P, "Authorize"),
        "-2": (P, "Scheduled"),
        "-1": (P, "Implement"),
        "0": (R, "Review"),
        "3": (C, "Closed"),
        "4": (X, "Canceled"),
    },
    # Quirk: legacy change states reuse -5, 3 and 4 with other meanings (4 = Closed Incomplete).
    "change_state_legacy": {
        "-5": (N, "Pending"),
        "1": (N, "Open"),
        "2": (P, "Work in Progress"),
        "3": (C, "Closed Complete"),
        "4": (C, "Closed Incomplete"),
        "7": (X, "Closed Skipped"),
    },
    "problem_state": {
        "101": (N, "New"),
        "102": (P, "Assess"),
        "103": (P, "Root Cause Analysis"),
        "104": (P, "Fix in Progress"),
        "106": (R, "Resolved"),
        "107": (C, "Closed"),
    },
    # Older problem model; "Closed/Resolved" is one state there.
    "problem_state_legacy": {
        "1": (N, "Open"),
        "2": (P, "Known Error"),
        "3": (P, "Pending Change"),
        "4": (C, "Closed/Resolved"),
    },
    # task / planned_task states, inherited by sc_req_item, pm_project and pm_project_task.
    "task_state": {
        "-5": (N, "Pending"),
        "1": (N, "Open"),
        "2": (P, "Work in Progress"),
        "3": (C, "Closed Complete"),
        "4": (C, "Closed Incomplete"),
        "7": (X, "Closed Skipped"),
    },
}

DEFAULT_PRIORITY: dict[str, tuple[int, str]] = {
    "1": (1, "1 - Critical"),
    "2": (2, "2 - High"),
    "3": (3, "3 - Moderate"),
    "4": (4, "4 - Low"),
    "5": (5, "5 - Planning"),
}


def fallback_status(active: str | None) -> Status:
    """The documented status for an unknown state code: closed if inactive, else in progress.

    ``active`` is maintained by the platform from the state, so it is the best evidence left.
    """
    return Status.CLOSED if (active or "").strip().lower() == "false" else Status.IN_PROGRESS


@dataclass(frozen=True)
class StateCode:
    status: Status
    label: str
    table: str


_MAX_ANSWERS = 4096


def _norm(label: str | None) -> str:
    return " ".join((label or "").lower().replace("-", " ").split())


@dataclass(frozen=True)
class CodeBook:
    """The code tables in force for one connector: the defaults plus the instance's overrides.

    Read-only once built: :meth:`state` remembers its answers.
    """

    states: Mapping[str, Mapping[str, tuple[Status, str]]] = field(
        default_factory=lambda: DEFAULT_STATE_TABLES
    )
    priority: Mapping[str, tuple[int, str]] = field(default_factory=lambda: DEFAULT_PRIORITY)
    # (tables, code, label) -> entry: a pull asks the same few questions for every record.
    _answers: dict[tuple[Sequence[str], str, str | None], StateCode | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        state_overrides: Mapping[str, Mapping[str, tuple[Status, str | None]]] | None = None,
        priority_overrides: Mapping[str, int] | None = None,
    ) -> CodeBook:
        states = {name: dict(table) for name, table in DEFAULT_STATE_TABLES.items()}
        for name, entries in (state_overrides or {}).items():
            table = states.setdefault(name, {})
            for code, (status, label) in entries.items():
                table[str(code)] = (status, label or table.get(str(code), (status, str(code)))[1])
        priority = dict(DEFAULT_PRIORITY)
        for code, value in (priority_overrides or {}).items():
            priority[str(code)] = (value, priority.get(str(code), (value, str(code)))[1])
        return cls(states=states, priority=priority)

    def state(self, tables: Sequence[str], code: str, label: str | None) -> StateCode | None:
        """The entry for ``code`` in the first of ``tables`` that has it, preferring a label match.

        Several tables can share a code with different meanings (change state model vs legacy);
        the instance's own label decides when it is known.
        """
        question = (tables, code, label)
        try:
            return self._answers[question]
        except KeyError:
            pass
        except TypeError:  # unhashable tables: answer without remembering
            return self._state(tables, code, label)
        answer = self._state(tables, code, label)
        if len(self._answers) < _MAX_ANSWERS:  # labels come from the instance: stay bounded
            self._answers[question] = answer
        return answer

    def _state(self, tables: Sequence[str], code: str, label: str | None) -> StateCode | None:
        candidates = [
            (name, self.states[name][code])
            for name in tables
            if name in self.states and code in self.states[name]
        ]
        if not candidates:
            return None
        wanted = _norm(label)
        if wanted:
            for name, (status, known) in candidates:
                if _norm(known) == wanted:
                    return StateCode(status, known, name)
        name, (status, known) = candidates[0]
        return StateCode(status, known, name)

    def priority_of(self, code: str) -> tuple[int, str] | None:
        return self.priority.get(code)
