"""Transport security: TLS is verified by default; plain http:// only to loopback unless allowed.

Servers here are real HTTPS servers on loopback (``SandboxServer(tls=...)``) with certificates
from ``trustme``: a CA the system does not trust. So:

- default settings refuse the certificate with :class:`SourceConnectionError` saying that TLS
  verification failed and how to supply a CA bundle; the request never reaches the app and is
  not retried (a certificate does not fix itself);
- a certificate for another host name, or an expired one, is refused the same way, even with the
  right CA bundle;
- ``verify=PATH`` (the CA bundle) works end to end: a whole ServiceNow and Jira pull over HTTPS,
  through the library and through the CLI (``--option verify=PATH``);
- ``http://`` to a host that is not loopback is refused with :class:`InsecureTransportError`
  (CLI exit 2) before any connection, unless ``allow_insecure_http`` is given.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from reliability_kit import FIGURES

import itsm_bridge as ib
from itsm_bridge.cli import main
from itsm_bridge.errors import InsecureTransportError, SourceConnectionError
from itsm_bridge.http import RetryPolicy, Transport
from itsm_bridge.sandbox import (
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    generate_company,
    json_response,
    make_sandbox,
)

FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.01, jitter=0.0)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def good_tls(ca: trustme.CA) -> ssl.SSLContext:
    return server_context(ca.issue_cert("127.0.0.1", "localhost"))


def app(request: SandboxRequest) -> SandboxResponse:
    return json_response({"result": [{"sys_id": "a1"}]})


@pytest.fixture
def https(good_tls: ssl.SSLContext) -> Iterator[SandboxServer]:
    with SandboxServer(app, tls=good_tls) as server:
        yield server


def test_an_untrusted_certificate_is_refused_clearly_and_not_retried(https: SandboxServer) -> None:
    assert https.url.startswith("https://127.0.0.1:")
    t = Transport(https.url, connector="tls", retry=FAST)
    with t, pytest.raises(SourceConnectionError) as caught:
        t.get("/api/now/table/incident")
    message = str(caught.value)
    assert "TLS verification failed: unable to get local issuer certificate" in message
    assert "verify=PATH" in message  # says how to fix it
    assert "/api/now/table/incident" in message
    assert https.requests == 0, "the request must never reach the server's app"
    assert t.stats.retries == 0
    FIGURES.add("tls_refusals")


def test_the_ca_bundle_makes_it_work(https: SandboxServer, ca_bundle: Path) -> None:
    with Transport(https.url, connector="tls", retry=FAST, verify=str(ca_bundle)) as t:
        assert t.get("/api/now/table/incident").data == {"result": [{"sys_id": "a1"}]}
    assert https.requests == 1


def test_the_ca_bundle_wins_over_requests_ca_bundle_in_the_environment(
    https: SandboxServer, ca_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: requests lets REQUESTS_CA_BUNDLE (set on many corporate machines) override
    ``session.verify``, so ``verify=PATH`` was silently ignored and every pull failed."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    monkeypatch.setenv("CURL_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    with Transport(https.url, connector="tls", retry=FAST, verify=str(ca_bundle)) as t:
        assert t.get("/x").status == 200


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("wrong-host", "mismatch, certificate is not valid for '127.0.0.1'"),
        ("expired", "certificate has expired"),
        ("another-ca", "unable to get local issuer certificate"),
    ],
)
def test_a_bad_certificate_is_refused_even_with_the_ca_bundle(
    ca: trustme.CA, ca_bundle: Path, problem: str, reason: str
) -> None:
    if problem == "wrong-host":
        context = server_context(ca.issue_cert("instance.example.test"))
    elif problem == "expired":
        now = datetime.now(UTC)
        context = server_context(
            ca.issue_cert(
                "127.0.0.1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
            )
        )
    else:
        context = server_context(trustme.CA().issue_cert("127.0.0.1"))  # another CA entirely
    with SandboxServer(app, tls=context) as server:
        t = Transport(server.url, connector="tls", retry=FAST, verify=str(ca_bundle))
        with t, pytest.raises(SourceConnectionError, match="TLS verification failed") as caught:
            t.get("/x")
        assert reason in str(caught.value)
        assert server.requests == 0
    FIGURES.add("tls_refusals")


def https_sandbox(platform: str, context: ssl.SSLContext) -> object:
    """A platform sandbox whose server speaks HTTPS (its server is replaced before start)."""
    items = generate_company(51, scale=0.1).for_platform(platform)
    sandbox = make_sandbox(platform, items)
    sandbox.server = SandboxServer(sandbox.app, tls=context)  # type: ignore[attr-defined]
    return sandbox


@pytest.mark.parametrize("platform", ["servicenow", "jira"])
def test_a_whole_pull_over_https_with_the_ca_bundle(
    platform: str, good_tls: ssl.SSLContext, ca_bundle: Path
) -> None:
    sandbox = https_sandbox(platform, good_tls)
    with sandbox as sb:  # type: ignore[attr-defined]
        assert sb.url.startswith("https://")
        options = {k: v for k, v in sb.connect_options().items() if k != "allow_insecure_http"}
        with ib.connect(platform, sb.url, auth=sb.auth(), verify=str(ca_bundle), **options) as c:
            items = list(c.pull())
        assert len(items) == len(sb.visible_items()) > 0
        unverified = ib.connect(platform, sb.url, auth=sb.auth(), **options)
        with unverified, pytest.raises(SourceConnectionError, match="TLS verification failed"):
            list(unverified.pull())


def test_cli_refuses_an_untrusted_certificate_and_accepts_the_bundle(
    good_tls: ssl.SSLContext,
    ca_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = https_sandbox("servicenow", good_tls)
    with sandbox as sb:  # type: ignore[attr-defined]
        auth = sb.auth()
        monkeypatch.setenv("RELIABILITY_SECRET", auth._password)
        args = [
            "pull", "servicenow", "--url", sb.url, "--user", auth.username,
            "--password-env", "RELIABILITY_SECRET", "--out", str(tmp_path / "out.jsonl"),
            "--no-progress",
        ]  # fmt: skip
        assert main(args) == 4
        err = capsys.readouterr().err
        assert "TLS verification failed" in err
        assert "Traceback" not in err
        assert not (tmp_path / "out.jsonl").exists()
        assert main([*args, "--option", f"verify={ca_bundle}"]) == 0, capsys.readouterr().err
        lines = (tmp_path / "out.jsonl").read_text().splitlines()
        assert len(lines) == len(sb.visible_items())


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.service-now.com",
        "http://10.0.0.7:8080/jira",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
    ],
)
def test_plain_http_to_a_remote_host_is_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InsecureTransportError, match="refusing plain http://"):
        Transport(url)
    for name in ("servicenow", "jira"):
        with pytest.raises(InsecureTransportError):
            ib.connect(name, url, auth=ib.BasicAuth("u", "p4ssword"))
        # an explicit opt-in is honoured (nothing is sent here)
        ib.connect(name, url, auth=ib.BasicAuth("u", "p4ssword"), allow_insecure_http=True).close()
    FIGURES.add("tls_refusals")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    Transport(url).close()


def test_cli_exits_2_for_plain_http_to_a_remote_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("RELIABILITY_SECRET", "not-sent-anywhere")
    code = main(
        [
            "pull", "servicenow", "--url", "http://acme.service-now.com", "--user", "svc",
            "--password-env", "RELIABILITY_SECRET", "--out", str(tmp_path / "x.jsonl"),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing plain http://" in err
    assert "not-sent-anywhere" not in err
