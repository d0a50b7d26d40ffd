"""The README: short, starting with the two commands CI runs, its links and pictures all there."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def test_readme_starts_with_the_two_commands_ci_runs():
    lines = README.read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["bash dev.sh demo", "bash dev.sh test"]
    assert "bash dev.sh test" in (REPO / ".ci" / "run").read_text()
    dev = (REPO / "dev.sh").read_text()
    assert all(f"\n  {job})" in dev for job in ("demo", "test", "test-fast", "docs"))


def test_readme_is_short_and_its_links_and_pictures_exist():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert len([t for t in local if t.endswith(".png")]) == 3
    assert any(t.startswith("docs/") and t.endswith(".md") for t in local)
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_mlops_command_the_readme_shows_exists(cli):
    commands = re.findall(
        r"^(?:\.venv/bin/)?mlops ((?:--\S+ \S+ )*)([a-z]+)(?: ([a-z]+))?", README.read_text(), re.M
    )
    assert commands
    for _options, group, sub in commands:
        args = [group, sub] if sub else [group]
        res = cli(*args, "--help")
        assert res.exit_code == 0, f"`mlops {' '.join(args)}` in the README: {res.output}"
