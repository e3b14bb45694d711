"""``itsm-bridge sync --config itsm.toml``: many sources, one store, secrets from the environment.

A config file names each source, its connector, URL and options, and the *names* of the
environment variables that hold its secrets, never the secrets themselves (a config file gets
committed, copied and pasted into tickets)::

    store = "itsm.db"            # relative paths are relative to this file

    [[source]]
    name = "snow-prod"
    connector = "servicenow"
    url = "https://acme.service-now.com"
    user = "svc-itsm-bridge"
    password_env = "SNOW_PASSWORD"
    kinds = ["incident", "change", "project"]
    [source.options]
    page_size = 1000

    [[source]]
    name = "jira"
    connector = "jira"
    url = "https://acme.atlassian.net"
    user_env = "JIRA_EMAIL"
    password_env = "JIRA_API_TOKEN"

Sources run concurrently, one thread each; sources on the same host share that host's rate
governor (see :mod:`itsm_bridge.http.governor`), so running them side by side stays within the
host's budget. A secret whose variable is unset is looked up in the system keyring (service
``itsm-bridge``, user name = the variable's name) when the optional ``keyring`` package is
installed.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from itsm_bridge.connector import Connector, connect, parse_kinds, parse_since
from itsm_bridge.errors import ConfigurationError, InvalidOptionsError, ItsmBridgeError
from itsm_bridge.http import BasicAuth, BearerAuth, OAuth2
from itsm_bridge.sync.engine import ProgressCallback, run_sync
from itsm_bridge.sync.result import SyncResult
from itsm_bridge.sync.store import Store

__all__ = [
    "KEYRING_SERVICE",
    "AuthSettings",
    "SourceConfig",
    "SyncConfig",
    "build_connector",
    "load_config",
    "make_auth",
    "read_secret",
    "sync_sources",
]

KEYRING_SERVICE = "itsm-bridge"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_NAME = 100  # a source name prefixes every stored id
_SECRET_KEYS = {
    "password",
    "token",
    "api_token",
    "client_secret",
    "oauth_client_secret",
    "secret",
    "refresh_token",
}


def read_secret(variable: str, what: str) -> str:
    """The secret in environment variable ``variable`` (or the keyring); never a flag's value."""
    value = os.environ.get(variable)
    if value:
        return value
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        keyring = None
    if keyring is not None:
        try:
            stored = keyring.get_password(KEYRING_SERVICE, variable)
        except Exception:  # any keyring backend failure means "not found here"
            stored = None
        if stored:
            return str(stored)
    state = "is empty" if value == "" else "is not set"
    raise ConfigurationError(
        f"the {what} is read from the environment variable {variable}, which {state}"
        + ("" if keyring is None else f" (nor in the keyring under {KEYRING_SERVICE}/{variable})")
    )


class AuthSettings(BaseModel):
    """How to authenticate: literal user names, and the variables that hold secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = None
    user_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    oauth_token_url: str | None = None
    oauth_client_id_env: str | None = None
    oauth_client_secret_env: str | None = None
    oauth_refresh_token_env: str | None = None
    oauth_grant: Literal["client_credentials", "password", "refresh_token"] | None = None
    oauth_scope: str | None = None

    @field_validator(
        "user_env",
        "password_env",
        "token_env",
        "oauth_client_id_env",
        "oauth_client_secret_env",
        "oauth_refresh_token_env",
    )
    @classmethod
    def _a_variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _VARIABLE.fullmatch(value):
            # Never echoed: what was pasted here may be the secret itself.
            raise ValueError("must be the NAME of an environment variable (letters, digits, _)")
        return value


def make_auth(settings: AuthSettings, *, source: str) -> requests.auth.AuthBase | None:
    """Build the auth object for a source; secrets are read from the environment here."""
    s = settings
    user = s.user
    if s.user_env:
        user = read_secret(s.user_env, f"user of {source}")
    if s.oauth_token_url or s.oauth_client_id_env:
        if not (s.oauth_token_url and s.oauth_client_id_env):
            raise ConfigurationError(
                f"source {source}: OAuth needs both oauth_token_url and oauth_client_id_env"
            )
        if s.token_env:
            raise ConfigurationError(f"source {source}: give token_env or OAuth, not both")
        if user and not s.password_env:
            raise ConfigurationError(
                f"source {source}: a user without password_env: the OAuth password grant needs "
                "both, and client credentials need neither"
            )
        grant = s.oauth_grant or (
            "password"
            if s.password_env
            else "refresh_token"
            if s.oauth_refresh_token_env
            else "client_credentials"
        )
        return OAuth2(
            s.oauth_token_url,
            client_id=read_secret(s.oauth_client_id_env, f"OAuth client id of {source}"),
            client_secret=(
                read_secret(s.oauth_client_secret_env, f"OAuth client secret of {source}")
                if s.oauth_client_secret_env
                else None
            ),
            grant=grant,
            username=user,
            password=read_secret(s.password_env, f"password of {source}")
            if s.password_env
            else None,
            refresh_token=read_secret(s.oauth_refresh_token_env, f"refresh token of {source}")
            if s.oauth_refresh_token_env
            else None,
            scope=s.oauth_scope,
        )
    if s.token_env:
        if s.password_env:
            raise ConfigurationError(f"source {source}: give password_env or token_env, not both")
        return BearerAuth(read_secret(s.token_env, f"token of {source}"))
    if s.password_env:
        if not user:
            raise ConfigurationError(f"source {source}: password_env needs user (or user_env)")
        return BasicAuth(user, read_secret(s.password_env, f"password of {source}"))
    if user:
        raise ConfigurationError(f"source {source}: user given without password_env")
    return None


class SourceConfig(AuthSettings):
    """One ``[[source]]`` table."""

    name: str = Field(min_length=1, max_length=_MAX_NAME, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    connector: str
    url: str
    kinds: list[str] | None = None
    since: str | None = None
    census: bool | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            options = data.get("options")
            literal = sorted(_SECRET_KEYS & set(data)) + sorted(
                _SECRET_KEYS & set(options if isinstance(options, dict) else {})
            )
            if literal:
                raise ValueError(
                    f"secrets never go in the config file ({', '.join(literal)}): name the "
                    'environment variable instead, e.g. password_env = "SNOW_PASSWORD"'
                )
        return data

    def auth_settings(self) -> AuthSettings:
        return AuthSettings(**{k: getattr(self, k) for k in AuthSettings.model_fields})


class SyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    store: str = "itsm.db"
    census: bool = False
    sources: list[SourceConfig] = Field(alias="source", min_length=1)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> SyncConfig:
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def store_path(self) -> Path:
        path = Path(self.store).expanduser()
        return path if path.is_absolute() else self.base_dir / path


def load_config(path: str | os.PathLike[str]) -> SyncConfig:
    """Read and validate a TOML config; errors name the file and the offending key."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))  # a BOM is no error
    except FileNotFoundError:
        raise ConfigurationError(f"config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InvalidOptionsError(
            f"{file} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); TOML files are UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidOptionsError(f"{file} is not valid TOML: {exc}") from None
    except RecursionError:
        raise InvalidOptionsError(f"{file}: values nested too deeply for a config file") from None
    try:
        return SyncConfig.model_validate({**data, "base_dir": file.resolve().parent})
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(err['loc'], data)}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise InvalidOptionsError(f"{file}: {problems}") from None


