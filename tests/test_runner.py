"""The runner without kernels: parameters cells, validation before any kernel starts, secrets
scrubbing, record(), the audit trail's index (filters, prefixes) and clones."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers import make_template

from mlops_widgets.cli._run import TerminalProgress
from mlops_widgets.config import ConfigError
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.masking import MASK
from mlops_widgets.runner import (
    ProgressEvent,
    RunRecord,
    clone_run,
    clone_template,
    entry_from_parameters,
    get_run,
    get_template,
    list_runs,
    list_templates,
    validate_parameters,
)
from mlops_widgets.runner import record as record_module
from mlops_widgets.runner import templates as templates_module
from mlops_widgets.runner.secrets import (
    Scrubber,
    ambient_secrets,
    get_secrets,
    secret,
)
from mlops_widgets.runner.templates import parse_parameters
from mlops_widgets.runner.trail import TEMPLATE_COPY, save_run
from mlops_widgets.secret_names import is_secret_name
from mlops_widgets.workspace import Workspace


@pytest.fixture
def tmpl(tmp_path: Path):
    return get_template(make_template(tmp_path / "T_Test.ipynb"))


def test_parameters_cell_names_types_defaults_and_help(tmpl) -> None:
    p = tmpl.parameters
    assert list(p) == [
        "count",
        "ratio",
        "name",
        "flag",
        "tags",
        "settings",
        "maybe",
        "where",
        "mode",
        "anything",
        "api_key",
        "login",
    ]
    assert {n: p[n].type for n in p} == {
        "count": "int",
        "ratio": "float",
        "name": "str",
        "flag": "bool",
        "tags": "list",
        "settings": "dict",
        "maybe": "str | None",
        "where": "str",
        "mode": "str",
        "anything": "any",
        "api_key": "str",
        "login": "str",
    }
    assert p["count"].default == 3 and p["count"].help == "how many"
    assert p["settings"].default == {"a": 1}
    assert p["settings"].help == "settings of the thing, over two lines"
    assert p["where"].default is None and p["where"].default_source == "os.getcwd()"
    assert p["mode"].choices == ("fast", "slow")
    assert p["api_key"].secret and p["login"].secret and not p["name"].secret
    assert p["login"].help == "the login, secret by its comment"
    assert tmpl.secret_names == ["api_key", "login"]
    assert tmpl.steps == ["T_Test: a test template"]


@pytest.mark.parametrize("name", ["api_key", "APIKEY", "user_access_token", "db_password", "client_secret"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)
    assert not is_secret_name("model_name")


def test_bad_parameters_cell_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MlopsError, match="not valid Python"):
        parse_parameters("x = = 1")
    with pytest.raises(MlopsError, match="unsupported parameter annotation"):
        parse_parameters("x: set[int] = {1}")
    broken = tmp_path / "Broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(MlopsError, match="not a notebook"):
        _ = get_template(broken).parameters


def test_validation_reports_every_unknown_name_and_wrong_type_at_once(tmpl) -> None:
    with pytest.raises(MlopsError) as err:
        validate_parameters(tmpl, {"cont": 1, "ratio": "x", "flag": 1, "mode": "medium", "count": True})
    msg = str(err.value)
    assert "unknown parameter 'cont' (did you mean 'count'?)" in msg
    assert "parameter 'ratio' must be float, got str 'x'" in msg
    assert "parameter 'flag' must be bool" in msg
    assert "parameter 'count' must be int, got bool" in msg
    assert "must be one of 'fast', 'slow', got 'medium'" in msg
    assert "Its parameters: count, ratio" in msg


def test_validation_converts_values(tmpl) -> None:
    out = validate_parameters(tmpl, {"ratio": 1, "tags": ("x",), "where": Path("/tmp"), "maybe": None})
    assert out == {"ratio": 1.0, "tags": ["x"], "where": "/tmp", "maybe": None}
    assert isinstance(out["ratio"], float)
    with pytest.raises(MlopsError, match="plain data"):
        validate_parameters(tmpl, {"anything": object()})
    with pytest.raises(MlopsError, match="not None"):
        validate_parameters(tmpl, {"count": None})


def test_command_line_values_are_typed_by_the_template(tmpl) -> None:
    p = tmpl.parameters
    assert p["count"].coerce("7") == 7
    assert p["name"].coerce("007") == "007"
    assert p["settings"].coerce("{a: 2, b: [1, 2]}") == {"a": 2, "b": [1, 2]}
    assert p["maybe"].coerce("null") is None
    assert p["flag"].coerce("true") is True
    with pytest.raises(MlopsError, match="must be int"):
        p["count"].coerce("seven")
    with pytest.raises(MlopsError, match="not valid YAML"):
        p["settings"].coerce("{a: [")


def test_config_parameters_go_through_the_config_model() -> None:
    a = get_template("A_MLOps_Pipeline")
    with pytest.raises(ConfigError) as err:
        validate_parameters(a, {"resource_configs": {"n_cpus": -1, "n_cpu": 2}})
    paths = {p.path for p in err.value.problems}
    assert "wmla_deployment.resource_configs.n_cpus" in paths
    assert "wmla_deployment.resource_configs.n_cpu" in paths
    monitors = {"segmentation_metrics": {**a.parameters["monitors"].default["segmentation_metrics"]}}
    monitors["segmentation_metrics"]["thresholds"] = {"Dice": {"threshold": [20, "sideways"]}}
    with pytest.raises(ConfigError, match=r"thresholds\.Dice\.threshold"):
        validate_parameters(a, {"monitors": monitors})
    # normalized as the CLI normalizes: the seed's aliases and 'True'/'False' strings
    out = validate_parameters(
        a, {"resource_configs": {"enable_gpus": "False", "n_replicas": 2, "n_min_kernels": 1}}
    )
    assert out["resource_configs"]["enable_gpus"] is False
    assert out["resource_configs"]["kernel_max"] == 2 and out["resource_configs"]["kernel_min"] == 1


def test_a_deployment_name_parameter_follows_the_config_rule(tmp_path: Path) -> None:
    t = get_template(make_template(tmp_path / "Deploy.ipynb", 'deployment_name = "demo"  # the name'))
    assert validate_parameters(t, {"deployment_name": "my-model-1"}) == {"deployment_name": "my-model-1"}
    with pytest.raises(ConfigError, match="wmla_deployment.deployment_name: must be lower-case"):
        validate_parameters(t, {"deployment_name": "My_Model"})


def test_entry_from_parameters(example_paths) -> None:
    from mlops_widgets.config import load_config

    entry, _ = entry_from_parameters(None, model_name="m", resource_configs={"n_cpus": 2}, monitors=None)
    assert entry["model_name"] == "m" and entry["wmla_deployment"]["resource_configs"]["n_cpus"] == 2
    (given,) = load_config(example_paths.config).entries.values()
    whole, _ = entry_from_parameters(given, model_name="ignored")
    assert whole["model_name"] == given["model_name"]
    with pytest.raises(MlopsError, match="unknown config parameter"):
        entry_from_parameters(None, colour="red")


BOGUS_MONITORS = """monitors:
  myseg:
    dir_gt: model_eval/gt_images
    dir_pred: model_eval/model_images
    volume_display_name: demo-volume
    most_recent: 7
    thresholds:
      Bogus: {threshold: [1.0, lower]}
