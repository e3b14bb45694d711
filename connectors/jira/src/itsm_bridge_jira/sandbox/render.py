"""TruthItems rendered as Jira issues, the way Cloud (v3) and Data Center (v2) shape them.

Datetimes carry the account's offset without a colon (``+0530``); Cloud users are ``accountId``
objects and rich text is ADF, Data Center users have ``name``/``key`` and text is wiki markup;
Cloud issue types report ``hierarchyLevel``, Data Center ones do not and epics are linked through
the legacy Epic Link field. ``TruthItem.truth`` is never rendered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsm_bridge import Kind, Status
from itsm_bridge.sandbox import TruthItem

__all__ = [
    "FIELD_IDS",
    "ISSUE_TYPES",
    "Renderer",
    "issue_id",
    "jira_datetime",
    "project_key",
]

# Custom field ids of the fake site (real sites number theirs differently: resolve by name).
FIELD_IDS: Mapping[str, str] = {
    "Team": "customfield_10001",
    "Change type": "customfield_10005",
    "Change risk": "customfield_10006",
    "Planned start": "customfield_10007",
    "Planned end": "customfield_10008",
    "Request Type": "customfield_10010",
    "Epic Link": "customfield_10014",
    "Story Points": "customfield_10016",
    "Investment Category": "customfield_10100",
}
_CUSTOM_TYPES: Mapping[str, tuple[str, str]] = {
    "Team": ("team", "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team"),
    "Change type": ("option", "com.atlassian.jira.plugin.system.customfieldtypes:select"),
    "Change risk": ("option", "com.atlassian.jira.plugin.system.customfieldtypes:select"),
    "Planned start": ("datetime", "com.atlassian.jira.plugin.system.customfieldtypes:datetime"),
    "Planned end": ("datetime", "com.atlassian.jira.plugin.system.customfieldtypes:datetime"),
    "Request Type": ("sd-customerrequesttype", "com.atlassian.servicedesk:vp-origin"),
    "Epic Link": ("any", "com.pyxis.greenhopper.jira:gh-epic-link"),
    "Story Points": ("number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    "Investment Category": ("option", "com.atlassian.jira.plugin.system.customfieldtypes:select"),
}


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str
    level: int
    description: str


ISSUE_TYPES: Mapping[str, IssueType] = {
    t.name: t
    for t in (
        IssueType("10000", "Epic", 1, "A big user story that needs to be broken down."),
        IssueType("10001", "Story", 0, "Functionality or a feature expressed as a user goal."),
        IssueType("10002", "Task", 0, "A small, distinct piece of work."),
        IssueType("10003", "Sub-task", -1, "A small piece of work that's part of a larger task."),
        IssueType("10004", "Bug", 0, "A problem or error."),
        IssueType("10005", "Initiative", 2, "A collection of epics that drive toward a goal."),
        IssueType("10101", "Incident", 0, "For system outages or incidents."),
        IssueType("10102", "Service Request", 0, "Requests for help or information."),
        IssueType("10103", "Change", 0, "For system upgrades and changes."),
        IssueType("10104", "Problem", 0, "Track underlying causes of incidents."),
    )
}
_TYPE_OF_KIND = {
    Kind.INCIDENT: "Incident",
    Kind.REQUEST: "Service Request",
    Kind.CHANGE: "Change",
    Kind.PROBLEM: "Problem",
    Kind.PROJECT: "Epic",
    Kind.TASK: "Task",
}
_JSM = {Kind.INCIDENT, Kind.REQUEST, Kind.CHANGE, Kind.PROBLEM}

# status -> (name, id, category key, category id, category name)
_STATUS_SOFTWARE = {
    Status.NEW: ("To Do", "10000", "new", 2, "To Do"),
    Status.IN_PROGRESS: ("In Progress", "3", "indeterminate", 4, "In Progress"),
    Status.ON_HOLD: ("Blocked", "10002", "indeterminate", 4, "In Progress"),
    Status.RESOLVED: ("Resolved", "5", "done", 3, "Done"),
    Status.CLOSED: ("Done", "10001", "done", 3, "Done"),
    Status.CANCELLED: ("Done", "10001", "done", 3, "Done"),
}
_STATUS_SERVICE = {
    Status.NEW: ("Waiting for support", "10010", "new", 2, "To Do"),
    Status.IN_PROGRESS: ("In Progress", "3", "indeterminate", 4, "In Progress"),
    Status.ON_HOLD: ("Pending", "10012", "indeterminate", 4, "In Progress"),
    Status.RESOLVED: ("Resolved", "5", "done", 3, "Done"),
    Status.CLOSED: ("Closed", "6", "done", 3, "Done"),
    Status.CANCELLED: ("Canceled", "10013", "done", 3, "Done"),
}
# Fields an id census asks for, rendered without building the whole issue.
_CHEAP: Mapping[str, str] = {
    "updated": "updated",
    "created": "created",
    "resolutiondate": "resolved",
}
# The other fields a real site returns for ``fields=*all`` / ``*navigable``: a site's custom fields
# (most of them empty on most issues) and the system fields nobody here reads. Without them a
# fake issue is half the size of a real one (~3 KB against 6-9 KB), and a client that asks for
# every field would look cheaper than it is against a real site. id -> (name, type, value).
_SITE_FIELDS: Mapping[str, tuple[str, str, Any]] = {
    "customfield_10000": ("Development", "any", "{}"),
    "customfield_10002": ("Organizations", "array", None),
    "customfield_10003": ("Approvers", "array", None),
    "customfield_10004": ("Impact", "option", None),
    "customfield_10009": ("Urgency", "option", None),
    "customfield_10011": ("Satisfaction", "sd-feedback", None),
    "customfield_10012": ("Request participants", "array", None),
    "customfield_10013": ("Satisfaction date", "datetime", None),
    "customfield_10015": ("Start date", "date", None),
    "customfield_10017": ("Issue color", "string", None),
    "customfield_10019": ("Rank", "any", None),  # per issue, see Renderer.site_fields
    "customfield_10020": ("Sprint", "array", None),
    "customfield_10021": ("Flagged", "array", None),
    "customfield_10022": ("Target start", "date", None),
    "customfield_10023": ("Target end", "date", None),
    "customfield_10024": ("Pending reason", "option", None),
    "customfield_10025": ("Approvals", "sd-approvals", None),
    "customfield_10026": ("Time to resolution", "sd-servicelevelagreement", None),
    "customfield_10027": ("Time to first response", "sd-servicelevelagreement", None),
    "customfield_10028": ("Root cause", "string", None),
    "customfield_10029": ("Workaround", "string", None),
    "customfield_10030": ("Affected services", "array", None),
    "customfield_10031": ("Vulnerability", "any", None),
    "customfield_10032": ("Design", "array", None),
    "customfield_10033": ("Locked forms", "number", None),
    "customfield_10034": ("Open forms", "number", None),
    "customfield_10035": ("Submitted forms", "number", None),
    "customfield_10036": ("Total forms", "number", None),
    "customfield_10037": ("Product categorization", "option", None),
    "customfield_10038": ("Source", "option", None),
}
_EMPTY_SYSTEM: Mapping[str, Any] = {
    "lastViewed": None,
    "environment": None,
    "duedate": None,
    "security": None,
    "versions": [],
    "fixVersions": [],
    "aggregatetimeoriginalestimate": None,
    "aggregatetimeestimate": None,
}
_AVATAR_SIZES = ("48x48", "24x24", "16x16", "32x32")
RENDER_CACHE = 25_000  # rendered issues kept, ~12 KB each (see Renderer.every_field)
_PRIORITY_CLOUD = ("Highest", "High", "Medium", "Low", "Lowest")
_PRIORITY_DC = ("Blocker", "Critical", "Major", "Minor", "Trivial")
_PROJECT_NAMES = {
    "SHOP": "Online Shop",
    "MOB": "Mobile",
    "DATA": "Data Platform",
    "OPS": "Platform Operations",
    "ITSM": "IT Service Desk",
}


def issue_id(uid: str) -> int:
    """A stable numeric issue id derived from the TruthItem's uid (60 bits, never 0).

    Sixteen digits at most, below 2**53 (what a JSON number holds exactly everywhere). Twelve,
    as before, made two of a million issues share an id (seed 7: about one pair expected)."""
    return int(uid[:15], 16) % 9_000_000_000_000_000 + 10_000


def project_key(number: str) -> str:
    """``OPS-12`` -> ``OPS``; ServiceNow-style numbers (``INC0001``) use their letters."""
    if "-" in number:
        return number.rsplit("-", 1)[0].upper()
    letters = re.match(r"[A-Za-z]+", number)
    return letters.group(0).upper() if letters else "ITSM"


def issue_number(number: str) -> int:
    digits = re.findall(r"\d+", number)
    return int(digits[-1]) if digits else 0


def jira_datetime(value: datetime, tz: ZoneInfo) -> str:
    """``2026-01-05T10:00:00.000+0530``: milliseconds and the zone's offset without a colon."""
    local = value.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + (
        local.strftime("%z")
    )  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", ".", name.lower()).strip(".") or "user"


