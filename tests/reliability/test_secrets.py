"""No secret leaks: every CLI command and failure path, at DEBUG, scanned for canary secrets.

Canaries: a password with URL-special characters, its Basic header value, a bearer token, an
OAuth client secret, the access and refresh tokens the OAuth server issued, a session cookie the
server set, and a token in a URL's query. They are looked for, as text and as JSON-escaped or
URL-encoded text, in:

- every log record (caplog at DEBUG on the root logger, so urllib3's lines count too) and the
  CLI's stderr and stdout (``--log-level DEBUG``, with and without ``--json``);
- exception texts, reprs and formatted tracebacks of library calls;
- run reports (``itsm-bridge runs --json``, the store's runs table);
- the SQLite files byte for byte (main file, WAL and shared memory), exports (JSONL, CSV),
  ``pull --out`` files, quarantine files and HTML/JSON/CSV reports.

Servers that try hard: 401, 403, 500 and 502 bodies that echo the Authorization header, the
cookie, the password and the query string back; an HTML page (status 200) doing the same; an
OAuth token endpoint that echoes the form it was sent (client secret, password).
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from itsm_bridge_servicenow.sandbox import make_sandbox as snow_sandbox
from reliability_kit import FIGURES

import itsm_bridge as ib
from itsm_bridge.cli import main
from itsm_bridge.errors import ItsmBridgeError
from itsm_bridge.sandbox import (
    FaultPlan,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    generate_company,
    json_response,
    make_sandbox,
)

USER = "svc.bridge"
PASSWORD = "Pw:canary/7f3a+9c&q=1 x"
TOKEN = "tok-canary-5b1e8d2a9f4c"
CLIENT_ID = "bridge-client"
CLIENT_SECRET = "cs-canary-e4d1c9b7a2"
COOKIE = "sess-canary-0a9b8c7d6e"
URL_TOKEN = "urltok-canary-31337aa"
ENV = {"RB_PASSWORD": PASSWORD, "RB_TOKEN": TOKEN, "RB_CLIENT": CLIENT_ID,
       "RB_SECRET": CLIENT_SECRET}  # fmt: skip


def forms(secret: str) -> set[str]:
    """The shapes a secret takes on its way out: as is, URL-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


class Canaries:
    """Every secret of a test, including the ones servers issue while it runs."""

    def __init__(self) -> None:
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.values = {PASSWORD, TOKEN, CLIENT_SECRET, COOKIE, URL_TOKEN, basic}
        self.scanned = 0

    def add(self, *values: str) -> None:
        self.values.update(v for v in values if v and len(v) >= 8)

    def check(self, what: str, haystack: str | bytes) -> None:
        data = haystack if isinstance(haystack, bytes) else haystack.encode("utf-8", "replace")
        found = sorted({s for s in self.values for f in forms(s) if f.encode() in data})
        self.scanned += 1
        FIGURES.add("leak_scans")
        assert not found, f"secret(s) {found} leaked into {what}"


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> Canaries:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return Canaries()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3's own lines are captured too
    return caplog


def scan_logs(
    canaries: Canaries, caplog: pytest.LogCaptureFixture, *, required: bool = True
) -> None:
    formatter = logging.Formatter()
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        canaries.check(f"log record {record.name}", text)
    assert caplog.records or not required, "nothing was logged: DEBUG logging is not on"


def scan_files(canaries: Canaries, folder: Path) -> int:
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            canaries.check(f"file {path.name}", path.read_bytes())
            count += 1
    return count


def cli(capsys: pytest.CaptureFixture[str], canaries: Canaries, *args: str) -> tuple[int, str]:
    code = main([*args, "--log-level", "DEBUG"])
    out, err = capsys.readouterr()
    canaries.check(f"stdout of {args[0]}", out)
    canaries.check(f"stderr of {args[0]}", err)
    assert "Traceback" not in err, err[-2000:]
    FIGURES.add("leak_checked_commands")
    return code, out + err


def scan_exception(canaries: Canaries, exc: BaseException) -> None:
    canaries.check("an exception's str", str(exc))
    canaries.check("an exception's repr", repr(exc))
    canaries.check("a traceback", "".join(traceback.format_exception(exc)))
    if isinstance(exc, ItsmBridgeError) and exc.context is not None:
        canaries.check("an error context", repr(exc.context))


# -- servers that try to leak ------------------------------------------------------------------


