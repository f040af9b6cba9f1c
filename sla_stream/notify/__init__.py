"""Notifier bridges: deliver `sla.alerts` to the tools that page people (Alertmanager first)."""
