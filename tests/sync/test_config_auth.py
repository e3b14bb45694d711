"""Sync config files: secrets only by variable name (never echoed), and auth settings that would
be silently overridden are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsm_bridge.errors import ConfigurationError, InvalidOptionsError
from itsm_bridge.sync.config import AuthSettings, load_config, make_auth


def _config(tmp_path: Path, auth: str) -> Path:
    path = tmp_path / "itsm.toml"
    path.write_text(
        '\ufeffstore = "itsm.db"\n[[source]]\nname = "snow"\nconnector = "servicenow"\n'
        f'url = "https://acme.service-now.com"\n{auth}\n',
        encoding="utf-8",
    )
    return path


def test_a_secret_pasted_where_a_variable_name_goes_is_refused_unechoed(tmp_path: Path) -> None:
    path = _config(tmp_path, 'user = "etl"\npassword_env = "hunter2 secret!"')
    with pytest.raises(InvalidOptionsError, match="NAME of an environment variable") as caught:
        load_config(path)
    assert "hunter2" not in str(caught.value)
    # a byte order mark (Notepad writes one) is no error
    assert load_config(_config(tmp_path, 'user = "etl"\npassword_env = "SNOW_PW"')).sources


def test_auth_settings_that_would_be_silently_overridden_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CID", "client")
    monkeypatch.setenv("TOK", "token")
    monkeypatch.setenv("EMPTY", "")
    oauth = {"oauth_token_url": "https://sso.example.com/token", "oauth_client_id_env": "CID"}
    with pytest.raises(ConfigurationError, match="token_env or OAuth, not both"):
        make_auth(AuthSettings(**oauth, token_env="TOK"), source="snow")
    with pytest.raises(ConfigurationError, match="a user without password_env"):
        make_auth(AuthSettings(**oauth, user="bob"), source="snow")
    with pytest.raises(ConfigurationError, match="EMPTY, which is empty"):
        make_auth(AuthSettings(token_env="EMPTY"), source="snow")
