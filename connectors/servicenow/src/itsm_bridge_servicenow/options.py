"""The connector's options: the core's plus tables, mapping extensions, code tables and auth.

Everything a user may change without code lives here and is validated when the connector is
built, so a typo fails at once instead of silently falling back to a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from itsm_bridge import ConnectorOptions, Status
from itsm_bridge_servicenow.tables import TableOption

__all__ = ["ServiceNowOptions", "parse_code_entry"]


def parse_code_entry(text: str) -> tuple[Status, str | None]:
    """``"closed"`` or ``"closed:Closed Complete"`` (status, then the label the instance shows)."""
    status, _, label = text.partition(":")
    try:
        return Status(status.strip()), label.strip() or None
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise ValueError(f"unknown status {status!r}; statuses are: {names}") from None


class ServiceNowOptions(ConnectorOptions):
    """Options of the ``servicenow`` connector (see ``docs/connectors/servicenow.md``)."""

    tables: tuple[TableOption, ...] = Field(
        default=(), description="Tables read in addition to (or instead of) the built-in ones."
    )
    extra_fields: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per table: fields copied into WorkItem.extra."
    )
    filters: dict[str, str] = Field(
        default_factory=dict, description="Per table: an encoded query ANDed to every request."
    )
    code_tables: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='Per code table: code -> "status" or "status:Label" (added or replaced).',
    )
    priority_codes: dict[str, int] = Field(default_factory=dict)
    state_tables: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Per table: the code tables its state is read with."
    )
    ranges_per_worker: int = Field(default=4, ge=1, le=64)
    min_page_size: int = Field(default=10, ge=1, description="Halving stops here.")
    adaptive_page_size: bool = Field(
        default=True,
        description="Grow pages (up to max_page_size, within page_memory_mb) while round trips "
        "dominate a page's time; False keeps page_size (it still halves on cancellation).",
    )
    max_page_size: int = Field(
        default=10_000, ge=1, le=10_000, description="Adaptive growth stops here."
    )
    page_memory_mb: float = Field(
        default=56.0,
        gt=0,
        description="Bound on the pages in flight (bytes, decoded rows, WorkItems) that "
        "adaptive growth may reach.",
    )
    validate_fields: Literal["on", "off"] = Field(
        default="on", description="Check every field name against sys_dictionary first."
    )
    completeness: Literal["off", "report", "strict"] = "report"
    max_remembered: int = Field(
        default=200_000,
        ge=0,
        description="Versions kept in the cursor to skip records already delivered.",
    )
    username: str | None = None
    password: SecretStr | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_grant: Literal["password", "client_credentials"] = "password"
    oauth_scope: str | None = None

    @field_validator("code_tables")
    @classmethod
    def _codes(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table in value.values():
            for entry in table.values():
                parse_code_entry(entry)
        return value

    @field_validator("priority_codes")
    @classmethod
    def _priorities(cls, value: dict[str, int]) -> dict[str, int]:
        for code, priority in value.items():
            if not 1 <= priority <= 5:
                raise ValueError(f"priority code {code!r}: {priority} is not within 1-5")
        return value
