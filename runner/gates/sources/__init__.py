"""Metric sources. Each module has ``read(call) -> dict[gate name, Reading]`` and raises
:class:`~runner.gates.readings.SourceError` or :class:`~runner.gates.readings.NoData` when the
whole source fails or has nothing."""
