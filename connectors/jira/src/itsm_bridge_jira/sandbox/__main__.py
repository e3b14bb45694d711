"""Run a fake Jira site in the foreground: ``python -m itsm_bridge_jira.sandbox``.

It serves the generated company's Jira issues (or ``--issues N`` generated tasks) as Cloud
(REST v3) or Data Center (REST v2) on a loopback port, prints the URL and the sandbox's throwaway
credentials, and stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, SandboxServer, generate_company, generate_items
from itsm_bridge_jira.sandbox import JiraSandbox


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m itsm_bridge_jira.sandbox", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--deployment", choices=("cloud", "datacenter"), default="cloud")
    parser.add_argument("--timezone", default="UTC", help="the account's time zone")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--scale", type=float, default=1.0, help="company size factor")
    parser.add_argument("--issues", type=int, default=0, help="serve N generated tasks instead")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--p-429", type=float, default=0.0, help="chance of a 429 burst")
    parser.add_argument("--p-update", type=float, default=0.0, help="chance per page of an edit")
    parser.add_argument("--consistency-delay", type=float, default=0.0, help="index lag, seconds")
    parser.add_argument("--oauth", action="store_true", help="accept OAuth 2.0 (3LO) tokens only")
    args = parser.parse_args(argv)
    if args.issues:
        items = generate_items(Kind.TASK, args.issues, seed=args.seed, platform="jira")
    else:
        items = generate_company(seed=args.seed, scale=args.scale).for_platform("jira")
    faults = FaultPlan(seed=args.seed, p_429=args.p_429, p_update_during_paging=args.p_update)
    box = JiraSandbox(
        items,
        faults=faults,
        timezone=args.timezone,
        seed=args.seed,
        deployment=args.deployment,
        oauth=args.oauth,
        consistency_delay=args.consistency_delay,
        port=args.port,
    )

    def ready(server: SandboxServer) -> None:
        box.app.base_url = server.url
        box.app.renderer.base_url = server.url
        creds = box.credentials
        print(f"Jira {args.deployment} sandbox with {len(items)} issues at {server.url}")
        print(f"  account time zone: {args.timezone}")
        if args.oauth:
            print(f"  OAuth token URL: {server.url}/oauth/token")
            print(f"  client: {creds.client_id} / {creds.client_secret}")
            print(f"  refresh token: {creds.initial_refresh_token}")
        elif args.deployment == "cloud":
            print(f"  basic auth: {creds.email} / {creds.api_token}")
        else:
            print(f"  bearer PAT: {creds.pat}")
        print("  Ctrl-C stops it.", flush=True)

    box.server.serve_forever(ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