class Echo:
    """Answers every request per ``mode``, echoing what the client sent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0

    def __call__(self, request: SandboxRequest) -> SandboxResponse:
        self.requests += 1
        auth = request.header("Authorization") or ""
        cookie = request.header("Cookie") or ""
        sent = f"auth={auth!r} cookie={cookie!r} query={request.query!r} body={request.body!r}"
        decoded = ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
        headers = {"Set-Cookie": f"JSESSIONID={COOKIE}; Path=/; HttpOnly"}
        if request.path.endswith(("oauth_token.do", "/oauth/token")):
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
            return json_response(
                {"error": "invalid_client", "error_description": f"rejected {form!r} {sent}"},
                status=401,
                headers=headers,
            )
        if self.mode == "html":
            page = f"<html><body>Login required. You sent {sent} ({decoded})</body></html>"
            return SandboxResponse(
                status=200, body=page.encode(), headers=headers, content_type="text/html"
            )
        status = {"401": 401, "403": 403, "500": 500, "502": 502}[self.mode]
        if self.mode == "502" and self.requests > 2:
            status = 401  # two retried 502s (logged as retries), then a refusal: a quick end
        body = {
            "error": {"message": f"denied for {decoded}", "detail": sent},
            "echo": {"Authorization": auth, "Cookie": cookie, "password": decoded},
        }
        return json_response(body, status=status, headers=headers)


AUTHS: dict[str, list[str]] = {
    "basic": ["--user", USER, "--password-env", "RB_PASSWORD"],
    "bearer": ["--token-env", "RB_TOKEN"],
    "oauth": [
        "--user", USER, "--password-env", "RB_PASSWORD", "--oauth-client-id-env", "RB_CLIENT",
        "--oauth-client-secret-env", "RB_SECRET",
    ],
}  # fmt: skip
EXPECTED = {"401": 3, "403": 3, "500": 4, "502": 3, "html": 5}


@pytest.mark.parametrize("connector", ["servicenow", "jira"])
@pytest.mark.parametrize("mode", ["401", "403", "500", "502", "html"])
@pytest.mark.parametrize("auth", ["basic", "bearer", "oauth"])
def test_failing_servers_that_echo_secrets_leak_nothing(
    connector: str,
    mode: str,
    auth: str,
    canaries: Canaries,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    echo = Echo(mode)
    with SandboxServer(echo) as server:
        url = server.url
        token_url = ["--oauth-token-url", f"{server.url}/oauth_token.do"] if auth == "oauth" else []
        store = tmp_path / "out" / "itsm.db"
        code, _ = cli(
            capsys, canaries, "pull", connector, "--url", url, *AUTHS[auth], *token_url,
            "--store", str(store), "--no-progress", "--option", "connect_timeout=2",
        )  # fmt: skip
        expected = 3 if auth == "oauth" else EXPECTED[mode]  # the token endpoint refuses first
        assert code == expected
        assert echo.requests >= 1
        code, _ = cli(capsys, canaries, "runs", "--store", str(store), "--json")
        assert code == 0
    scan_logs(canaries, debug_logs)
    assert scan_files(canaries, tmp_path) >= 1


@pytest.mark.parametrize(
    "url",
    [
        "{base}/?api_key={token}",
        "{base}/?sysparm_token={token}#x",
        "http://{user}:{password}@127.0.0.1:9",
        "https://{user}:{password}@acme.service-now.com",
    ],
)
def test_a_url_carrying_a_secret_is_refused_without_echoing_it(
    url: str,
    canaries: Canaries,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Regression: a token in the base URL's query was copied into every item's ``url`` (and
    so into the store and every export); credentials in it would also be sent as Basic auth."""
    with SandboxServer(Echo("401")) as server:
        full = url.format(
            base=server.url, token=URL_TOKEN, user=USER, password=quote(PASSWORD, safe="")
        )
        for name in ("servicenow", "jira"):
            with pytest.raises(ib.ConfigurationError) as caught:
                ib.connect(name, full, auth=ib.BasicAuth(USER, PASSWORD))
            scan_exception(canaries, caught.value)
            code, _ = cli(
                capsys, canaries, "pull", name, "--url", full, *AUTHS["basic"],
                "--out", str(tmp_path / "x.jsonl"),
            )  # fmt: skip
            assert code == 2
        assert server.requests == 0
    assert not (tmp_path / "x.jsonl").exists()
    scan_logs(canaries, debug_logs, required=False)


@pytest.mark.parametrize("mode", ["401", "html"])
def test_library_errors_carry_no_secret(
    mode: str, canaries: Canaries, debug_logs: pytest.LogCaptureFixture
) -> None:
    with SandboxServer(Echo(mode)) as server:
        for auth in (
            ib.BasicAuth(USER, PASSWORD),
            ib.BearerAuth(TOKEN),
            ib.OAuth2(
                f"{server.url}/oauth_token.do",
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                grant="password",
                username=USER,
                password=PASSWORD,
            ),
        ):
            for name in ("servicenow", "jira"):
                conn = ib.connect(name, server.url, auth=auth)
                canaries.check("a connector's repr", repr(conn) + repr(auth) + repr(conn.transport))
                with conn, pytest.raises(ItsmBridgeError) as caught:
                    list(conn.pull())
                scan_exception(canaries, caught.value)
    scan_logs(canaries, debug_logs)


