"""Benchmarks of itsm-bridge against peer clients (``make bench``; see docs/performance.md)."""
