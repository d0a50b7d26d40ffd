"""How the CLI says what fixes an error: each hint action rendered as the flag or the command.

Messages never name a flag (the panel shows them too); the fix travels as a `Hint` whose
`action` is looked up here. An action without an entry prints the hint's plain text. Keep the
table in alphabetical order; a rendering may use the hint's `args` as `{name}` fields.
"""

from __future__ import annotations

from mlops_widgets.errors import Hint, MlopsError, render_error, render_hint

RENDERINGS: dict[str, str] = {
    "archive.limit": "if the archive is genuine, raise the limit: export {variable}=<a larger value>",
    "clone.replace": "choose another name, or replace it with --force",
    "config.list": "see `mlops config list`",
    "config.replace": "add it again with -f to replace the existing entry",
    "config.with_key": "use --with-key",
    "config.without_key": "drop --with-key",
    "cpd.credentials": "set USERNAME and APIKEY in the environment",
    "cpd.measurement_wait": "allow OpenScale more time: export MLOPS_CPD_MEASUREMENT_WAIT=<seconds>",
    "demo.busy": "wait until it ends, or give this one another --workspace",
    "demo.real_model": "make it with `bash tools/make_deepliif_runtime.sh`, or name its Python in $MLOPS_DEEPLIIF_PYTHON",
    "deploy.delete": "delete it first: `mlops deploy delete --name {deployment}`",
    "deploy.kernel_filename": "name it with --kernel-filename (found: {found})",
    "deploy.list": "see `mlops deploy list`",
    "deploy.logs": "see `mlops deploy logs --name {deployment}`",
    "deploy.start": "set {env} and run `mlops deploy start --name {deployment}`",
    "deploy.stop": "stop it first: `mlops deploy stop --name {deployment}`",
    "deploy.view": "see `mlops --backend cpd deploy view --name {name}`, or allow more time with "
    "$MLOPS_CPD_EDI_TIMEOUT",
    "monitor.create": "run `mlops monitor create --name {name}` first",
    "monitor.delete": "delete them with `mlops monitor delete --name NAME`",
    "monitor.notify": "use --webhook URL or --command CMD",
    "monitor.notify.list": "see `mlops monitor notify --list`",
    "monitor.publish": "publish it with `mlops --backend cpd monitor publish --monitor {monitor}`",
    "monitor.publish.local": "drop --software-spec",
    "monitor.publish.software_spec": "name the runtime with --software-spec or $MLOPS_CPD_SOFTWARE_SPEC",
    "monitor.register": "register it with `mlops monitor register --monitor {monitor} --provider {provider}`",
    "monitor.schedule": "set one with `mlops monitor schedule --name {name} --every REPEAT`",
    "monitor.schedule.longer": "use --every {every} or longer (the minimum comes from MLOPS_MIN_SCHEDULE_S)",
    "monitor.schedule.minutes": "use --every with m, h or d (e.g. 2m)",
    "monitor.thresholds": "`mlops monitor thresholds --monitor {monitor}` prints a monitor's default thresholds",
    "provider.create": 'create it with `mlops provider create --name "{name}"` (template C1_OpenScale_Dummy_ML_Provider)',
    "runs.clone": "pass them again: `mlops runs clone {run} DEST -p NAME VALUE` for each of: {params}",
    "runs.list": "see `mlops runs list`",
    "runs.rerun": "pass them again: `mlops runs rerun {run} -p NAME VALUE` for each of: {params}",
    "runtime.add": "add it with `mlops runtime add {name} --python PATH`, or name one of `mlops runtime list` "
    "in model.json",
    "runtime.delete": "delete it first: `mlops runtime delete {name}`",
    "runtime.list": "see `mlops runtime list`",
    "score.output": "give an output folder with -p output_dir FOLDER",
    "stage.deployed": "delete that deployment first (`mlops deploy delete --name {deployment}`) or stage with "
    "--new instead of --force",
    "stage.first": "stage a model with `mlops prepare stage`",
    "stage.general_dependency": "upload {name} to the space, or leave it out of the general dependencies",
    "stage.new": "stage the model and its dependency again with `mlops prepare stage`",
    "stage.replace": "use --force to replace them, or --new to add new ones beside them",
    "stage.retry": "run the same `mlops prepare stage` again to replace the entries as they are now",
    "train.devices": "ask for fewer devices with -p devices_per_worker N (0 runs on the CPU; {available} here)",
    "train.distributed": "choose a distributed framework with -p framework distPyTorch, or -p workers 1",
    "train.main": "include {main} in -p files, or name an included file with -p main_file FILE",
    "train.wait": "follow it with `mlops train status {job_id}` until it has finished, or submit it again",
}


def render(hint: Hint) -> str:
    """The CLI's words for `hint`."""
    return render_hint(hint, RENDERINGS)


def error_text(error: MlopsError) -> str:
    """The line(s) the CLI prints for `error`: the message, then the rendered hint."""
    return render_error(error, RENDERINGS)
