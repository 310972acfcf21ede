"""Runner tests use a real Prometheus (tests/prometheus_server.py) for the gate scenarios."""

from tests.prometheus_server import prometheus  # noqa: F401  (the fixture)
