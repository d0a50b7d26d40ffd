"""Secrets in every encoding leave no trace in the workspace, from a template run or from a
deployment's kernel; credential variables outside the word list reach template kernels only when
declared; the papermill engine standing alone."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import psutil
import pytest
from helpers import byte_leaks, make_template

from mlops_widgets.masking import MASK, secret_forms
from mlops_widgets.runner import get_run, list_runs, run_template
from mlops_widgets.workspace import Workspace

SECRET = "Sk/9+q=a&b-s3cr3t~VALUE"  # characters each encoding rewrites
DB_PASSWORD = "db-PASSWD-value-7731"
WML_CREDS = "wml-CREDENTIALS-4411"

ENCODED_STEPS = [
    # an HTTP error printing the URL with the key (URL-encoded), as a client library does
    "import base64, json, urllib.parse\n"
    "from mlops_widgets.runner.record import record\n"
    "url = 'https://cpd.example/v1?apikey=' + urllib.parse.quote(api_key, safe='')\n"
    "print('GET', url)\n"
    "print('Authorization: Basic', base64.b64encode(('admin:' + api_key).encode()).decode())\n"
    "print(json.dumps({'k': api_key + '\"quoted\"'}))\n"
    "record(token_b64=base64.urlsafe_b64encode(api_key.encode()).decode(), url=url)",
    "import urllib.parse\nraise RuntimeError('403 Forbidden for url ' + urllib.parse.quote_plus(api_key))",
]


def test_no_secret_in_any_encoding_reaches_the_workspace(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.setenv("DB_PASSWD", DB_PASSWORD)  # credential-looking, outside the word list
    path = make_template(tmp_path / "Encoded.ipynb", 'api_key = ""  # the key', ENCODED_STEPS)
    rec = run_template(path, {"api_key": SECRET})
    assert rec.status == "failed"
    assert rec.error["summary"] == f"RuntimeError: 403 Forbidden for url {MASK}"
    assert rec.results["url"] == f"https://cpd.example/v1?apikey={MASK}"
    assert rec.results["token_b64"].startswith(MASK) and len(rec.results["token_b64"]) <= len(MASK) + 3
    assert list_runs(workspace)[0].error == rec.error["summary"]
    text = rec.notebook.read_text()
    assert f"GET https://cpd.example/v1?apikey={MASK}" in text and "Basic YWRtaW46" in text
    nbformat.validate(nbformat.read(rec.notebook, as_version=4))
    assert "403 Forbidden" in cli("runs", "list").stdout
    assert byte_leaks(workspace.root, SECRET, DB_PASSWORD) == []


SHORT = "pä5s"  # short (its base64 forms are found by decoding) and not ASCII
WORDY = "Grüße'!*()~ &x"  # composed letters, a quote, what URL encoders disagree on

FORM_STEPS = [
    "import base64, html, json, unicodedata, urllib.parse\n"
    "import requests\n"
    "for s in (short, wordy):\n"
    "    print(requests.Request('GET', 'https://h/' + s + '/x', params={'k': s}).prepare().url)\n"
    '    print(urllib.parse.quote(s, safe="!*\'()~"))  # encodeURIComponent\n'
    "    print(s.encode(), ascii(s), html.escape(s).replace('&#x27;', '&#39;'))\n"
    "    print(html.escape(s).encode('ascii', 'xmlcharrefreplace').decode())\n"
    "    print(json.dumps(s).replace('\\\\u00fc', '\\\\u00FC').replace('\\\\u00e4', '\\\\u00E4'))\n"
    "    print(unicodedata.normalize('NFD', s))\n"
    "    for user in (b'', b'admin:', b'user:'):\n"
    "        print('Basic', base64.b64encode(user + s.encode()).decode())\n"
    "import os\n"
    "from mlops_widgets.runner.record import record\n"
    "record(env={k: os.environ.get(k) for k in ('SSHPASS', 'GITHUB_PAT', 'BEARER', 'JWT', 'DATABASE_URL', 'SLACK_WEBHOOK_URL')})",
]
AMBIENT = {
    "SSHPASS": "ssh-pass-0001",
    "GITHUB_PAT": "ghp_pat-0002-value",
    "BEARER": "bearer-0003-value",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.jwt-0004",
    "DATABASE_URL": "postgres://app:db-pw-0005@db.internal/prod",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/hook-0006-token",
}


def test_the_forms_users_produce_are_masked_and_credential_variables_withheld(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AMBIENT.items():
        monkeypatch.setenv(name, value)
    path = make_template(tmp_path / "Forms.ipynb", 'short = ""  # secret\nwordy = ""  # secret', FORM_STEPS)
    rec = run_template(path, secrets={"short": SHORT, "wordy": WORDY})
    assert rec.ok, rec.error
    assert rec.results["env"] == dict.fromkeys(AMBIENT)  # none reaches a template kernel
    text = rec.notebook.read_text()
    assert text.count("Basic " + MASK) >= 3 and "https://h/" + MASK in text  # the short one whole
    secrets = [SHORT, WORDY, *AMBIENT.values(), "db-pw-0005", "hook-0006-token"]
    assert byte_leaks(workspace.root, *secrets) == []


CHECK_ENV = (
    "import os\nfrom mlops_widgets.runner.record import record\n"
    "record(db=os.environ.get('DB_PASSWD'), wml=os.environ.get('WML_CREDENTIALS'))\n"
    "print('db is', os.environ.get('DB_PASSWD'))"
)


def test_credential_variables_outside_the_word_list_need_a_declaration(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWD", DB_PASSWORD)
    monkeypatch.setenv("WML_CREDENTIALS", WML_CREDS)
    path = make_template(tmp_path / "Env.ipynb", "n = 1  # unused", [CHECK_ENV])
    rec = run_template(path)
    assert rec.ok and rec.results == {"db": None, "wml": None}

    monkeypatch.setenv("MLOPS_KERNEL_CREDENTIALS", "DB_PASSWD, OTHER")
    rec = run_template(path)
    assert rec.ok and rec.results == {"db": MASK, "wml": None}  # passed, and scrubbed
    assert f"db is {MASK}" in rec.notebook.read_text()
    assert byte_leaks(workspace.root, DB_PASSWORD, WML_CREDS) == []
    assert get_run(rec.run_id).parameters == {}


def test_the_engine_is_papermills_mlops_engine(tmp_path: Path, workspace: Workspace) -> None:
    """papermill finds the engine through its entry point and hands it the kernel's environment."""
    src = make_template(
        tmp_path / "Plain.ipynb",
        'greeting = "hi"  # a word',
        ["import os\nprint(greeting, os.environ['ONLY_HERE'])"],
    )
    out = tmp_path / "out.ipynb"
    seen: list[int] = []

    class Hooks:
        def kernel_started(self, km) -> None:
            seen.append(-1)

        def cell_start(self, index: int) -> None:
            seen.append(index)

        def cell_complete(self, index: int) -> None:
            pass

    papermill.execute_notebook(
        str(src),
        str(out),
        parameters={"greeting": "hello"},
        engine_name="mlops",
        progress_bar=False,
        kernel_env={"ONLY_HERE": "from-the-engine", "PATH": __import__("os").environ["PATH"]},
        hooks=Hooks(),
    )
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[-1].outputs[0].text == "hello from-the-engine\n"
    assert seen[0] == -1 and seen[1:] == list(range(len(nb.cells)))


