"""How the CLI shows errors and listings: hints rendered as flags or commands (messages name
none), one output helper for --json / a table / a 'nothing' line, a quiet exit on a closed pipe."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from mlops_widgets.cli._hints import RENDERINGS, error_text, render
from mlops_widgets.errors import ConflictError, Hint, MlopsError

PACKAGE = Path(__file__).resolve().parent.parent / "mlops_widgets"


def test_hint_renders_from_the_table_with_its_args():
    hint = Hint("stage.deployed", "delete that deployment first", {"deployment": "live"})
    assert "`mlops deploy delete --name live`" in render(hint)
    error = ConflictError("model asset 1 is deployed as 'live'", hint=hint)
    assert error_text(error).startswith(
        "model asset 1 is deployed as 'live': delete that deployment first (`mlops"
    )
    assert "--name" not in str(error)  # the panel and the records read the plain words


def test_hint_without_a_rendering_prints_its_plain_text():
    assert (
        error_text(MlopsError("broken", hint=Hint("no.such.action", "try again later")))
        == "broken: try again later"
    )
    # a rendering that needs an argument the hint lacks falls back to the plain text too
    assert render(Hint("stage.deployed", "delete it first")) == "delete it first"


def test_multi_line_messages_put_the_hint_on_its_own_line():
    text = error_text(MlopsError("2 problems in f.yml\nf.yml:1: a: bad", hint=Hint("config.with_key", "x")))
    assert text.splitlines()[-1] == "use --with-key"


def test_rendering_table_is_sorted_and_covers_the_actions_of_this_package():
    assert list(RENDERINGS) == sorted(RENDERINGS)
    used = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Hint"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                used.add(node.args[0].value)
    assert used, "no Hint(...) found: the scan is broken"
    assert not used - set(RENDERINGS), f"actions without a CLI rendering: {sorted(used - set(RENDERINGS))}"


def test_cli_error_renders_the_clash_hint_as_flags(cli, example_paths):
    args = (
        "prepare",
        "stage",
        "--path-model",
        example_paths.model,
        "--path-dependency",
        example_paths.deployment,
        "--path-yml",
        example_paths.config,
    )
    assert cli(*args).exit_code == 0
    again = cli(*args)
    assert again.exit_code == 1
    assert "the space already has assets named" in again.stderr
    assert "use --force to replace them, or --new to add new ones beside them" in again.stderr


def test_config_hint_rendered_after_the_problems(cli, reference_dir):
    res = cli("config", "validate", "--path-yml", reference_dir / "deployment_metadata_cli_example2.yml")
    assert res.exit_code == 1
    assert res.stderr.rstrip().endswith("use --with-key")


def test_listings_print_json_a_table_or_a_nothing_line(cli):
    assert cli("config", "list").stdout == "no entries: stage a model with `mlops prepare stage`\n"
    assert json.loads(cli("config", "list", "--json").stdout) == {}
    assert cli("deploy", "list").stdout == "no deployments\n"
    assert json.loads(cli("deploy", "list", "--json").stdout) == []
    table = cli("monitor", "definitions").stdout.splitlines()
    assert table[0].split() == ["MONITOR", "ID", "METRICS", "NAME"] and len(table) >= 3
    assert {d["monitor_id"] for d in json.loads(cli("monitor", "definitions", "--json").stdout)} >= {
        "segmentation_metrics",
        "generic_metrics",
    }


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`mlops ... | head`: the reader leaves early; no 'Error: Broken pipe', no traceback."""
    code = "from mlops_widgets.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "templates", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"MLOPS_HOME": str(tmp_path / "ws"), "PATH": "/usr/bin:/bin"},
    )
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert err == "", err
    assert proc.returncode == 141
