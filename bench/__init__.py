"""Benchmarks: `make bench` runs every section and rewrites docs/benchmarks.md."""
