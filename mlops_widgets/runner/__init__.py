"""The template runner: every state-changing step runs as a parameterized notebook and leaves
an executed copy and a run record (the audit trail) that can be re-run or cloned.

Import-light: nothing here imports papermill or nbformat until a template is read or run.

Templates
---------
`templates/*.ipynb` in the repo, `mlops_widgets/templates/` in a wheel (both are searched,
the wheel's first). A template is: a code cell tagged `parameters` with one assignment per
parameter and a trailing `# comment` as its help, then per step a markdown heading saying what
the step does and a code cell calling `mlops_widgets.ops`. Cells record what they produced with
`record(...)`::

    # parameters cell
    from mlops_widgets import examples
    path_model: str = str(examples.MODEL)  # model file or folder to stage
    model_name = "deepliif-demo"           # free-text model name
    api_key = ""                           # secret: Cloud Pak for Data API key
    deploy = False                         # also deploy the staged model

    # a step cell
    from mlops_widgets import ops
    from mlops_widgets.runner.record import record
    result = ops.space.stage(ops.connect(), path_model, path_dependency, entry)
    record(model_asset_id=result["model_asset_id"])

Parameter type: the annotation when given (`str`, `int`, `float`, `bool`, `list`, `dict`,
`X | None`, `Literal["a", "b"]` for a choice), else the type of the default literal; a `None`
default without annotation accepts any value. A default may be code (e.g. a bundled example's
path); the parameters cell may import what it needs. A parameter is secret when its help
starts with `secret` or its name contains KEY, TOKEN, PASSWORD, SECRET or APIKEY (any case); its
default must be empty ("" or None; a template with another is refused when read).

Parameters bound to the deployment config (`CONFIG_PARAMETERS`: `entry` = a whole entry,
`model_name`, `resource_configs` = wmla_deployment.resource_configs, `monitors` =
openscale_custom_metric_provider, `deployment_name` = wmla_deployment.deployment_name) are
validated by `mlops_widgets.config.validate_entry` before any kernel starts, against the monitor
definitions of the run's workspace, so a run reports exactly the CLI's config errors;
`entry_from_parameters(...)` (same module) builds the entry in the template's cell the same way
(there $MLOPS_HOME is the run's workspace). A config parameter given as "" counts as not set.

Public API (all raise `MlopsError` subclasses with complete messages)
----------------------------------------------------------------------
list_templates() -> list[Template]
get_template(name_or_path) -> Template
    Template: .name, .path, .parameters (dict name -> Parameter), .steps (markdown headings),
    .description (the title without a leading "<name>:"), .hash (sha256 of the file), .secret_names.
    Parameter: .name, .type (str, e.g. "dict", "str | None", "any"), .default (the literal value;
    None when the default is code), .default_source, .help, .secret;
    .coerce(text) parses a command-line string (YAML for non-str types) into a value.
validate_parameters(template, params, *, workspace=None) -> dict
    Unknown names, wrong types, config errors (ConfigError, the CLI's messages; monitors checked
    against `workspace`'s definitions, default the current one); returns the parameters the run
    will use (normalized by the config model where bound to it).
entry_from_parameters(entry=None, *, workspace=None, **values) -> (entry, warnings)

run_template(template, params=None, *, secrets=None, workspace=None, backend=None,
             progress=None, cancel=None, timeout=None, rerun_of=None, cwd=None) -> RunRecord
    Validates, records the run `running` (refusing an unwritable workspace before anything
    executes), then executes the template through papermill's `mlops` engine (engine.py) in a
    fresh kernel (a warm one when kept: warm.py) whose environment carries MLOPS_HOME,
    MLOPS_BACKEND, MLOPS_RUN_ID and each secret as MLOPS_SECRET_<name>; the caller's
    credential-looking variables outside the secret words are left out unless declared in
    $MLOPS_KERNEL_CREDENTIALS (prepare.py).
    `secrets`: name -> value, for secret parameters and for extra secrets a template hands on
    (e.g. custom args of a deployment: read in the kernel with `get_secrets()`). A secret
    parameter not given is read from the caller's environment ($MLOPS_SECRET_<name>, $<name>,
    $<NAME>), else keeps its (empty) default. A secret shorter than 4 characters, or a word of the
    notebook format itself ("metadata"), is refused before any kernel starts: it could not be
    scrubbed. `progress(event: ProgressEvent)` is called from the
    running thread: event.run_id, .done, .total (code cells), .heading (current step's markdown
    heading), .status ("starting", "running", "ok", "failed", "cancelled", "interrupted"),
    .cell_index.
    Everything saved is scrubbed of every secret value in all its forms (plain, URL-encoded,
    base64 standard and URL-safe, escaped: mlops_widgets.masking), and of the values (8 or more)
    of the caller's credential-named environment variables (USER_ACCESS_TOKEN, APIKEY...: the
    kernel inherits them) except one the user wrote into a parameter (then it is plain data of
    the run). Only values are masked, never the notebook's structure: stream outputs are merged
    first (a secret printed a character at a time is whole again), and an output or cell still
    holding a secret in a key or a number is replaced by a note. `cancel`: a threading.Event;
    when set, the kernel is interrupted (killed if it does not stop) and the run is recorded
    "cancelled". `timeout`: seconds for the template's cells (counted from the first, once the
    kernel is up); past it the run is stopped the same way and recorded "failed" ("timed out
    after N s").
    SIGTERM/SIGHUP while the run is driven from the main thread stop it as "interrupted" (the
    notebook so far is saved), then the signal takes its course; a run left "running" by a
    killed process is finished "interrupted" by the next reader of the index.
    Never raises for a failed cell: the RunRecord says status "failed" with the error; call
    `record.raise_for_status()` to turn that into a `RunFailed(MlopsError)`. Validation errors
    raise before anything is recorded.

RunRecord (the parsed run.json): .run_id, .short_id, .template, .template_hash, .parameters
    (secrets removed), .secret_names, .backend, .workspace, .user, .host, .cwd, .started_at,
    .ended_at, .duration_s, .status, .error (dict: summary, ename, evalue, cell_index, heading;
    or None), .results (what the template recorded), .rerun_of, .package_version, .kind
    ("template" or "event"), .process (host, pid, start time), .warm_kernel, .dir (the run
    folder), .notebook (the executed notebook's path), .template_copy (the template as run),
    .ok, .raise_for_status(), .to_dict().
list_runs(workspace=None, *, template=None, status=None, deployment_name=None, since=None,
          until=None, limit=None) -> list[RunSummary]   (newest first; from the DB index)
    RunSummary (a NamedTuple): run_id, short_id, template, status, started_at, ended_at,
    duration_s, backend, deployment_name, error (summary), rerun_of, dir, notebook (absolute
    paths as str), kind; .to_dict().
events.record(workspace, action, params, result=None, error=None, *, deployment_name=None,
              backend=None, secrets=()) -> RunRecord
events.recording(workspace, action, params, ...)   a context manager recording ok or failed
    State changes that run no template ("deploy.start", "monitor.thresholds"...), kind "event",
    in the same index and listing; credential-named values and ambient credentials masked.
warm.keep_spare(enabled=True, *, workspace=None, backend=None)   keep a kernel started ahead
    for this process's runs (the panel does; the one-shot CLI does not); warm.spare_ready(t).
get_run(run, workspace=None) -> RunRecord     (full id, unique prefix of it or of the short id)
rerun(run, *, params=None, workspace=None, secrets=None, progress=None, cancel=None,
      timeout=None) -> RunRecord
    The stored template copy with the stored parameters (`params` replace some); secrets given
    again (argument or environment), an error naming every missing one; the new record's
    rerun_of is the old id. A stored parameter holding the mask (its value was scrubbed) is
    refused, naming it: give it again in `params` (`-p NAME VALUE`).
clone_template(template, dest, params=None, *, workspace=None, force=False) -> Path
clone_run(run, dest, workspace=None, *, params=None, force=False) -> Path
    An editable notebook with the parameters filled in (secrets as code reading the
    environment, never values); a masked stored parameter is refused as by rerun.

In the kernel (template cells)
------------------------------
mlops_widgets.runner.record.record(**values)   JSON values for the run record's results;
    outside the runner (a notebook run by hand) they are kept and printed.
mlops_widgets.runner.secrets.get_secrets() -> dict[str, str]   the secrets this run was given.
mlops_widgets.runner.secrets.secret(name) -> str   one secret (what the injected cell calls).

Audit trail
-----------
<workspace>/runs/<YYYYmmddTHHMMSSZ>-<template>-<short id>/ with `<template>.ipynb` (executed,
failed cells included, scrubbed of every secret value: sources, outputs, metadata),
`template.ipynb` (the template as run) and `run.json`; indexed in the workspace database
(`runs_runs`). Created `running` (a hidden folder renamed into place) when the run starts, each
file then replaced atomically: never half a file; what cells record goes to `results.jsonl` in
the run folder (masked by the kernel) until the run is saved.
"""

from __future__ import annotations

from mlops_widgets.runner import events, warm
from mlops_widgets.runner.clone import clone_run, clone_template
from mlops_widgets.runner.execute import ProgressEvent, rerun, run_template
from mlops_widgets.runner.params import (
    CONFIG_PARAMETERS,
    entry_from_parameters,
    validate_parameters,
)
from mlops_widgets.runner.templates import Parameter, Template, get_template, list_templates
from mlops_widgets.runner.trail import RunFailed, RunRecord, RunSummary, get_run, list_runs

__all__ = [
    "CONFIG_PARAMETERS",
    "Parameter",
    "ProgressEvent",
    "RunFailed",
    "RunRecord",
    "RunSummary",
    "Template",
    "clone_run",
    "clone_template",
    "entry_from_parameters",
    "events",
    "get_run",
    "get_template",
    "list_runs",
    "list_templates",
    "rerun",
    "run_template",
    "validate_parameters",
    "warm",
]
