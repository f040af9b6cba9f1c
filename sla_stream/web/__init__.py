"""HTTP surfaces served by the worker: dashboard, portal API, /metrics."""
