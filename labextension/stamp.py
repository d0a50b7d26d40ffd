"""The fingerprint of the extension's sources, written beside the built assets by `npm run build`
(tests/test_lab_extension.py fails when the committed build is older than its sources)."""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = HERE.parent / "mlops_widgets" / "labextension" / "sources.sha256"
SOURCES = ("package.json", "package-lock.json", "tsconfig.json", "src", "style", "schema")


def sources_hash() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        path = HERE / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            digest.update(f.relative_to(HERE).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    STAMP.write_text(sources_hash() + "\n")
    print(f"{STAMP.relative_to(HERE.parent)} updated")
