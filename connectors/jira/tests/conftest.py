"""Shared fixtures for the Jira connector tests: real payloads, the OpenAPI validator, sandboxes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from itsm_bridge.http.governor import reset_governors

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
REAL = SHARED_DATA / "jira-real-responses"
OPENAPI = SHARED_DATA / "jira-cloud-openapi" / "swagger-v3.v3.json"


@pytest.fixture(autouse=True)
def _fresh_governors() -> Iterator[None]:
    """Each test gets its own per-host governors (loopback hosts repeat across tests)."""
    reset_governors()
    yield
    reset_governors()


def load_real(name: str) -> Any:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real payload {path} not available (shared/ beside the repo)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def real() -> Any:
    return load_real


class OpenApi:
    """Validates requests and responses against Atlassian's OpenAPI document (refs resolved)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from jsonschema import Draft7Validator

        self.spec = spec
        self._validator = Draft7Validator
        self._ops: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, item in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
            for method, op in item.items():
                if method in ("get", "post", "put", "delete", "patch"):
                    self._ops.append((pattern, method.upper(), op))
        self._ops.sort(key=lambda row: row[0].pattern.count("[^/]+"))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for pattern, op_method, op in self._ops:
            if op_method == method and pattern.match(path):
                return op
        raise AssertionError(f"{method} {path} is not an operation of the Jira Cloud API")

    def _schema(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        return {**schema, "components": self.spec["components"]}

    def check(self, schema: Mapping[str, Any], value: Any, where: str) -> None:
        validator = self._validator(self._schema(schema))
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            raise AssertionError(
                f"{where}: {first.message} at {'/'.join(str(p) for p in first.path)}"
            )

    def check_request(self, method: str, path: str, query: Mapping[str, Any], body: Any) -> None:
        op = self.operation(method, path)
        declared = {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}
        for name, value in query.items():
            assert name in declared, f"{method} {path}: undeclared query parameter {name!r}"
            schema = declared[name].get("schema", {})
            values = value if isinstance(value, list) else [value]
            for one in values:
                if schema.get("type") == "integer":
                    int(one)
                elif schema.get("type") == "boolean":
                    assert one in ("true", "false"), f"{name}={one!r} is not a boolean"
        content = op.get("requestBody", {}).get("content", {})
        if body is not None:
            assert content, f"{method} {path} takes no body"
            self.check(content["application/json"]["schema"], body, f"{method} {path} body")
        elif op.get("requestBody", {}).get("required"):
            raise AssertionError(f"{method} {path} requires a body")

    def check_response(self, method: str, path: str, status: int, body: Any) -> bool:
        """Validate a response; False when the document declares no schema for that status."""
        op = self.operation(method, path)
        declared = op.get("responses", {}).get(str(status))
        if declared is None and status >= 400:
            # Undocumented errors (410 Gone on the removed search) use Atlassian's envelope.
            declared = {"content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/ErrorCollection"}}}}  # fmt: skip
        assert declared is not None, f"{method} {path}: status {status} is not documented"
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        if schema is None and status >= 400:
            schema = {"$ref": "#/components/schemas/ErrorCollection"}
        if schema is None:
            return False
        self.check(schema, body, f"{method} {path} -> {status}")
        return True


@pytest.fixture(scope="session")
def openapi() -> OpenApi:
    if not OPENAPI.exists():
        pytest.skip("the Jira Cloud OpenAPI document is not available (shared/ beside the repo)")
    return OpenApi(json.loads(OPENAPI.read_text(encoding="utf-8")))
