"""itsm-bridge connector for Jira Cloud (REST v3) and Jira Data Center / Server (REST v2).

Registered as connector ``jira``::

    import itsm_bridge as ib
    conn = ib.connect("jira", "https://acme.atlassian.net",
                      auth=ib.BasicAuth("me@acme.com", api_token), projects=["OPS"])
    for item in conn.pull(kinds=["incident", "project"], since="2026-01-01T00:00:00Z"):
        ...

See ``docs/connectors/jira.md`` for the type mapping, fields and options.
"""

from __future__ import annotations

from itsm_bridge_jira.adf import adf_to_text, rich_text
from itsm_bridge_jira.auth import ATLASSIAN_TOKEN_URL, atlassian_oauth, cloud_api_url
from itsm_bridge_jira.connector import DEFAULT_EXTRA_FIELDS, JiraConnector, JiraOptions, Site
from itsm_bridge_jira.deployment import Deployment
from itsm_bridge_jira.fields import FieldCatalog
from itsm_bridge_jira.kinds import DEFAULT_TYPE_KINDS, KindRules
from itsm_bridge_jira.mapping import DEFAULT_INVESTMENT_MAP, MappingConfig, map_issue

__all__ = [
    "ATLASSIAN_TOKEN_URL",
    "DEFAULT_EXTRA_FIELDS",
    "DEFAULT_INVESTMENT_MAP",
    "DEFAULT_TYPE_KINDS",
    "Deployment",
    "FieldCatalog",
    "JiraConnector",
    "JiraOptions",
    "KindRules",
    "MappingConfig",
    "Site",
    "adf_to_text",
    "atlassian_oauth",
    "cloud_api_url",
    "map_issue",
    "rich_text",
]
