"""``python -m itsm_bridge`` is the ``itsm-bridge`` command."""

from __future__ import annotations

import sys

from itsm_bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())
