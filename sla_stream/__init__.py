"""sla-stream: live SLA clocks, alerts and adherence for incident response commitments."""

__version__ = "0.1.0"
