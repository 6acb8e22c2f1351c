"""``vlash keys --out DIR --name NAME``: create a CurveZMQ key pair for an off-host bus link.

Writes ``DIR/NAME.key`` (public: give it to the peer) and ``DIR/NAME.key_secret`` (mode 0600:
keep it on this host). The inference host needs its own pair; each robot host needs its own
pair plus the server's public key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write the key files to")
    parser.add_argument("--name", required=True, help="file name stem, e.g. server or robot0")
    parser.add_argument("--force", action="store_true", help="replace an existing key pair of that name")


def run(args: argparse.Namespace) -> int:
    from vlash.curve import save_keypair

    try:
        public_path, secret_path = save_keypair(args.out, args.name, overwrite=args.force)
    except FileExistsError:
        print(
            f"vlash keys: {args.out / args.name}.key_secret exists; use --force to replace it",
            file=sys.stderr,
        )
        return 1
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"vlash keys: {exc}", file=sys.stderr)
        return 2
    print(f"public key: {public_path}  (share with the peer)")
    print(f"secret key: {secret_path}  (mode 0600, keep private)")
    return 0