def _hash(text: str, n: int = 24) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:n]


def type_of(item: TruthItem) -> IssueType:
    name = item.issue_type or _TYPE_OF_KIND[item.kind]
    return ISSUE_TYPES.get(name) or ISSUE_TYPES[_TYPE_OF_KIND[item.kind]]


def investment_value(item: TruthItem) -> str | None:
    raw = item.investment.get("category_raw") if item.investment else None
    if raw:
        return str(raw)
    category = item.investment.get("portfolio_category") if item.investment else None
    return {"run": "Keep the lights on", "grow": "Grow", "transform": "Transform"}.get(
        str(category or "").lower()
    )


class Renderer:
    """Renders issues for one fake site (deployment, base URL, account time zone)."""

    def __init__(self, *, cloud: bool, base_url: str, tz: ZoneInfo) -> None:
        self.cloud = cloud
        self.base_url = base_url.rstrip("/")
        self.tz = tz
        self.api = "/rest/api/3" if cloud else "/rest/api/2"
        # id(issue) -> (issue, parent, base URL, every field rendered): see `every_field`.
        self._rendered: dict[int, tuple[TruthItem, TruthItem | None, str, dict[str, Any]]] = {}

    def when(self, value: datetime | None) -> str | None:
        return jira_datetime(value, self.tz) if value is not None else None

    def user(self, name: str | None) -> dict[str, Any] | None:
        if not name:
            return None
        if self.cloud:
            account = "712020:" + _hash(name, 32)
            return {
                "self": f"{self.base_url}{self.api}/user?accountId={account}",
                "accountId": account,
                "displayName": name,
                "active": True,
                "timeZone": str(self.tz),
                "accountType": "atlassian",
                "avatarUrls": _avatars(f"{self.base_url}/avatar/{account}.png?s="),
            }
        slug = _slug(name)
        return {
            "self": f"{self.base_url}{self.api}/user?username={slug}",
            "name": slug,
            "key": "JIRAUSER" + str(int(_hash(name, 6), 16) % 100000),
            "emailAddress": f"{slug}@northwind.example",
            "displayName": name,
            "active": True,
            "timeZone": str(self.tz),
            "avatarUrls": _avatars(f"{self.base_url}/secure/useravatar?ownerId={slug}&size="),
        }

    def issuetype(self, item: TruthItem) -> dict[str, Any]:
        t = type_of(item)
        body: dict[str, Any] = {
            "self": f"{self.base_url}{self.api}/issuetype/{t.id}",
            "id": t.id,
            "description": t.description,
            "iconUrl": f"{self.base_url}/images/icons/issuetypes/{t.id}.svg",
            "name": t.name,
            "subtask": t.level < 0,
        }
        if self.cloud:
            body["avatarId"] = 10300 + int(t.id) % 100
            body["hierarchyLevel"] = t.level
        return body

    def issuetype_details(self, t: IssueType) -> dict[str, Any]:
        body: dict[str, Any] = {
            "self": f"{self.base_url}{self.api}/issuetype/{t.id}",
            "id": t.id,
            "description": t.description,
            "iconUrl": f"{self.base_url}/images/icons/issuetypes/{t.id}.svg",
            "name": t.name,
            "subtask": t.level < 0,
        }
        if self.cloud:
            body["avatarId"] = 10300 + int(t.id) % 100
            body["hierarchyLevel"] = t.level
        return body

    def status(self, item: TruthItem) -> dict[str, Any]:
        table = _STATUS_SERVICE if item.kind in _JSM else _STATUS_SOFTWARE
        name, sid, cat_key, cat_id, cat_name = table[item.status]
        return {
            "self": f"{self.base_url}{self.api}/status/{sid}",
            "description": "",
            "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
            "name": name,
            "id": sid,
            "statusCategory": {
                "self": f"{self.base_url}{self.api}/statuscategory/{cat_id}",
                "id": cat_id,
                "key": cat_key,
                "colorName": {"new": "blue-gray", "indeterminate": "yellow"}.get(cat_key, "green"),
                "name": cat_name,
            },
        }

    def status_name(self, item: TruthItem) -> str:
        table = _STATUS_SERVICE if item.kind in _JSM else _STATUS_SOFTWARE
        return table[item.status][0]

    def status_category(self, item: TruthItem) -> str:
        table = _STATUS_SERVICE if item.kind in _JSM else _STATUS_SOFTWARE
        return table[item.status][2]

    def resolution(self, item: TruthItem) -> dict[str, Any] | None:
        if item.status not in (Status.RESOLVED, Status.CLOSED, Status.CANCELLED):
            return None
        if item.status is Status.CANCELLED:
            rid, name = "10001", "Won't Do"
        elif item.close_code and "not" in item.close_code.lower():
            rid, name = "10003", "Cannot Reproduce"
        else:
            rid, name = "10000", "Done"
        return {
            "self": f"{self.base_url}{self.api}/resolution/{rid}",
            "id": rid,
            "description": "Work has been resolved.",
            "name": name,
        }

    def priority_name(self, item: TruthItem) -> str:
        names = _PRIORITY_CLOUD if self.cloud else _PRIORITY_DC
        return names[max(1, min(5, item.priority)) - 1]

    def priority(self, item: TruthItem) -> dict[str, Any]:
        pid = str(max(1, min(5, item.priority)))
        return {
            "self": f"{self.base_url}{self.api}/priority/{pid}",
            "iconUrl": f"{self.base_url}/images/icons/priorities/{pid}.svg",
            "name": self.priority_name(item),
            "id": pid,
        }

    def project(self, key: str, *, service_desk: bool = False) -> dict[str, Any]:
        pid = str(10000 + int(_hash(key, 4), 16) % 9000)
        body: dict[str, Any] = {
            "self": f"{self.base_url}{self.api}/project/{pid}",
            "id": pid,
            "key": key,
            "name": _PROJECT_NAMES.get(key, key.title()),
            "projectTypeKey": "service_desk" if service_desk else "software",
            "avatarUrls": _avatars(f"{self.base_url}/secure/projectavatar?pid={pid}&size="),
        }
        if self.cloud:
            body["simplified"] = False
        return body

    def description(self, item: TruthItem) -> Any:
        lines = [line for line in item.description.split("\n") if line.strip()]
        if not lines:
            return None
        if not self.cloud:
            return "\r\n".join(lines)  # wiki markup text, as Data Center stores it
        content: list[dict[str, Any]] = [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines
        ]
        if item.labels:
            content.append(
                {
                    "type": "bulletList",
                    "content": [
                        {
                            "type": "listItem",
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": lab}]}
                            ],
                        }
                        for lab in item.labels
                    ],
                }
            )
        return {"type": "doc", "version": 1, "content": content}

    def team(self, name: str) -> dict[str, Any]:
        if self.cloud:
            return {
                "id": "36885b3c-1bf0-4f85-a357-" + _hash(name, 12),
                "name": name,
                "title": name,
                "isVisible": True,
                "isVerified": False,
                "isShared": True,
            }
        return self.option(name)

    def option(self, value: str) -> dict[str, Any]:
        oid = str(10200 + int(_hash(value, 4), 16) % 700)
        return {"self": f"{self.base_url}{self.api}/customFieldOption/{oid}", "value": value,
                "id": oid}  # fmt: skip

    def fields(self) -> list[dict[str, Any]]:
        """``GET /field``: the system fields the connector reads, then the custom fields."""
        system = [
            ("summary", "Summary", "string"),
            ("description", "Description", "string"),
            ("issuetype", "Issue Type", "issuetype"),
            ("status", "Status", "status"),
            ("resolution", "Resolution", "resolution"),
            ("priority", "Priority", "priority"),
            ("assignee", "Assignee", "user"),
            ("reporter", "Reporter", "user"),
            ("created", "Created", "datetime"),
            ("updated", "Updated", "datetime"),
            ("resolutiondate", "Resolved", "datetime"),
            ("timespent", "Time Spent", "number"),
            ("timeoriginalestimate", "Original Estimate", "number"),
            ("aggregatetimespent", "Σ Time Spent", "number"),
            ("parent", "Parent", "issuelink"),
            ("components", "Components", "array"),
            ("labels", "Labels", "array"),
            ("project", "Project", "project"),
        ]
        out: list[dict[str, Any]] = []
        for fid, name, kind in system:
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": False,
                    "orderable": fid not in ("created", "updated", "resolutiondate"),
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [fid],
                    "schema": {"type": kind, "system": fid},
                }
            )
        custom_fields = [(fid, name, *_CUSTOM_TYPES[name]) for name, fid in FIELD_IDS.items()]
        custom_fields += [
            (fid, name, kind, f"com.atlassian.jira.plugin.system.customfieldtypes:{kind}")
            for fid, (name, kind, _) in _SITE_FIELDS.items()
        ]
        for fid, name, kind, custom in custom_fields:
            if name == "Epic Link" and self.cloud:
                continue  # Cloud replaced Epic Link with the parent field
            number = int(fid.rsplit("_", 1)[1])
            out.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", name],
                    "schema": {"type": kind, "custom": custom, "customId": number},
                }
            )
        return out

    def issue(
        self,
        item: TruthItem,
        parent: TruthItem | None,
        fields: set[str] | None,
    ) -> dict[str, Any]:
        """One issue; ``fields`` None means all, an empty set means id and key only."""
        iid = str(issue_id(item.uid))
        body: dict[str, Any] = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": iid,
            "self": f"{self.base_url}{self.api}/issue/{iid}",
            "key": item.number,
        }
        if fields is not None and not fields:
            return body
        if fields is not None and fields <= _CHEAP.keys():
            body["fields"] = {f: self.when(getattr(item, _CHEAP[f])) for f in fields}
            return body
        values = self.every_field(item, parent)
        if fields is not None:
            values = {k: v for k, v in values.items() if k in fields}
        body["fields"] = values
        return body

    def every_field(self, item: TruthItem, parent: TruthItem | None) -> dict[str, Any]:
        """:meth:`all_fields`, rendered once per version of the issue and of its parent.

        A real site renders on its own hardware, and the time it takes per page is what a
        benchmark's latency stands for; a Python fake re-rendering every issue for every
        request would add its own cost on top, more for whichever client asks more often.
        Versions are immutable (a change is a new TruthItem), so an entry is valid while its
        issue and parent are the very objects rendered. The answer is shared: never modify it.
        """
        entry = self._rendered.get(id(item))
        if (
            entry is not None
            and entry[0] is item
            and entry[1] is parent
            and entry[2] == self.base_url
        ):
            return entry[3]
        values = self.all_fields(item, parent)
        if len(self._rendered) >= RENDER_CACHE:
            self._rendered.clear()
        self._rendered[id(item)] = (item, parent, self.base_url, values)
        return values

    def components(self, item: TruthItem) -> list[dict[str, Any]]:
        if not item.service:
            return []
        cid = str(int(_hash(item.service, 5), 16))
        url = f"{self.base_url}{self.api}/component/{cid}"
        return [{"self": url, "id": cid, "name": item.service}]

    def all_fields(self, item: TruthItem, parent: TruthItem | None) -> dict[str, Any]:
        key = project_key(item.number)
        spent = round(item.effort_hours * 3600) if item.effort_hours else None
        estimate = round(item.estimate_hours * 3600) if item.estimate_hours else None
        values: dict[str, Any] = {
            "summary": item.title,
            "description": self.description(item),
            "issuetype": self.issuetype(item),
            "status": self.status(item),
            "statuscategorychangedate": self.when(item.resolved or item.updated),
            "resolution": self.resolution(item),
            "priority": self.priority(item),
            "assignee": self.user(item.assignee),
            "reporter": self.user(item.requester),
            "creator": self.user(item.requester),
            "created": self.when(item.created),
            "updated": self.when(item.updated),
            "resolutiondate": self.when(item.resolved),
            "timespent": spent,
            "timeoriginalestimate": estimate,
            "aggregatetimespent": spent,
            "timeestimate": max(0, (estimate or 0) - (spent or 0)) if estimate else None,
            "components": self.components(item),
            "labels": list(item.labels),
            "project": self.project(key, service_desk=item.kind in _JSM),
            "subtasks": [],
            "issuelinks": [],
        }
        if parent is not None:
            parent_type = type_of(parent)
            if self.cloud or parent_type.level < 1 or type_of(item).level < 0:
                values["parent"] = {
                    "id": str(issue_id(parent.uid)),
                    "key": parent.number,
                    "self": f"{self.base_url}{self.api}/issue/{issue_id(parent.uid)}",
                    "fields": {
                        "summary": parent.title,
                        "status": self.status(parent),
                        "priority": self.priority(parent),
                        "issuetype": self.issuetype(parent),
                    },
                }
            else:
                # Data Center: stories point at their epic through the legacy Epic Link field.
                values[FIELD_IDS["Epic Link"]] = parent.number
        if not self.cloud and FIELD_IDS["Epic Link"] not in values:
            values[FIELD_IDS["Epic Link"]] = None
        values[FIELD_IDS["Team"]] = self.team(item.team) if item.team else None
        points = None
        if type_of(item).name == "Story":
            base = item.estimate_hours or item.effort_hours or 3.0
            points = float(min(13, max(1, round(base / 4))))
        values[FIELD_IDS["Story Points"]] = points
        investment = investment_value(item)
        values[FIELD_IDS["Investment Category"]] = self.option(investment) if investment else None
        values[FIELD_IDS["Change type"]] = (
            self.option(item.change_type.title()) if item.change_type else None
        )
        values[FIELD_IDS["Change risk"]] = self.option(item.risk.title()) if item.risk else None
        values[FIELD_IDS["Planned start"]] = self.when(item.planned_start)
        values[FIELD_IDS["Planned end"]] = self.when(item.planned_end)
        self.site_fields(item, values, spent, estimate)
        return values

    def site_fields(
        self, item: TruthItem, values: dict[str, Any], spent: int | None, estimate: int | None
    ) -> None:
        """The fields of a real site's issue that the connector does not read (see
        ``_SITE_FIELDS``), so that an all-fields page weighs what a real one does."""
        issue = f"{self.base_url}{self.api}/issue/{item.number}"
        done = spent or 0
        total = max(done, estimate or 0)
        progress: dict[str, Any] = {"progress": done, "total": total}
        if total:
            progress["percent"] = round(100 * done / total)
        values.update(_EMPTY_SYSTEM)
        values["watches"] = {"self": f"{issue}/watchers", "watchCount": 1, "isWatching": False}
        values["votes"] = {"self": f"{issue}/votes", "votes": 0, "hasVoted": False}
        values["progress"] = progress
        values["aggregateprogress"] = dict(progress)
        values["workratio"] = round(100 * done / estimate) if estimate else -1
        for fid, (_, _, value) in _SITE_FIELDS.items():
            values.setdefault(fid, value)
        values["customfield_10019"] = f"0|i{issue_number(item.number):05x}:"
        if self.cloud:
            values["issuerestriction"] = {"issuerestrictions": {}, "shouldDisplay": False}

    def histories(self, item: TruthItem, extra: int = 0) -> list[dict[str, Any]]:
        """A plausible status history, oldest first (plus ``extra`` label edits)."""
        table = _STATUS_SERVICE if item.kind in _JSM else _STATUS_SOFTWARE
        steps: list[tuple[datetime, Status, Status]] = []
        span = max(item.updated - item.created, timedelta(seconds=2))
        if item.status is not Status.NEW:
            started = item.created + span * 0.2
            if item.status is Status.IN_PROGRESS:
                steps.append((started, Status.NEW, Status.IN_PROGRESS))
            else:
                steps.append((started, Status.NEW, Status.IN_PROGRESS))
                steps.append((item.resolved or item.updated, Status.IN_PROGRESS, item.status))
        base = issue_id(item.uid) * 10
        out: list[dict[str, Any]] = []
        author = self.user(item.assignee or item.requester)
        for n, (when, old, new) in enumerate(steps):
            old_row, new_row = table[old], table[new]
            entry: dict[str, Any] = {
                "id": str(base + n),
                "created": self.when(when),
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": old_row[1],
                        "fromString": old_row[0],
                        "to": new_row[1],
                        "toString": new_row[0],
                    }
                ],
            }
            if author is not None:
                entry["author"] = author
            out.append(entry)
        for n in range(extra):
            when = item.created + span * (0.1 + 0.8 * n / max(1, extra))
            out.append(
                {
                    "id": str(base + 100 + n),
                    "created": self.when(when),
                    "items": [
                        {
                            "field": "labels",
                            "fieldtype": "jira",
                            "fieldId": "labels",
                            "from": None,
                            "fromString": "",
                            "to": None,
                            "toString": f"triage-{n}",
                        }
                    ],
                }
            )
        out.sort(key=lambda h: (h["created"] and self.epoch(h["created"]), h["id"]))
        return out

    def epoch(self, text: str) -> float:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()

    def worklogs(self, item: TruthItem) -> list[dict[str, Any]]:
        """The issue's worklogs (their seconds add up to ``timespent``)."""
        if not item.effort_hours:
            return []
        total = round(item.effort_hours * 3600)
        parts = 1 + int(_hash(item.uid, 2), 16) % 3
        sizes = [total // parts] * parts
        sizes[-1] += total - sum(sizes)
        end = item.resolved or item.updated
        span = max(end - item.created, timedelta(seconds=parts + 1))
        out = []
        iid = issue_id(item.uid)
        for n, seconds in enumerate(sizes):
            started = item.created + span * ((n + 0.5) / (parts + 1))
            wid = iid * 4 + n
            author = self.user(item.assignee or item.requester) or self.user("Jira Bot")
            comment: Any = f"Work on {item.number}"
            if self.cloud:
                comment = {
                    "type": "doc",
                    "version": 1,
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": comment}]}
                    ],
                }
            out.append(
                {
                    "self": f"{self.base_url}{self.api}/issue/{iid}/worklog/{wid}",
                    "author": author,
                    "updateAuthor": author,
                    "comment": comment,
                    "created": self.when(started),
                    "updated": self.when(min(started + timedelta(minutes=5), item.updated)),
                    "started": self.when(started),
                    "timeSpent": _duration(seconds),
                    "timeSpentSeconds": seconds,
                    "id": str(wid),
                    "issueId": str(iid),
                }
            )
        return out


def _avatars(prefix: str) -> dict[str, str]:
    """An ``avatarUrls`` map: the four sizes a real site lists."""
    return {size: prefix + size.split("x", 1)[0] for size in _AVATAR_SIZES}


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    parts = [f"{hours}h"] if hours else []
    if minutes or not parts:
        parts.append(f"{minutes}m")
    return " ".join(parts)
