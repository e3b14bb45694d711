"""Run a fake ServiceNow instance in the foreground: ``python -m itsm_bridge_servicenow.sandbox``.

It serves the generated company's ServiceNow records (or ``--incidents N`` extra incidents) on a
free loopback port, prints the URL and the credentials, and stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from itsm_bridge import Kind
from itsm_bridge.sandbox import FaultPlan, SandboxServer, generate_company, generate_items
from itsm_bridge_servicenow.sandbox import DEFAULT_CLIENT, ServiceNowSandbox


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m itsm_bridge_servicenow.sandbox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--scale", type=float, default=1.0, help="company size factor")
    parser.add_argument("--incidents", type=int, default=0, help="serve N generated incidents")
    parser.add_argument("--timezone", default="UTC", help="the account's time zone")
    parser.add_argument("--acl-hidden", type=float, default=0.0, help="share hidden by ACLs")
    parser.add_argument("--p-429", type=float, default=0.0, help="chance of a 429 burst")
    parser.add_argument("--max-page-rows", type=int, default=None, help="cancel larger pages")
    args = parser.parse_args(argv)
    if args.incidents:
        items = generate_items(Kind.INCIDENT, args.incidents, seed=args.seed)
    else:
        items = generate_company(seed=args.seed, scale=args.scale).for_platform("servicenow")
    faults = FaultPlan(seed=args.seed, acl_hidden_share=args.acl_hidden, p_429=args.p_429)
    box = ServiceNowSandbox(
        items,
        faults=faults,
        timezone=args.timezone,
        seed=args.seed,
        max_page_rows=args.max_page_rows,
    )

    def ready(server: SandboxServer) -> None:
        print(f"ServiceNow sandbox with {len(items)} records at {server.url}", flush=True)
        print(f"  basic auth: {box.username} / {box.password}", flush=True)
        print(f"  OAuth client: {DEFAULT_CLIENT[0]} / {DEFAULT_CLIENT[1]}", flush=True)
        print("  Ctrl-C stops it.", flush=True)

    box.server.serve_forever(ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
