"""`python -m sla_stream.cli`: the `sla-stream` command."""

from sla_stream.cli import main

main()
