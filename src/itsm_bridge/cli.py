"""The ``itsm-bridge`` command line (first slice; the full CLI is being built)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from itsm_bridge.connector import available_connectors
from itsm_bridge.schema import schema_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="itsm-bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("connectors", help="list installed connectors")
    schema = sub.add_parser("schema", help="print the JSON Schema of a JSONL line")
    schema.add_argument("--scored", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "connectors":
        for name in available_connectors():
            print(name)
    elif args.command == "schema":
        print(schema_json(scored=args.scored))
    return 0


if __name__ == "__main__":
    sys.exit(main())