"""


def test_config_parameters_are_checked_in_the_runs_workspace(cli, tmp_path: Path, monkeypatch) -> None:
    """A monitor id registered in the run's workspace (not $MLOPS_HOME) has its metric names
    checked before any kernel starts, as `mlops config validate` checks them there."""
    other = tmp_path / "other"
    res = cli(
        "--workspace",
        other,
        "monitor",
        "register",
        "--monitor",
        "myseg",
        "--provider",
        "segmentation_metrics",
    )
    assert res.exit_code == 0, res.output
    params = tmp_path / "p.yml"
    params.write_text(BOGUS_MONITORS)
    res = cli("--workspace", other, "run", "A_MLOps_Pipeline", "-f", params)
    assert res.exit_code == 1
    assert "openscale_custom_metric_provider.myseg.thresholds.Bogus" in res.stderr, res.stderr
    from mlops_widgets.runner import list_runs

    # nothing ran: the trail holds only the registration's event (recorded as every CLI change)
    assert [r.template for r in list_runs(other)] == ["monitor.register"]
    assert not (Path(os.environ["MLOPS_HOME"]) / "runs").exists()

    import yaml

    monitors = yaml.safe_load(BOGUS_MONITORS)["monitors"]
    a = get_template("A_MLOps_Pipeline")
    with pytest.raises(ConfigError, match="Bogus"):
        validate_parameters(a, {"monitors": monitors}, workspace=Workspace(other))
    with pytest.raises(ConfigError, match="Bogus"):
        clone_template(a, tmp_path / "c.ipynb", {"monitors": monitors}, workspace=other)
    # in $MLOPS_HOME myseg is unknown: a warning only, as the config model says of such ids
    assert validate_parameters(a, {"monitors": monitors})["monitors"]["myseg"]["thresholds"]
    # in the kernel, entry_from_parameters() reads $MLOPS_HOME: the run's workspace
    monkeypatch.setenv("MLOPS_HOME", str(other))
    with pytest.raises(ConfigError, match="Bogus"):
        entry_from_parameters(None, monitors=monitors)


def test_an_empty_config_parameter_is_not_set(tmp_path: Path) -> None:
    """A_MLOps_Pipeline's `deployment_name = ""` means "stage only", not an invalid name."""
    t = get_template(make_template(tmp_path / "Stage.ipynb", 'deployment_name = ""  # empty: no deploy'))
    assert validate_parameters(t, {"deployment_name": ""}) == {"deployment_name": ""}
    entry, _ = entry_from_parameters(None, model_name="m", deployment_name="")
    assert entry["wmla_deployment"]["deployment_name"] is None