# -- the whole product, working, at DEBUG --------------------------------------------------------


@pytest.fixture
def snow() -> Iterator[Any]:
    items = generate_company(61, scale=0.1).for_platform("servicenow")
    plan = FaultPlan(seed=61, p_5xx=0.05, p_drop=0.03, p_truncate=0.03)
    with snow_sandbox(
        items,
        faults=plan,
        username=USER,
        password=PASSWORD,
        oauth_clients={CLIENT_ID: CLIENT_SECRET},
    ) as sandbox:
        yield sandbox


@pytest.fixture
def jira() -> Iterator[Any]:
    items = generate_company(62, scale=0.3).for_platform("jira")
    sandbox = make_sandbox("jira", items, faults=FaultPlan(seed=62, p_5xx=0.05))
    sandbox.credentials.api_token = PASSWORD  # type: ignore[attr-defined]
    sandbox.credentials.email = USER  # type: ignore[attr-defined]
    with sandbox:
        yield sandbox


def test_every_command_at_debug_leaks_nothing(
    snow: Any,
    jira: Any,
    canaries: Canaries,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    store = work / "itsm.db"
    oauth = [*AUTHS["oauth"], "--oauth-token-url", f"{snow.url}/oauth_token.do"]
    jira_opts = ["--option", "lag_seconds=1"]
    steps: list[tuple[list[str], tuple[int, ...]]] = [
        (["connectors", "--json"], (0,)),
        (["pull", "servicenow", "--url", snow.url, *oauth, "--store", str(store),
          "--source", "snow", "--census"], (0, 5)),
        (["pull", "jira", "--url", jira.url, *AUTHS["basic"], *jira_opts, "--store", str(store),
          "--source", "jira", "--json"], (0, 5)),
        (["pull", "servicenow", "--url", snow.url, *AUTHS["basic"], "--out",
          str(work / "snow.jsonl"), "--kind", "incident"], (0, 5)),
        (["pull", "servicenow", "--url", snow.url, "--user", USER, "--password-env",
          "RB_TOKEN", "--store", str(work / "wrong.db")], (3,)),
        (["score", "--store", str(store), "--json"], (0,)),
        (["report", "--store", str(store), "--format", "json", "--out",
          str(work / "report.json")], (0,)),
        (["report", "--store", str(store), "--format", "html", "--out",
          str(work / "report.html")], (0,)),
        (["report", "--store", str(store), "--by", "team", "--format", "csv"], (0,)),
        (["export", "--store", str(store), "--out", str(work / "items.jsonl")], (0,)),
        (["export", "--store", str(store), "--format", "csv", "--scored", "--out",
          str(work / "items.csv")], (0,)),
        (["runs", "--store", str(store), "--json"], (0,)),
        (["quarantine", "--store", str(store), "--json"], (0,)),
    ]  # fmt: skip
    for args, codes in steps:
        code, text = cli(capsys, canaries, *args, "--no-progress")
        assert code in codes, f"{args[:2]} exited {code}: {text[-1500:]}"
    canaries.add(*snow.app.tokens, *snow.app.refresh_tokens)  # what the OAuth server issued
    assert snow.app.tokens, "the OAuth path was not exercised"
    # the config-file path, with secrets named by variable
    config = work / "itsm.toml"
    config.write_text(
        f'store = "{store}"\n'
        f'[[source]]\nname = "snow2"\nconnector = "servicenow"\nurl = "{snow.url}"\n'
        f'user = "{USER}"\npassword_env = "RB_PASSWORD"\n'
        f'[[source]]\nname = "jira2"\nconnector = "jira"\nurl = "{jira.url}"\n'
        f'user = "{USER}"\npassword_env = "RB_PASSWORD"\n[source.options]\nlag_seconds = 1\n'
    )
    code, text = cli(capsys, canaries, "sync", "--config", str(config), "--json", "--no-progress")
    assert code in (0, 5), text[-1500:]
    with ib.Store(store) as db:
        for run in db.runs(limit=100):
            canaries.check("a run report", json.dumps(run.report) + str(run.error))
        assert db.count() > 0
    scan_logs(canaries, debug_logs)
    assert scan_files(canaries, tmp_path) >= 8
    print("leak scans:", canaries.scanned)
