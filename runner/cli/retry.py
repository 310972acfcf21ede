"""``rollout retry FLAG``: a person's request, recorded as a commit."""

from __future__ import annotations

import argparse

from runner.cli import requests


def register(sub: argparse._SubParsersAction) -> None:
    requests.register(sub, "retry")


def run(args: argparse.Namespace) -> int:
    return requests.run(args)