def test_secrets_that_cannot_be_scrubbed_are_refused_before_any_kernel(
    tmpl, workspace: Workspace, monkeypatch
) -> None:
    from mlops_widgets.runner import run_template

    with pytest.raises(MlopsError, match=r"secret 'api_key' \(given as a parameter\) is 1 character"):
        run_template(tmpl, {"api_key": "1"})
    with pytest.raises(MlopsError, match=r"secret 'CPD_APIKEY' \(given as a secret\) is 3 character"):
        run_template(tmpl, secrets={"CPD_APIKEY": "abc"})
    monkeypatch.setenv("LOGIN", "me")
    with pytest.raises(MlopsError, match=r"secret 'login' \(from the environment\) is 2 character"):
        run_template(tmpl)
    monkeypatch.delenv("LOGIN")
    with pytest.raises(MlopsError, match="'api_key' .* is a word every notebook contains"):
        run_template(tmpl, {"api_key": "metadata"})
    assert not (workspace.root / "runs").exists()


def test_a_secret_parameter_with_a_default_is_refused(tmp_path: Path) -> None:
    t = get_template(make_template(tmp_path / "Keyed.ipynb", 'api_key = "abc123"  # the key'))
    with pytest.raises(MlopsError, match="secret parameter 'api_key' has a default value"):
        _ = t.parameters
    with pytest.raises(MlopsError, match="secret parameter 'login' has a default"):
        parse_parameters('login = "me"  # secret: the login')
    assert parse_parameters("token: str | None = None  # ok")["token"].secret


def test_template_titles_do_not_repeat_the_name(tmpl) -> None:
    assert tmpl.description == "a test template"
    assert get_template("A2_WMLA_Model_Deploy").description.startswith("deploy a staged model")


def test_templates_are_found_wheel_folder_first(tmp_path: Path, monkeypatch) -> None:
    assert "A_MLOps_Pipeline" in [t.name for t in list_templates()]
    wheel, checkout = tmp_path / "wheel", tmp_path / "checkout"
    make_template(wheel / "Same.ipynb", "x = 1  # from the wheel")
    make_template(checkout / "Same.ipynb", "x = 2  # from the checkout")
    make_template(checkout / "Other.ipynb", "y = 1  # only here")
    monkeypatch.setattr(templates_module, "TEMPLATE_DIRS", (wheel, checkout))
    found = {t.name: t for t in list_templates()}
    assert sorted(found) == ["Other", "Same"]
    assert found["Same"].parameters["x"].default == 1
    assert get_template("Same.ipynb").path == wheel / "Same.ipynb"
    with pytest.raises(NotFoundError, match="available templates are Other, Same"):
        get_template("Missing")
    with pytest.raises(NotFoundError, match="does not exist"):
        get_template(str(tmp_path / "nowhere" / "X.ipynb"))


