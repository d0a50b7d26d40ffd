"""The README's reference sections are generated from the CLI and the JSON Schema: never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_readme_reference_sections_are_up_to_date():
    res = subprocess.run(
        [sys.executable, REPO / "tools" / "readme.py", "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, "README is stale: run `.venv/bin/python tools/readme.py`\n" + res.stderr


def test_readme_starts_with_the_two_commands_ci_runs():
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["bash dev.sh demo", "bash dev.sh test"]
    assert "bash dev.sh test" in (REPO / ".ci" / "run").read_text()
