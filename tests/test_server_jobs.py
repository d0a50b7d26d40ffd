"""Template runs started through the server extension execute as jobs in a process of their own
(mlops_widgets.server.jobs and worker): a failing cpd run, IBM's SDKs and all, leaves the server
process's environment, warning filters and TLS defaults as they were, and a refusal before the
run starts comes back as the runner's error. The Jobs object here is the one the server holds;
test_lab_extension.py drives it through a real JupyterLab."""

from __future__ import annotations

import asyncio
import os
import ssl
import warnings
from typing import Any

import pytest
from fakecpd.fixtures import *  # noqa: F403  (pytest fixtures)

from mlops_widgets.errors import MlopsError
from mlops_widgets.runner import get_run, run_template
from mlops_widgets.server.jobs import Jobs
from mlops_widgets.workspace import Workspace


def _process_state() -> tuple[Any, ...]:
    return (
        dict(os.environ),
        list(warnings.filters),
        ssl._create_default_https_context,
        ssl.create_default_context,
    )


async def _until_ended(jobs: Jobs, job_id: str) -> dict[str, Any]:
    job = jobs.get(job_id)
    await asyncio.wait_for(job.ended.wait(), timeout=240)  # a failsafe, not a timing
    return job.view()


def test_a_failing_cpd_run_leaves_the_server_process_as_it_was(
    cpd_env: dict[str, str], workspace: Workspace
) -> None:
    first = run_template(
        "A3_OpenScale_Configuration", {"deployment_name": "nowhere"}, workspace=workspace, backend="cpd"
    )
    assert first.status == "failed"  # nothing of it exists on the cluster
    before = _process_state()

    async def scenario() -> dict[str, Any]:
        jobs = Jobs(workspace.root, "cpd")
        job = await jobs.start("rerun", {"run_id": first.run_id, "params": {}}, {})
        assert job.run_id and job.run_id != first.run_id
        return await _until_ended(jobs, job.id)

    view = asyncio.run(scenario())
    assert view["result"]["status"] == "failed", view
    assert view["result"]["error"] == first.error["summary"]  # the same failure as run directly
    again = get_run(view["run_id"], workspace)
    assert again.status == "failed" and again.rerun_of == first.run_id
    assert again.process["pid"] != os.getpid()  # ran in the job's process
    assert _process_state() == before


def test_a_refused_run_is_the_runners_error_and_starts_nothing(workspace: Workspace) -> None:
    first = run_template(
        "C1_OpenScale_Dummy_ML_Provider", {"service_provider_name": "P"}, workspace=workspace
    )
    assert first.ok, first.error

    async def scenario() -> None:
        jobs = Jobs(workspace.root, "local")
        with pytest.raises(MlopsError, match="nope"):
            await jobs.start("rerun", {"run_id": first.run_id, "params": {"nope": 1}}, {})
        with pytest.raises(MlopsError, match="no run"):
            await jobs.start("rerun", {"run_id": "nosuchrun", "params": {}}, {})

    asyncio.run(scenario())
    from mlops_widgets.runner import list_runs

    assert [r.run_id for r in list_runs(workspace)] == [first.run_id]


def test_a_rerun_through_the_rest_api_leaves_the_record_the_cli_leaves(
    cli: Any, workspace: Workspace
) -> None:
    from mlops_widgets.runner import list_runs

    first = run_template(
        "C1_OpenScale_Dummy_ML_Provider", {"service_provider_name": "P"}, workspace=workspace
    )
    assert first.ok, first.error
    assert cli("runs", "rerun", first.run_id).exit_code == 0

    async def scenario() -> dict[str, Any]:
        jobs = Jobs(workspace.root, "local")
        job = await jobs.start("rerun", {"run_id": first.run_id, "params": {}}, {})
        return await _until_ended(jobs, job.id)

    view = asyncio.run(scenario())
    newer = [get_run(r.run_id, workspace) for r in list_runs(workspace) if r.run_id != first.run_id]
    (by_rest,) = [r for r in newer if r.run_id == view["run_id"]]
    (by_cli,) = [r for r in newer if r.run_id != view["run_id"]]

    def shape(r: Any) -> tuple[Any, ...]:
        return (
            r.kind,
            r.template,
            r.parameters,
            r.rerun_of,
            r.status,
            r.backend,
            r.secret_names,
            sorted(r.results),
        )

    assert shape(by_cli) == shape(by_rest)