def _where(loc: Sequence[Any], data: dict[str, Any]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "source" and parts[1].isdigit():
        index = int(parts[1])
        sources = data.get("source")
        entry = sources[index] if isinstance(sources, list) and index < len(sources) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if not (isinstance(name, str) and 0 < len(name) <= _MAX_NAME):
            name = None  # a name that is itself the problem is not repeated
        parts = [f"source {name or index}", *parts[2:]]
    return ".".join(parts) or "<file>"


def build_connector(source: SourceConfig) -> Connector:
    if "source" in source.options:
        raise InvalidOptionsError(f"source {source.name}: the source name is `name`, not an option")
    with _naming(source.name):
        auth = make_auth(source.auth_settings(), source=source.name)
        return connect(
            source.connector, source.url, auth=auth, source=source.name, **source.options
        )


@contextmanager
def _naming(name: str) -> Iterator[None]:
    """Prefix a configuration error with the source it belongs to (a file lists many)."""
    try:
        yield
    except ConfigurationError as exc:
        if f"source {name}" in exc.message or f"of {name} " in exc.message:
            raise  # already named (make_auth, read_secret)
        raise type(exc)(f"source {name}: {exc.message}", context=exc.context) from None


def sync_sources(
    config: SyncConfig,
    *,
    store: Store | str | os.PathLike[str] | None = None,
    only: Sequence[str] | None = None,
    census: bool | None = None,
    progress: ProgressCallback | None = None,
    connector_factory: Callable[[SourceConfig], Connector] = build_connector,
    full: bool = False,
) -> list[SyncResult]:
    """Sync every source of ``config`` (or those named in ``only``) concurrently.

    Every connector is built first, so a missing secret or a typo stops the run before any
    source is touched, and before a store given by path (default: the config's) is opened or
    created. Each source then gets its own run report; one failing source does not stop the
    others. ``full`` re-reads every source from the start (see :func:`~itsm_bridge.sync.sync`).
    """
    chosen = list(config.sources)
    if only:
        unknown = sorted(set(only) - {s.name for s in chosen})
        if unknown:
            names = ", ".join(s.name for s in chosen)
            raise ConfigurationError(f"no source named {', '.join(unknown)} (sources: {names})")
        chosen = [s for s in chosen if s.name in only]
    connectors = [connector_factory(s) for s in chosen]
    for src, conn in zip(chosen, connectors):
        with _naming(src.name):
            parse_kinds(src.kinds, conn.kinds)
            parse_since(src.since)
    owned = not isinstance(store, Store)
    db = store if isinstance(store, Store) else Store(store or config.store_path)
    # Set when this thread is interrupted (Ctrl-C, or the CLI's SIGTERM): the sources' runs end
    # after the page they are storing, instead of the pool waiting for every one to finish.
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=len(connectors), thread_name_prefix="sync") as pool:
            futures = [
                pool.submit(
                    run_sync,
                    conn,
                    db,
                    src.kinds,
                    census=_census_for(src, config, census),
                    progress=progress,
                    since=src.since,
                    full=full,
                    stop=stop,
                )
                for src, conn in zip(chosen, connectors)
            ]
            try:
                return [_result(f, src, conn) for f, src, conn in zip(futures, chosen, connectors)]
            except BaseException:
                stop.set()
                raise
    finally:
        for conn in connectors:
            conn.close()
        if owned:
            db.close()


def _result(future: Future[SyncResult], source: SourceConfig, conn: Connector) -> SyncResult:
    """The run report, or a failed one when the run could not even start (store locked)."""
    try:
        return future.result()
    except ItsmBridgeError as exc:
        result = SyncResult(source.name, conn.name, 0, datetime.now(UTC))
        result.fail(exc)
        result.exception = exc
        result.finished_at = result.started_at
        return result


def _census_for(source: SourceConfig, config: SyncConfig, override: bool | None) -> bool:
    if override is not None:
        return override
    return config.census if source.census is None else source.census
