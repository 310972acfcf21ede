"""Surfaces: the ``rollout`` command. Thin: parse arguments, call the layers, print."""
