"""Safe unpacking of dependency and model zips, beside `zipfile.extractall` of the same archive.

`backends.archives.safe_unzip` plans the whole archive and checks the final tree before writing
(plus O_NOFOLLOW|O_EXCL writes and the size limits); the baseline writes without any check.
Two archives: many small files (a code dependency) and one large file (a model).

Run: .venv/bin/python benchmarks/bench_unzip.py [--files 5000] [--size-mb 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from mlops_widgets.backends.archives import safe_unzip


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _compare(label: str, archive: Path, scratch: Path, repeat: int) -> None:
    def baseline() -> None:
        out = scratch / "baseline"
        shutil.rmtree(out, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(out)

    def safe() -> None:
        out = scratch / "safe"
        shutil.rmtree(out, ignore_errors=True)
        safe_unzip(archive, out)

    base, ours = _median(baseline, repeat), _median(safe, repeat)
    print(f"{label}: extractall {base:.3f} s, safe_unzip {ours:.3f} s, ratio {ours / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        many = scratch / "many.zip"
        with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(args.files):
                zf.writestr(f"pkg/mod{i // 100}/file{i}.py", f"x = {i}\n" * 20)
        _compare(f"{args.files} small files", many, scratch, args.repeat)
        big = scratch / "model.zip"
        with (
            zipfile.ZipFile(big, "w", zipfile.ZIP_STORED, allowZip64=True) as zf,
            zf.open("weights.bin", "w", force_zip64=True) as fh,
        ):
            for _ in range(args.size_mb):
                fh.write(os.urandom(1 << 20))
        _compare(f"one {args.size_mb} MB file", big, scratch, args.repeat)


if __name__ == "__main__":
    main()
