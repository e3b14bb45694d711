"""itsm-bridge connector for ServiceNow: incidents, problems, changes, requests and projects.

Registered as connector ``servicenow`` (entry-point group ``itsm_bridge.connectors``) and sandbox
``servicenow`` (group ``itsm_bridge.sandboxes``). Reference: ``docs/connectors/servicenow.md``.
"""

from __future__ import annotations

from itsm_bridge_servicenow.codes import DEFAULT_PRIORITY, DEFAULT_STATE_TABLES, CodeBook
from itsm_bridge_servicenow.connector import ServiceNowConnector
from itsm_bridge_servicenow.mapping import MappingContext, map_row
from itsm_bridge_servicenow.options import ServiceNowOptions
from itsm_bridge_servicenow.tables import BUILTIN, TableOption, TableSpec

__all__ = [
    "BUILTIN",
    "DEFAULT_PRIORITY",
    "DEFAULT_STATE_TABLES",
    "CodeBook",
    "MappingContext",
    "ServiceNowConnector",
    "ServiceNowOptions",
    "TableOption",
    "TableSpec",
    "map_row",
]
