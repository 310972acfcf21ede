"""``rollout keygen``: print a new Ed25519 key pair for signed publications (runner.signing)."""

from __future__ import annotations

import argparse

from runner.cli.commands import SUMMARIES
from runner.signing import new_keypair


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keygen", help=SUMMARIES["keygen"],
        description="Print a new Ed25519 key pair, base64 of 32 raw bytes each, as two "
        "lines: 'private: …' (store it as a CI secret, e.g. ROLLOUT_SIGNING_KEY, named by "
        "[tool.rollout.publish] signing_key_env) and 'public: …' (give it to clients: "
        "FlagClient.from_url(…, public_key=…)). Nothing is written. Exit 0 printed, 1 "
        "never, 2 usage or the [signing] extra (cryptography) is not installed, 3 internal "
        "error.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    private, public = new_keypair()
    print(f"private: {private}")
    print(f"public: {public}")
    return 0
