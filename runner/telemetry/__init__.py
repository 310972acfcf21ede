"""What applications add to their own telemetry so that the runner can compare cohorts.

Not a layer of the runner: like :mod:`runner.sdk`, these modules are imported by
applications, each behind an optional extra so that an application pays only for what it
uses:

* :mod:`runner.telemetry.prometheus` (``rollout-runner[prometheus]``): requests, errors and
  latency per ``flag``, ``variant`` and ``reason``, the series comparison gates query;
* :mod:`runner.telemetry.otel` (``rollout-runner[otel]``): OpenTelemetry
  ``feature_flag.evaluation`` events, as its feature-flag semantic conventions have them.

Both build on :meth:`runner.sdk.FlagClient.on_evaluation` or on the resolution an
evaluation returns; neither does I/O of its own.
"""