def test_scrubber_masks_every_form_of_a_secret_in_values_only() -> None:
    value = 's3"cr\\t<&>'
    scrub = Scrubber([value, ""])
    data = {
        "plain": f"token={value}",
        "json": json.dumps({"k": value}),
        "repr": repr({"k": value}),
        "html": "<td>s3&quot;cr\\t&lt;&amp;&gt;</td>",
        "nested": [value, (value,)],
    }
    out = scrub(data)
    dumped = json.dumps(out).encode()
    assert not scrub.leaks(dumped) and not scrub.leaks(repr(out).encode())
    assert out["plain"] == f"token={MASK}" and out["nested"] == [MASK, (MASK,)]
    assert Scrubber([])(data) is data
    # keys are the structure's names ("execution_count"...): never rewritten, the leak check finds them
    keyed = Scrubber(["count"])({"execution_count": 1, "text": "count me"})
    assert keyed == {"execution_count": 1, "text": f"{MASK} me"}


def _notebook_with_outputs() -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("for ch in api_key: print(ch, end='')", execution_count=1)
    cell.metadata = {"tags": ["step"], "papermill": {"duration": 98765432100.5}}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=ch) for ch in "Zq9-pieces"]
    cell.outputs += [
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
        nbformat.v4.new_output("display_data", data={"application/json": {"n": 98765432100}}),
        nbformat.v4.new_output("display_data", data={"application/json": {"Zq9-pieces": 1}}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "'Zq9-pieces'"}, execution_count=1),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# T", id="Zq9-pieces-title"), cell]
    return nb


def test_notebook_scrub_never_corrupts_the_notebook() -> None:
    from mlops_widgets.runner.secrets import LEAK_NOTE, scrub_notebook

    scrub = Scrubber(["Zq9-pieces", "9876543210"])
    nb = _notebook_with_outputs()
    out = scrub_notebook(nb, scrub)
    nbformat.validate(out)  # still a valid notebook: no structure rewritten
    text = nbformat.writes(out)
    assert not scrub.leaks(text.encode())
    outputs = out.cells[1].outputs
    # the secret printed a character at a time is merged whole, then masked
    assert [o.get("text") for o in outputs[:2]] == [MASK, "warning\n"]
    # a secret in a number or a key cannot be masked: the output is replaced by a note
    assert outputs[2].text == outputs[3].text == LEAK_NOTE and outputs[2].name == "stderr"
    assert outputs[4].data["text/plain"] == f"'{MASK}'" and outputs[4].execution_count == 1
    assert out.cells[1].execution_count == 1 and out.cells[1].id == nb.cells[1].id
    assert out.cells[1].metadata == {"tags": ["step"]}  # a timing holding the secret is dropped
    assert out.cells[0].source == "# T" and out.cells[0].id != nb.cells[0].id  # an id is renewed
    with pytest.raises(MlopsError, match="notebook's own structure"):
        scrub_notebook(_notebook_with_outputs(), Scrubber(["cell_type"]))


def test_secrets_in_the_kernel_environment(monkeypatch) -> None:
    monkeypatch.setenv("MLOPS_SECRET_api_key", "k1")
    monkeypatch.setenv("MLOPS_SECRET_CPD_APIKEY", "k2")
    assert get_secrets() == {"api_key": "k1", "CPD_APIKEY": "k2"}
    assert secret("api_key") == "k1"
    monkeypatch.setenv("LOGIN", "me")
    assert secret("login") == "me"
    with pytest.raises(MlopsError, match="export MLOPS_SECRET_absent"):
        secret("absent")


def test_credentials_in_the_callers_environment_are_scrubbed_too() -> None:
    env = {"USER_ACCESS_TOKEN": "eyJhbGciOi.long", "APIKEY": "k" * 20, "KEYTIMEOUT": "1", "HOME": "/root/x"}
    assert sorted(ambient_secrets(env)) == sorted(["eyJhbGciOi.long", "k" * 20])


