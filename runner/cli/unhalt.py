"""``rollout unhalt [--env E] [--reason TEXT]``: lift a halt, one commit removing the switch file."""

from __future__ import annotations

import argparse

from runner.cli import halt


def register(sub: argparse._SubParsersAction) -> None:
    halt.register(sub, "unhalt")


def run(args: argparse.Namespace) -> int:
    return halt.run(args)
