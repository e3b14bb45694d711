"""The ``itsm-bridge`` command line: a thin layer over the public API.

Exit codes (``ItsmBridgeError.exit_code`` decides; see docs/cli.md)::

    0  ok
    1  unexpected error (a bug: please report it with --log-level DEBUG output)
    2  usage or configuration error (bad flag, config file, missing secret variable, 404)
    3  authentication or permission failure (401, 403)
    4  source unreachable or failing after retries (refused, DNS, timeouts, 429/5xx spent)
    5  bad data (HTML instead of JSON, malformed JSON, records quarantined, counts disagree)
    6  store error (disk full, locked, unwritable)
  130  interrupted (Ctrl-C)

Secrets are never flag values: flags name the environment variable that holds them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from itsm_bridge import __version__
from itsm_bridge.connector import Reject, available_connectors, connect
from itsm_bridge.errors import ConfigurationError, DataError, ItsmBridgeError, StoreError
from itsm_bridge.schema import Kind, ScoredItem, WorkItem, schema_json

if TYPE_CHECKING:
    from itsm_bridge.sync.result import SyncResult

__all__ = ["EXIT_CODES", "build_parser", "main"]

log = logging.getLogger("itsm_bridge.cli")

EXIT_CODES = {
    0: "ok",
    1: "unexpected error",
    2: "usage or configuration error",
    3: "authentication or permission failure",
    4: "source unreachable or failing after retries",
    5: "bad data (including records quarantined by a sync)",
    6: "store error",
    130: "interrupted (Ctrl-C)",
    143: "terminated (SIGTERM: a scheduler's timeout, docker stop)",
}
LOG_ENV = "ITSM_BRIDGE_LOG_LEVEL"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KINDS = [k.value for k in Kind]
_DIMENSIONS = ["month", "quarter", "team", "service", "kind", "category", "source"]
_FULL_HELP = (
    "forget the stored cursors first and read everything again (stored records are upserted, "
    "not duplicated): picks up records a census found visible but not stored"
)

_EXIT_TABLE = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


# -- output helpers ---------------------------------------------------------------------------


class _Out:
    """Where a command's result goes: human text on stdout, or one JSON document with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def text(self, line: str = "") -> None:
        if not self.as_json:
            print(line)

    def note(self, line: str) -> None:
        """Human commentary: stderr, so stdout stays clean for pipes."""
        print(line, file=sys.stderr)

    def json(self, payload: Any) -> None:
        if self.as_json:
            print(json.dumps(payload, indent=2, default=str))


def _progress_for(args: argparse.Namespace, totals: dict[str, int] | None = None) -> Any:
    from itsm_bridge._progress import ProgressBar

    enabled = None if not getattr(args, "no_progress", False) else False
    return ProgressBar(enabled=enabled, totals=totals)


# -- secrets and connectors -------------------------------------------------------------------


def _env_name(value: str) -> str:
    """argparse type for ``--*-env`` flags: the NAME of a variable, refusing anything else.

    A secret pasted here by mistake must not be echoed back in the error message.
    """
    if not _ENV_NAME.match(value):
        raise argparse.ArgumentTypeError(
            "expects the NAME of an environment variable (letters, digits, _), "
            "not a secret; export the secret in that variable"
        )
    return value


