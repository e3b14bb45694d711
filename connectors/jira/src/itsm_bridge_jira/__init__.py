"""itsm-bridge connector for Jira (work in progress)."""