LEAKY_KERNEL = """\
import base64, json, os, sys, urllib.parse
import redhareapiversion
from redhareapi import Kernel


def forms():
    k = API_KEY
    return [k, urllib.parse.quote(k, safe=""), urllib.parse.quote_plus(k), base64.b64encode(k.encode()).decode(),
            base64.urlsafe_b64encode(k.encode()).decode(), json.dumps(k), repr(k)]


class LeakyKernel(Kernel):
    def on_kernel_start(self, kernel_context):
        for f in forms():
            print("starting with", f, flush=True)
            print("stderr", f, file=sys.stderr, flush=True)

    def on_task_invoke(self, task_context):
        for f in forms():
            print("task with", f, flush=True)
        if json.loads(task_context.get_input_data()).get("fail"):
            raise RuntimeError("403 Forbidden for url https://cpd.example/v1?apikey=" + urllib.parse.quote(API_KEY, safe=""))
        task_context.set_output_data(json.dumps({"ok": True, "env": sorted(os.environ)}))


if __name__ == "__main__":
    LeakyKernel().run()
"""


def test_no_secret_of_a_deployment_reaches_the_workspace_or_its_logs(
    tmp_path: Path, workspace: Workspace, backend, monkeypatch: pytest.MonkeyPatch, cli, example_paths
) -> None:
    """A deployment's secret custom arg, printed by its kernel in every encoding (and in an
    error): masked in the kernel log and `deploy logs`, absent from every byte of the workspace
    (the A2 run, its notebook, the index, service and kernel logs, the deployment's files).
    The service is started by the A2 run's kernel: its kernels still get none of the run's or
    the notebook's variables."""
    from helpers import stage

    from mlops_widgets.backends.local.inference import stop_service

    dep = tmp_path / "leaky"
    dep.mkdir()
    (dep / "kernel.py").write_text(LEAKY_KERNEL)
    asset_id = stage(backend, example_paths, dep)
    monkeypatch.setenv("API_KEY", SECRET)
    monkeypatch.setenv("JPY_PARENT_PID", "1")  # as in a notebook
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        res = cli(
            "deploy", "create", "--name", "leaky", "--model-asset-id", asset_id, "--custom-arg", "API_KEY"
        )
        assert res.exit_code == 0, res.output
        answer = json.loads(cli("deploy", "infer", "--name", "leaky", "--data", "{}").stdout)
        assert answer["ok"] is True
        service_pid = json.loads((workspace.root / "inference" / "service.json").read_text())["pid"]
        assert "MLOPS_RUN_ID" in psutil.Process(service_pid).environ()  # the A2 run's kernel started it
        assert not {"MLOPS_RUN_ID", "JPY_PARENT_PID", "MPLBACKEND"} & set(answer["env"])
        failed = cli("deploy", "infer", "--name", "leaky", "--data", '{"fail": true}')
        assert failed.exit_code == 1 and "403 Forbidden" in failed.stderr
        logs = cli("deploy", "logs", "--name", "leaky")
        assert logs.exit_code == 0
        printed = [line for line in logs.stdout.splitlines() if " with " in line or "] stderr " in line]
        assert len(printed) >= 3 * 7 and all(MASK in line for line in printed), logs.stdout
        for shown in (res.output, failed.output, logs.output):
            assert not [f for f in secret_forms(SECRET) if f in shown]
    finally:
        stop_service(workspace)
    assert byte_leaks(workspace.root, SECRET) == []