def _at_least_two(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 2:
        raise argparse.ArgumentTypeError(f"K-fold needs K >= 2, not {number}")
    return number


def _option(value: str) -> tuple[str, Any]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("options are KEY=VALUE")
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw
    return key.strip().replace("-", "_"), parsed


def _connector_from_args(args: argparse.Namespace) -> Any:
    from itsm_bridge.sync.config import AuthSettings, make_auth

    settings = AuthSettings(
        user=args.user,
        password_env=args.password_env,
        token_env=args.token_env,
        oauth_token_url=args.oauth_token_url,
        oauth_client_id_env=args.oauth_client_id_env,
        oauth_client_secret_env=args.oauth_client_secret_env,
    )
    options = dict(args.option or [])
    if args.source:
        options["source"] = args.source
    auth = make_auth(settings, source=args.source or args.connector)
    return connect(args.connector, args.url, auth=auth, **options)


# -- commands ---------------------------------------------------------------------------------


def cmd_connectors(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.sandbox import available_sandboxes

    names = available_connectors()
    sandboxes = set(available_sandboxes())
    out.json({"connectors": [{"name": n, "sandbox": n in sandboxes} for n in names]})
    for name in names:
        out.text(name + ("  (sandbox available)" if name in sandboxes else ""))
    if not names:
        out.note('no connectors installed; try: pip install "itsm-bridge[servicenow,jira]"')
    return 0


def cmd_schema(args: argparse.Namespace, out: _Out) -> int:
    print(schema_json(scored=args.scored))
    return 0


def cmd_pull(args: argparse.Namespace, out: _Out) -> int:
    if bool(args.out) == bool(args.store):
        raise ConfigurationError("pull needs exactly one of --out FILE.jsonl or --store DB")
    if args.full and not args.store:
        raise ConfigurationError("--full re-reads into a store: it goes with --store DB")
    with _connector_from_args(args) as conn:
        if args.store:
            return _pull_into_store(args, out, conn)
        return _pull_to_file(args, out, conn)


def _pull_into_store(args: argparse.Namespace, out: _Out, conn: Any) -> int:
    from itsm_bridge.sync import Store, sync

    with Store(args.store) as store, _progress_for(args) as bar:
        result = sync(
            conn,
            store,
            args.kind or None,
            census=args.census,
            progress=bar,
            since=args.since,
            full=args.full,
        )
    out.note(result.summary())
    if result.quarantined:
        out.note(
            f"{result.quarantined} records quarantined; see: itsm-bridge quarantine "
            f"--store {args.store}"
        )
    out.json(result.as_dict())
    return result.exit_code


def _one_stdout(args: argparse.Namespace, out: _Out) -> None:
    """``--out -`` and ``--json`` both claim stdout: refuse the pair before any work."""
    if out.as_json and getattr(args, "out", None) == "-":
        raise ConfigurationError(
            "--out - writes the output to stdout, where --json puts its report: use one of them"
        )


def _pull_to_file(args: argparse.Namespace, out: _Out, conn: Any) -> int:
    from itsm_bridge.sync.exports import write_items

    _one_stdout(args, out)
    rejects: list[Reject] = []
    items = conn.pull(kinds=args.kind or None, since=args.since, on_reject=rejects.append)
    count = write_items(items, args.out, args.format)
    quarantine = None
    if rejects:
        quarantine = f"{args.out}.quarantine.jsonl"
        _write_rejects(rejects, quarantine, conn.source)
    elif args.out != "-" and os.path.exists(f"{args.out}.quarantine.jsonl"):
        # the previous pull's rejects would be mistaken for this one's
        os.unlink(f"{args.out}.quarantine.jsonl")
    report = {"records": count, "quarantined": len(rejects), "out": args.out, **conn.report()}
    if quarantine:
        report["quarantine_file"] = quarantine
    skipped = sorted(report.get("unavailable_kinds") or ())
    out.note(
        f"{count} records written to {args.out}"
        + (f"; {len(rejects)} quarantined in {quarantine}" if rejects else "")
        + (f"; not on this instance: {', '.join(skipped)}" if skipped else "")
    )
    out.json(report)
    return 5 if rejects else 0


def _write_rejects(rejects: Sequence[Reject], path: str, source: str) -> None:
    from itsm_bridge import _json
    from itsm_bridge.sync.exports import atomic_output

    with atomic_output(path) as handle:
        for r in rejects:
            line = {
                "source": source,
                "kind": r.kind.value,
                "native_id": r.native_id,
                "reason": r.reason,
                "raw": dict(r.raw),
            }
            handle.write(_json.dumps(line) + "\n")


def cmd_sync(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.sync.config import load_config, sync_sources

    config = load_config(args.config)
    store_path = args.store or config.store_path
    with _progress_for(args) as bar:  # the store opens once every source is known to be valid
        results = sync_sources(
            config,
            store=store_path,
            only=args.source or None,
            census=args.census,
            progress=bar,
            full=args.full,
        )
    for result in results:
        out.note(result.summary())
    code = _combined_exit(results)
    out.json({"store": str(store_path), "exit_code": code, "runs": [r.as_dict() for r in results]})
    return code


def _combined_exit(results: Sequence[SyncResult]) -> int:
    """The code of the first source (in config order) whose run failed, whatever the code (an
    HTML page is a failure with code 5); else 5 when any run quarantined records; else 0."""
    for result in results:
        if result.status != "ok":
            return result.exit_code
    return 5 if any(r.exit_code == 5 for r in results) else 0


def _scorer_from_args(args: argparse.Namespace) -> Any:
    from itsm_bridge.sync.verdicts import scorer_for

    model = None
    if getattr(args, "model", None):
        from itsm_bridge.scoring import load_model

        model = load_model(args.model)
    return scorer_for(args.rules, model)


def _input_items(path: str) -> Iterable[WorkItem]:
    """Items from a lenient JSONL file; lines that carry ``scoring`` keep their verdict."""
    from itsm_bridge.schema import Verdict
    from itsm_bridge.scoring import read_records, record_to_item
    from itsm_bridge.scoring.records import location

    for position, record in enumerate(read_records(path), start=1):
        item = record_to_item(record, position=position)
        verdict = record.get("scoring")
        if isinstance(verdict, dict):
            try:
                yield ScoredItem(**item.__dict__, scoring=Verdict.model_validate(verdict))
            except ValueError as exc:
                where = location(record, position)
                raise DataError(f"{where}: invalid scoring object: {exc}") from None
        else:
            yield item


def _scored_stream(args: argparse.Namespace) -> Iterable[ScoredItem]:
    """Scored items from --store (verdicts brought up to date first) or from INPUT.jsonl.

    Input lines that already carry a verdict keep it unless --rules or --model ask to re-score.
    """
    scorer = _scorer_from_args(args)
    if args.store:
        from itsm_bridge.sync import Store
        from itsm_bridge.sync.verdicts import update_verdicts

        with Store(args.store, create=False) as store:
            try:
                update_verdicts(store, scorer)
            except StoreError as exc:
                if "readonly" not in str(exc):
                    raise
                # A report only reads: score in memory what a read-only store has no verdicts
                # for (a copy handed to an analyst, a snapshot on a read-only mount).
                log.warning("the store is read-only: verdicts are worked out, not saved")
                yield from scorer.score(store.items())
                return
            yield from store.scored_items(scorer.version)
        return
    items = list(_input_items(args.input))
    if args.rules or args.model:  # asked to re-score: every line gets a new verdict
        yield from scorer.score(items)
    elif all(isinstance(i, ScoredItem) for i in items):
        yield from (i for i in items if isinstance(i, ScoredItem))
    else:
        # Plain lines are scored over the whole batch (their parents may be any line); lines
        # that carry a verdict keep it.
        for given, fresh in zip(items, scorer.score(items), strict=True):
            yield given if isinstance(given, ScoredItem) else fresh


def cmd_score(args: argparse.Namespace, out: _Out) -> int:
    scorer = _scorer_from_args(args)
    if args.store:
        if args.input:
            raise ConfigurationError("score takes INPUT.jsonl or --store DB, not both")
        from itsm_bridge.sync import Store
        from itsm_bridge.sync.verdicts import update_verdicts

        with Store(args.store, create=False) as store:
            scored = update_verdicts(store, scorer, force=args.force)
            written = store.export(args.out, ruleset=scorer.version) if args.out else None
        out.note(
            f"{scored} items scored with rule set {scorer.version}"
            + (f"; {written} written to {args.out}" if args.out else "")
        )
        out.json({"scored": scored, "ruleset": scorer.version, "written": written})
        return 0
    if not args.input or not args.out:
        raise ConfigurationError("score needs INPUT.jsonl and --out OUTPUT.jsonl (or --store DB)")
    from itsm_bridge import _json
    from itsm_bridge.scoring import read_records, score_records
    from itsm_bridge.sync.exports import atomic_output

    _one_stdout(args, out)
    count = 0
    with atomic_output(args.out) as handle:
        for line in score_records(read_records(args.input), scorer):
            handle.write(_json.dumps(line) + "\n")
            count += 1
    out.note(f"{count} items scored with rule set {scorer.version} into {args.out}")
    out.json({"scored": count, "ruleset": scorer.version, "out": args.out})
    return 0


def cmd_report(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.report import build_report, render

    if bool(args.input) == bool(args.store):
        raise ConfigurationError("report needs exactly one of INPUT.jsonl or --store DB")
    _one_stdout(args, out)
    if args.json and args.format not in ("table", "json") and not args.out:
        raise ConfigurationError(
            f"--json prints the report as JSON on stdout; a {args.format} report needs --out FILE"
        )
    fmt = "json" if args.json and args.format == "table" else args.format
    report = build_report(_scored_stream(args), by=args.by or ["month"])
    text = render(report, fmt)
    if args.out:
        from itsm_bridge.sync.exports import atomic_output

        with atomic_output(args.out) as handle:
            handle.write(text)
        out.note(f"{fmt} report written to {args.out}")
        out.json({"out": args.out, "format": fmt})
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_evaluate(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.scoring import evaluate, read_records

    result = evaluate(read_records(args.input), scorer=_scorer_from_args(args), folds=args.folds)
    out.json(result.as_dict())
    out.text(result.format())
    return 0


def cmd_train(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.scoring import read_records, train
    from itsm_bridge.scoring.model import teaches
    from itsm_bridge.sync.exports import atomic_output

    records = list(read_records(args.input))
    model = train(records)
    with atomic_output(args.output) as handle:
        handle.write(model.to_json())
    used = sum(1 for r in records if teaches(r.get("label")))
    out.note(
        f"model trained on {used} labelled lines ({len(records) - used} undetermined or "
        f"unlabelled left out) written to {args.output}"
    )
    out.json(
        {
            "trained_on": used,
            "left_out": len(records) - used,
            "model": args.output,
            "fingerprint": model.fingerprint,
        }
    )
    return 0


def cmd_export(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.sync import Store
    from itsm_bridge.sync.verdicts import update_verdicts

    _one_stdout(args, out)
    with Store(args.store, create=False) as store:
        ruleset = None
        if args.scored:
            scorer = _scorer_from_args(args)
            update_verdicts(store, scorer)
            ruleset = scorer.version
        count = store.export(
            args.out, args.format, ruleset=ruleset, sources=args.source or None, kinds=args.kind
        )
    out.note(f"{count} items written to {args.out}")
    out.json({"written": count, "out": args.out, "format": args.format, "ruleset": ruleset})
    return 0


def cmd_runs(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.sync import Store

    with Store(args.store, create=False) as store:
        runs = store.runs(source=args.source, limit=args.limit)
    out.json([r.__dict__ for r in runs])
    for r in runs:
        report = r.report or {}
        out.text(
            f"{r.id:>5}  {r.started_at[:19]}  {r.source:<16} {r.status:<11} "
            f"{report.get('records', 0):>8} records  {report.get('quarantined', 0):>5} "
            f"quarantined  {report.get('duration_seconds', 0):>7.1f}s"
            + (f"  {r.error}" if r.error else "")
        )
    return 0


def cmd_quarantine(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.sync import Store

    with Store(args.store, create=False) as store:
        records = list(store.quarantined(args.source))
    out.json([r.__dict__ for r in records])
    for r in records:
        out.text(f"{r.source}  {r.kind:<9} {r.native_id or '?':<34} {r.reason}")
    if not records:
        out.note("the quarantine is empty")
    return 0


def cmd_demo(args: argparse.Namespace, out: _Out) -> int:
    from itsm_bridge.demo import run_demo

    return run_demo(
        seed=args.seed,
        scale=args.scale,
        out_dir=args.out_dir,
        keep_store=args.keep_store,
        as_json=args.json,
        progress=not args.no_progress,
    )


# -- the parser -------------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, except that unrecognised arguments are never echoed: one may be a secret."""

    def error(self, message: str) -> Any:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            shown = []
            for token in message[len(prefix) :].split():
                if token.startswith("-"):
                    flag, eq, _ = token.partition("=")
                    shown.append(flag + ("=***" if eq else ""))
                else:
                    shown.append("***")
            message = prefix + " ".join(shown)
            if any(t.split("=")[0] in {"--password", "--token", "--secret"} for t in shown):
                message += (
                    "; secrets are never flag values: use --password-env VAR / --token-env VAR"
                )
        super().error(message)


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("output and logging")
    group.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        default=default,
        help=f"log level on stderr (default: ${LOG_ENV} or WARNING)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="machine-readable JSON on stdout",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="no progress bar (it only draws on a terminal anyway)",
    )


def _auth_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("authentication (secrets only from environment variables)")
    group.add_argument("--user", help="user name (Basic auth; Jira Cloud: the e-mail)")
    group.add_argument(
        "--password-env", metavar="VAR", type=_env_name, help="variable holding the password"
    )
    group.add_argument(
        "--token-env", metavar="VAR", type=_env_name, help="variable holding a bearer token"
    )
    group.add_argument("--oauth-token-url", metavar="URL", help="OAuth 2.0 token endpoint")
    group.add_argument(
        "--oauth-client-id-env", metavar="VAR", type=_env_name, help="variable: OAuth client id"
    )
    group.add_argument(
        "--oauth-client-secret-env",
        metavar="VAR",
        type=_env_name,
        help="variable: OAuth client secret",
    )


def _scoring_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="RULES.toml", help="rules extending the defaults")
    parser.add_argument("--model", metavar="MODEL.json", help="a model from `itsm-bridge train`")


def _command(
    sub: Any,
    name: str,
    handler: Callable[[argparse.Namespace, _Out], int],
    summary: str,
    examples: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples.strip("\n") + "\n\nexit codes:\n" + _EXIT_TABLE,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.set_defaults(handler=handler)
    _common(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="itsm-bridge",
        description="Pull ITSM and delivery work into one schema and measure the share of IT "
        "effort that faces the business.",
        epilog="""examples:
  itsm-bridge demo
  itsm-bridge connectors
  export SNOW_PASSWORD=...
  itsm-bridge pull servicenow --url https://acme.service-now.com --user svc \\
      --password-env SNOW_PASSWORD --store itsm.db
  itsm-bridge report --store itsm.db --by team --format table
  itsm-bridge sync --config itsm.toml

every command has --help with examples.

exit codes:
"""
        + _EXIT_TABLE,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"itsm-bridge {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _command(
        sub,
        "connectors",
        cmd_connectors,
        "list installed connectors",
        "  itsm-bridge connectors\n  itsm-bridge connectors --json",
    )

    p = _command(
        sub,
        "schema",
        cmd_schema,
        "print the JSON Schema of a JSONL line",
        "  itsm-bridge schema > workitem.schema.json\n  itsm-bridge schema --scored",
    )
    p.add_argument("--scored", action="store_true", help="include the scoring object")

    p = _command(
        sub,
        "pull",
        cmd_pull,
        "pull one source into a JSONL file or (incrementally) into a store",
        """
  export SNOW_PASSWORD=...
  itsm-bridge pull servicenow --url https://acme.service-now.com --user svc \\
      --password-env SNOW_PASSWORD --kind incident --kind change --out work.jsonl
  export JIRA_TOKEN=...
  itsm-bridge pull jira --url https://acme.atlassian.net --user me@acme.com \\
      --password-env JIRA_TOKEN --since 2026-01-01T00:00:00Z --store itsm.db
""",
    )
    p.add_argument("connector", metavar="CONNECTOR", help="connector name (see `connectors`)")
    p.add_argument("--url", required=True, help="the instance's base URL")
    _auth_flags(p)
    p.add_argument("--kind", action="append", choices=_KINDS, help="kinds to pull (repeat)")
    p.add_argument("--since", metavar="ISO8601", help="only records updated at or after this")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--out", metavar="FILE", help="write the records here (atomically)")
    target.add_argument("--store", metavar="DB", help="sync incrementally into this store")
    p.add_argument(
        "--format", choices=["jsonl", "csv", "parquet"], default="jsonl", help="for --out"
    )
    p.add_argument("--census", action="store_true", help="mark records no longer visible")
    p.add_argument("--full", action="store_true", help=_FULL_HELP)
    p.add_argument(
        "--source", help="name of this source in ids and the store (default: host[_port][/path])"
    )
    p.add_argument(
        "--option",
        action="append",
        type=_option,
        metavar="KEY=VALUE",
        help="connector option, e.g. --option page_size=500 (repeat)",
    )

    p = _command(
        sub,
        "sync",
        cmd_sync,
        "sync every source of a TOML config file into its store, concurrently",
        """
  itsm-bridge sync --config itsm.toml
  itsm-bridge sync --config itsm.toml --source snow-prod --census --json
""",
    )
    p.add_argument("--config", required=True, metavar="ITSM.toml", help="the sources to sync")
    p.add_argument("--store", metavar="DB", help="override the config's store path")
    p.add_argument("--source", action="append", metavar="NAME", help="only these sources")
    census = p.add_mutually_exclusive_group()
    census.add_argument(
        "--census",
        dest="census",
        action="store_true",
        default=None,
        help="mark records no longer visible (overrides the config)",
    )
    census.add_argument("--no-census", dest="census", action="store_false", help="skip it")
    p.add_argument("--full", action="store_true", help=_FULL_HELP)

    p = _command(
        sub,
        "score",
        cmd_score,
        "tag items business-facing, inward-facing or undetermined, with reasons",
        """
  itsm-bridge score work.jsonl --out scored.jsonl
  itsm-bridge score work.jsonl --rules my-rules.toml --model model.json --out scored.jsonl
  itsm-bridge score --store itsm.db
""",
    )
    p.add_argument("input", nargs="?", metavar="INPUT.jsonl", help="items, one JSON per line")
    p.add_argument("--out", metavar="OUTPUT.jsonl", help="scored items (written atomically)")
    p.add_argument("--store", metavar="DB", help="score the store's items (kept per rule set)")
    p.add_argument("--force", action="store_true", help="re-score even if up to date")
    _scoring_flags(p)

    p = _command(
        sub,
        "report",
        cmd_report,
        "the business-facing share of effort, by month, team, service or kind",
        """
  itsm-bridge report --store itsm.db --by month
  itsm-bridge report scored.jsonl --by team --by kind --format csv --out ratio.csv
  itsm-bridge report --store itsm.db --format html --out report.html
""",
    )
    p.add_argument("input", nargs="?", metavar="INPUT.jsonl", help="scored or plain items")
    p.add_argument("--store", metavar="DB", help="report on the store (scores it if needed)")
    p.add_argument("--by", action="append", choices=_DIMENSIONS, help="dimension (repeat)")
    p.add_argument(
        "--format", choices=["table", "json", "csv", "html"], default="table", help="output format"
    )
    p.add_argument("--out", metavar="FILE", help="write here (atomically) instead of stdout")
    _scoring_flags(p)

    p = _command(
        sub,
        "evaluate",
        cmd_evaluate,
        "measure the scorer against labelled items (accuracy, macro-F1, coverage)",
        """
  itsm-bridge evaluate labelled.jsonl
  itsm-bridge evaluate labelled.jsonl --rules my-rules.toml --json
""",
    )
    p.add_argument("input", metavar="LABELLED.jsonl", help="lines with a 'label' field")
    p.add_argument(
        "--folds", type=_at_least_two, metavar="K", help="K-fold cross-validation (K >= 2)"
    )
    _scoring_flags(p)

    p = _command(
        sub,
        "train",
        cmd_train,
        "train a small text model on labelled items, for `score --model`",
        "  itsm-bridge train labelled.jsonl -o model.json\n"
        "  itsm-bridge score work.jsonl --model model.json --out scored.jsonl",
    )
    p.add_argument("input", metavar="LABELLED.jsonl", help="lines with a 'label' field")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.json", help="the model file")
    p.add_argument("--rules", metavar="RULES.toml", help=argparse.SUPPRESS)

    p = _command(
        sub,
        "export",
        cmd_export,
        "export the store's items as JSONL, CSV or Parquet",
        """
  itsm-bridge export --store itsm.db --out items.jsonl
  itsm-bridge export --store itsm.db --format csv --scored --out scored.csv
  itsm-bridge export --store itsm.db --format parquet --kind incident --out incidents.parquet
""",
    )
    p.add_argument("--store", required=True, metavar="DB", help="the store to read")
    p.add_argument("--out", required=True, metavar="FILE", help="written atomically; '-' = stdout")
    p.add_argument(
        "--format",
        choices=["jsonl", "csv", "parquet"],
        default="jsonl",
        help="parquet needs the [parquet] extra",
    )
    p.add_argument("--scored", action="store_true", help="add the verdicts (scores if needed)")
    p.add_argument("--kind", action="append", choices=_KINDS, help="only these kinds (repeat)")
    p.add_argument("--source", action="append", metavar="NAME", help="only these sources")
    _scoring_flags(p)

    p = _command(
        sub,
        "runs",
        cmd_runs,
        "the store's run history (newest first)",
        "  itsm-bridge runs --store itsm.db\n  itsm-bridge runs --store itsm.db --json --limit 1",
    )
    p.add_argument("--store", required=True, metavar="DB", help="the store to read")
    p.add_argument("--source", metavar="NAME", help="only this source")
    p.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")

    p = _command(
        sub,
        "quarantine",
        cmd_quarantine,
        "records that could not be mapped, with their reason",
        "  itsm-bridge quarantine --store itsm.db\n"
        "  itsm-bridge quarantine --store itsm.db --source snow-prod --json",
    )
    p.add_argument("--store", required=True, metavar="DB", help="the store to read")
    p.add_argument("--source", metavar="NAME", help="only this source")

    p = _command(
        sub,
        "demo",
        cmd_demo,
        "the whole product on built-in sandbox instances: sync, score, report, compare",
        "  itsm-bridge demo\n  itsm-bridge demo --out-dir ./demo-output --keep-store demo.db",
    )
    p.add_argument("--seed", type=int, default=7, help="the fictional company's seed")
    p.add_argument("--scale", type=float, default=1.0, help="volume multiplier")
    p.add_argument("--out-dir", metavar="DIR", help="where the HTML report goes")
    p.add_argument("--keep-store", metavar="DB", help="keep the synced store at this path")
    return parser


def _configure_logging(level: str | None) -> Callable[[], None]:
    """Log to stderr at ``level``; returns what undoes it (main() may run inside a program)."""
    chosen = (level or os.environ.get(LOG_ENV) or "WARNING").upper()
    numeric = logging.getLevelName(chosen)
    if not isinstance(numeric, int):
        raise ConfigurationError(f"{LOG_ENV}={chosen!r} is not a log level")
    logger = logging.getLogger("itsm_bridge")
    previous, propagated = logger.level, logger.propagate
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(numeric)
    # The command's lines go to stderr once: a host program's own root handlers would repeat them.
    logger.propagate = False

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        logger.propagate = propagated

    return restore


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now, not the one when it was made."""

    def emit(self, record: logging.LogRecord) -> None:
        from itsm_bridge._progress import make_room

        self.stream = sys.stderr
        make_room()  # a progress bar on screen is erased first, not run into
        super().emit(record)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        usage = int(exc.code or 0) if not isinstance(exc.code, str) else 2
        if usage and "--json" in (sys.argv[1:] if argv is None else argv):
            # argparse said what was wrong on stderr; stdout still carries one JSON document
            error = "usage error: see the message above on stderr, or --help"
            print(json.dumps({"error": error, "error_type": "UsageError", "exit_code": usage}))
        return usage
    out = _Out(bool(getattr(args, "json", False)))
    restore: Callable[[], None] | None = None
    terminate = _on_sigterm() if argv is None else None
    try:
        restore = _configure_logging(getattr(args, "log_level", None))
        code: int = args.handler(args, out)
        return code
    except ItsmBridgeError as exc:
        return _fail(out, exc, exc.exit_code)
    except _Terminated:
        return _fail(out, "terminated (SIGTERM)", 143)
    except KeyboardInterrupt:
        return _fail(out, "interrupted", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        message = f"unexpected error ({type(exc).__name__}): {exc}; "
        message += "run again with --log-level DEBUG for the traceback and report it"
        return _fail(out, message, 1)
    finally:
        if terminate is not None:
            terminate()
        if restore is not None:
            restore()


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's timeout, ``docker stop``), raised where the program is."""


def _on_sigterm() -> Callable[[], None] | None:
    """While the command runs, SIGTERM unwinds it like Ctrl-C does: the partial output file is
    removed, the store's open page rolls back and the run is recorded as interrupted. Returns
    what puts the previous handler back (None where signals cannot be set: not the main
    thread)."""

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread of the main interpreter
        return None

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _fail(out: _Out, error: ItsmBridgeError | str, code: int) -> int:
    kind = type(error).__name__ if isinstance(error, ItsmBridgeError) else None
    print(f"itsm-bridge: error: {error}", file=sys.stderr)
    if out.as_json:
        print(json.dumps({"error": str(error), "error_type": kind, "exit_code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main())
