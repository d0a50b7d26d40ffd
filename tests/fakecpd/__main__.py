"""Run the fake Cloud Pak for Data in the foreground, for trying the CLI by hand:

    .venv/bin/python tests/fakecpd [--version 5.1.0] > fake.env &   # then: set -a; . fake.env
    mlops doctor

It prints the environment to use (shell syntax) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakecpd import FakeCpd, make_certs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(prog="fakecpd")
    parser.add_argument("--version", default="4.8.5", help="WML version reported (default 4.8.5)")
    parser.add_argument("--volume", action="append", default=[], help="create this storage volume")
    args = parser.parse_args()
    certs = make_certs(Path(tempfile.mkdtemp(prefix="fakecpd-certs-")))
    with FakeCpd(certs, version=args.version) as fake:
        for name in args.volume:
            fake.volumes.create(name)
        for key, value in fake.env().items():
            print(f"{key}={shlex.quote(value)}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
