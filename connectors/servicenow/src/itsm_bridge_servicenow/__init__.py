"""itsm-bridge connector for ServiceNow (work in progress)."""
