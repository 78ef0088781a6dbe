"""Cross-cutting observability: Prometheus metrics, structured logs, access logs."""
