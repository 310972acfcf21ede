"""The statistics of comparison gates: small pure modules, stdlib ``math`` only.

- :mod:`runner.gates.stats.sequential`: the always-valid confidence sequence of p_t - p_c.
- :mod:`runner.gates.stats.srm`: the sequential sample-ratio mismatch test (Lindon & Malek).
"""
