"""`mlops demo` and `mlops lab`: the workflow end to end on the embedded backend."""

from __future__ import annotations

import click

from mlops_widgets.cli._common import CliContext, echo_table, pass_obj


@click.command()
@click.option("--workspace", "demo_workspace", type=click.Path(file_okay=False),
              help="Workspace for the demo (default: the global --workspace, else ./.mlops).")
@pass_obj
def demo(obj: CliContext, demo_workspace: str | None) -> None:
    """Validate the bundled example config, stage the bundled model and deployment folder,
    and list the result."""
    from mlops_widgets import examples
    from mlops_widgets.backends import get_backend
    from mlops_widgets.config import load_config
    from mlops_widgets.ops import space
    from mlops_widgets.workspace import Workspace

    ws = Workspace(demo_workspace or obj.workspace)
    backend = get_backend("local", ws)
    click.echo(f"workspace: {ws.root}")
    loaded = load_config(examples.CONFIG, with_key=False)
    click.echo(f"1/3 config {examples.CONFIG.name}: valid")
    (entry,) = loaded.entries.values()
    result = space.stage(backend, examples.MODEL, examples.DEPLOYMENT, entry, on_clash="new")
    click.echo(f"2/3 staged: model asset id {result['model_asset_id']}")
    click.echo("3/3 entries in the deployment metadata:")
    rows = [(k, str(e.get("model_name")), str(e.get("model_asset"))) for k, e in space.list_entries(backend).items()]
    echo_table(("MODEL ASSET ID", "MODEL NAME", "MODEL ASSET"), rows)


@click.command()
@click.option("--workspace", "lab_workspace", type=click.Path(file_okay=False),
              help="Workspace the panel opens (default: the global --workspace, else ./.mlops).")
@click.option("--port", type=int, default=8888, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@pass_obj
def lab(obj: CliContext, lab_workspace: str | None, port: int, no_browser: bool) -> None:
    """Start JupyterLab (on 127.0.0.1) on a notebook that opens the MLOps panel on the workspace."""
    import importlib.util
    import subprocess
    import sys

    from mlops_widgets.examples.notebook import write_panel_notebook
    from mlops_widgets.workspace import Workspace

    if importlib.util.find_spec("jupyterlab") is None:
        raise click.ClickException("JupyterLab is not installed: pip install 'mlops-widgets[lab]'")
    ws = Workspace(lab_workspace or obj.workspace)
    notebook = write_panel_notebook(ws.root, ws.root)
    cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={ws.root}", f"--LabApp.default_url=/lab/tree/{notebook.name}"]
    if no_browser:
        cmd.append("--no-browser")
    click.echo(f"JupyterLab on {notebook} (Ctrl-C to stop)", err=True)
    raise SystemExit(subprocess.call(cmd))