def test_record_outside_the_runner_keeps_and_prints(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.delenv(record_module.RESULTS_ENV, raising=False)
    record_module.record(model_asset_id="abc", n=2)
    assert "recorded model_asset_id = 'abc'" in capsys.readouterr().out
    assert record_module.recorded()["model_asset_id"] == "abc"
    with pytest.raises(MlopsError, match="plain data"):
        record_module.record(bad={1, 2})
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(record_module.RESULTS_ENV, str(results))
    record_module.record(a=1)
    record_module.record(a=2, b="x")
    with results.open("a") as fh:
        fh.write('{"cut short')
    assert record_module.read_results(results) == {"a": 2, "b": "x"}


def fake_run(ws: Workspace, n: int, **over: Any) -> RunRecord:
    """A run record written straight into the trail (no kernel), for index tests."""
    fields: dict[str, Any] = {
        "run_id": f"20250101T0000{n:02d}Z-T_Test-{n:08x}",
        "short_id": f"{n:08x}",
        "template": "T_Test",
        "template_hash": "sha256:0",
        "parameters": {"deployment_name": f"dep-{n % 3}"},
        "secret_names": [],
        "backend": "local",
        "workspace": str(ws.root),
        "user": "u",
        "host": "h",
        "cwd": str(ws.root),
        "started_at": f"2025-01-01T00:00:{n:02d}.000000Z",
        "ended_at": f"2025-01-01T00:00:{n:02d}.500000Z",
        "duration_s": 0.5,
        "status": "ok",
        "error": None,
        "results": {},
        "rerun_of": None,
        "package_version": "0",
        "papermill_version": "0",
        "notebook_name": "T_Test.ipynb",
    }
    fields.update(over)
    return save_run(ws, RunRecord(**fields), {"T_Test.ipynb": b"{}", TEMPLATE_COPY: b"{}"})


def test_run_index_filters_and_order(workspace: Workspace) -> None:
    assert list_runs(workspace) == []
    for n in range(1, 10):
        fake_run(workspace, n, status="failed" if n % 4 == 0 else "ok", template="T_Test" if n < 7 else "U")
    assert [r.short_id for r in list_runs(workspace)][:2] == [f"{9:08x}", f"{8:08x}"]
    assert {r.status for r in list_runs(workspace, status="failed")} == {"failed"}
    assert len(list_runs(workspace, status="failed")) == 2
    assert len(list_runs(workspace, template="U")) == 3
    assert {r.deployment_name for r in list_runs(workspace, deployment_name="dep-1")} == {"dep-1"}
    assert len(list_runs(workspace, since="2025-01-01T00:00:05", until="2025-01-01T00:00:07")) == 2
    assert len(list_runs(workspace, limit=4)) == 4
    first = list_runs(workspace)[0]
    assert Path(first.notebook) == workspace.root / "runs" / first.run_id / "T_Test.ipynb"
    assert Path(first.notebook).is_file() and Path(first.dir).is_dir()
    with pytest.raises(MlopsError, match="not a run status"):
        list_runs(workspace, status="done")
    with pytest.raises(MlopsError, match="not an ISO date"):
        list_runs(workspace, since="yesterday")
    assert not list((workspace.root / "runs").glob(".*")), "no staging folder left behind"


def test_run_ids_resolve_by_unique_prefix(workspace: Workspace) -> None:
    a = fake_run(workspace, 1, short_id="abc12345")
    fake_run(workspace, 2, short_id="abd00000")
    assert get_run(a.run_id, workspace).run_id == a.run_id
    assert get_run("abc", workspace).run_id == a.run_id
    assert get_run(a.run_id[:17] + "T_Test-0000000", workspace).run_id == a.run_id
    assert get_run(str(a.dir) + "/", workspace).run_id == a.run_id
    with pytest.raises(MlopsError, match="ambiguous"):
        get_run("ab", workspace)
    with pytest.raises(NotFoundError, match="no run 'zzz'") as err:
        get_run("zzz", workspace)
    assert err.value.hint.action == "runs.list" and "mlops" not in err.value.message


def test_clone_template_fills_parameters_and_never_writes_secrets(tmpl, tmp_path: Path) -> None:
    dest = clone_template(tmpl, tmp_path / "mine.ipynb", {"count": 5, "api_key": "TOPSECRET-VALUE"})
    nb = nbformat.read(dest, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "count = 5" in injected.source
    assert "api_key = secret('api_key')" in injected.source
    # One parameters cell: the template's, with the values in place (editing it is what counts).
    tagged = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert tagged == [injected] and "parameters" in injected.metadata["tags"]
    assert injected.source.count("count =") == 1
    # What running the clone takes from it: the values set, and a default the user edited.
    from mlops_widgets.app.notebooks import clone_plan

    plan = clone_plan(dest)
    assert (plan.parameters, plan.secret_names) == ({"count": 5}, ["api_key"])
    as_json = json.loads(dest.read_text())
    (cell,) = [c for c in as_json["cells"] if "parameters" in c["metadata"].get("tags", [])]
    cell["source"] = "".join(cell["source"]).replace('name = "demo"', 'name = "edited"')
    dest.write_text(json.dumps(as_json))
    assert clone_plan(dest).parameters == {"count": 5, "name": "edited"}
    assert b"TOPSECRET-VALUE" not in dest.read_bytes()
    assert nb.metadata["mlops"]["cloned_from"]["template"] == "T_Test"
    with pytest.raises(ConflictError, match="already exists"):
        clone_template(tmpl, dest)
    clone_template(tmpl, dest, force=True)
    with pytest.raises(MlopsError, match="must end with .ipynb"):
        clone_template(tmpl, tmp_path / "mine.txt")
    with pytest.raises(MlopsError, match="unknown parameter"):
        clone_template(tmpl, tmp_path / "x.ipynb", {"nope": 1})


def test_clone_run_uses_the_stored_template_and_parameters(workspace: Workspace, tmp_path: Path) -> None:
    template_text = make_template(tmp_path / "T_Test.ipynb").read_bytes()
    rec = fake_run(workspace, 1, parameters={"count": 9}, secret_names=["api_key"])
    (rec.dir / TEMPLATE_COPY).write_bytes(template_text)
    dest = clone_run(rec.short_id, tmp_path / "again.ipynb", workspace)
    nb = nbformat.read(dest, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "count = 9" in injected.source and "secret('api_key')" in injected.source
    tagged = [c for c in nb.cells if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    assert tagged == [injected]
    assert nb.metadata["mlops"]["cloned_from"]["run_id"] == rec.run_id


def test_a_parameter_stored_masked_must_be_given_again(cli, workspace: Workspace, tmp_path: Path) -> None:
    """A value scrubbed when the run was saved is not re-used as "********/model"."""
    from mlops_widgets.runner import rerun

    rec = fake_run(workspace, 1, parameters={"count": 2, "where": f"/data/{MASK}/model"})
    (rec.dir / TEMPLATE_COPY).write_bytes(make_template(tmp_path / "T_Test.ipynb").read_bytes())
    with pytest.raises(MlopsError, match=r"parameter\(s\) where were stored masked") as err:
        rerun(rec.run_id)
    assert "-p" not in err.value.message and err.value.hint.action == "runs.rerun"
    assert err.value.hint.args == {"run": rec.run_id, "params": "where"}
    with pytest.raises(MlopsError, match="give where again") as err:
        clone_run(rec.run_id, tmp_path / "c.ipynb", workspace)
    assert err.value.hint.action == "runs.clone"
    res = cli("runs", "rerun", rec.short_id)
    assert res.exit_code == 1 and "where" in res.stderr
    assert len(list_runs(workspace)) == 1
    res = cli("runs", "clone", rec.short_id, tmp_path / "c.ipynb", "-p", "where", "/data/x/model")
    assert res.exit_code == 0, res.output
    nb = nbformat.read(tmp_path / "c.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'where: str = "/data/x/model"' in injected.source and "count = 2" in injected.source


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_bar() -> None:
    def event(done: int, status: str = "running", heading: str = "2. Stage") -> ProgressEvent:
        return ProgressEvent("r", "T", status, done, 4, heading, None)

    tty = _Tty()
    bar = TerminalProgress(tty)
    bar(event(2))
    assert "[############............] 2/4 2. Stage" in tty.getvalue()
    bar(event(4, "ok"))
    assert tty.getvalue().endswith("\r\033[K")
    log = io.StringIO()
    bar = TerminalProgress(log)
    for e in (
        event(0, heading="1. Validate"),
        event(1, heading="1. Validate"),
        event(1),
        event(2),
        event(4, "ok"),
    ):
        bar(e)
    assert log.getvalue() == "[0/4] 1. Validate\n[1/4] 2. Stage\n"


def test_cli_reports_bad_parameters_before_any_kernel(cli) -> None:
    res = cli("run", "A_MLOps_Pipeline", "-p", "on_clash", "sometimes")
    assert res.exit_code == 1
    assert "parameter 'on_clash' must be one of 'error', 'overwrite', 'new'" in res.stderr
    res = cli("run", "A_MLOps_Pipeline", "-p", "resource_configs", "{n_cpus: 0}")
    assert res.exit_code == 1 and "wmla_deployment.resource_configs.n_cpus" in res.stderr
    res = cli("run", "No_Such_Template")
    assert res.exit_code == 1 and "no template named 'No_Such_Template'" in res.stderr
    assert not (Path(os.environ["MLOPS_HOME"]) / "runs").exists()


def test_cli_templates_list_and_clone(cli, tmp_path: Path) -> None:
    res = cli("templates", "list")
    assert res.exit_code == 0
    assert "A_MLOps_Pipeline: stage a model" in res.stdout
    assert "A2_WMLA_Model_Deploy: deploy a staged model" in res.stdout
    assert "A_MLOps_Pipeline: A_MLOps_Pipeline" not in res.stdout
    assert "on_clash (str, one of 'error', 'overwrite', 'new') = \"error\"" in res.stdout
    listed = json.loads(cli("templates", "list", "--json").stdout)
    assert "resource_configs" in [
        p["name"] for t in listed if t["name"] == "A_MLOps_Pipeline" for p in t["parameters"]
    ]
    dest = tmp_path / "stage.ipynb"
    res = cli(
        "templates", "clone", "A_MLOps_Pipeline", dest, "-p", "model_name", "mine", "-p", "on_clash", "new"
    )
    assert res.exit_code == 0, res.output
    (injected,) = [
        c for c in nbformat.read(dest, as_version=4).cells if "parameters" in c.metadata.get("tags", [])
    ]
    assert 'model_name = "mine"' in injected.source and '"new"] = "new"' in injected.source
    assert cli("templates", "clone", "A_MLOps_Pipeline", dest).exit_code == 1


def test_cli_runs_list_show_and_clone(cli, workspace: Workspace, tmp_path: Path) -> None:
    assert cli("runs", "list").stdout.strip() == "no runs"
    rec = fake_run(
        workspace,
        1,
        status="failed",
        error={"summary": "ValueError: bad", "heading": "Step 1"},
        parameters={"count": 1},
        results={"deployment_name": "dep-1"},
    )
    (rec.dir / TEMPLATE_COPY).write_bytes(make_template(tmp_path / "T_Test.ipynb").read_bytes())
    fake_run(workspace, 2)
    res = cli("runs", "list", "--status", "failed")
    assert res.exit_code == 0 and rec.short_id in res.stdout and "ValueError: bad" in res.stdout
    assert len(res.stdout.strip().splitlines()) == 2
    assert [r["run_id"] for r in json.loads(cli("runs", "list", "--json", "--name", "dep-1").stdout)] == [
        rec.run_id
    ]
    shown = cli("runs", "show", rec.run_id[:-1])
    assert shown.exit_code == 0
    assert "status: failed: ValueError: bad" in shown.stdout and "in step: Step 1" in shown.stdout
    assert json.loads(cli("runs", "show", rec.run_id, "--json").stdout)["notebook"] == str(rec.notebook)
    res = cli("runs", "clone", rec.short_id, tmp_path / "c.ipynb")
    assert res.exit_code == 0 and (tmp_path / "c.ipynb").is_file()
    res = cli("runs", "show", "nope")
    assert res.exit_code == 1 and "no run 'nope'" in res.stderr
