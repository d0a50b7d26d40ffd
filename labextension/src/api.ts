/**
 * Calls to the server extension's REST endpoints under `<base_url>mlops/`, through
 * JupyterLab's ServerConnection: it adds the token and the XSRF header Jupyter checks.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** How often a running job's progress is asked for. */
export const JOB_POLL_MS = 500;

export interface IHint {
  action: string;
  text: string;
}

/** An error the server explained: its message and, when known, what fixes it. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint: IHint | null = null
  ) {
    super(message);
  }
}

export interface IInfo {
  workspace: string;
  workspace_shown: string;
  /** The audit trail's folder relative to the server's root; null when outside it. */
  runs_shown: string | null;
  backend: string;
  open_panel: boolean;
}

export interface IDeployment {
  name: string;
  state: string;
  status: string;
  kernels: number;
  model_asset_id: string | null;
  url: string | null;
  error: string | null;
  alerts: number;
}

export interface IRunSummary {
  run_id: string;
  short_id: string;
  template: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  duration_s: number | null;
  deployment_name: string | null;
  error: string | null;
  rerun_of: string | null;
  kind: string;
}

/** A training job as `GET training` lists it (the Train tab shows the rest). */
export interface ITrainingJob {
  id: string;
  state: 'submitted' | 'running' | 'finished' | 'failed' | 'killed';
  framework: string | null;
  created_at: string | null;
  started_at: string | null;
  ended_at: string | null;
}

export interface IRunRecord extends IRunSummary {
  parameters: Record<string, unknown>;
  parameter_help: Record<string, string>;
  secret_names: string[];
  backend: string;
  user: string;
  results: Record<string, unknown>;
}

export interface IRunOutcome {
  run_id: string;
  short_id: string;
  status: string;
  error: string | null;
}

/** A template run the server executes as a job in a process of its own. */
export interface IJob {
  job_id: string;
  action: string;
  state: 'running' | 'ended';
  run_id: string | null;
  short_id: string | null;
  progress: { status: string; done: number; total: number; heading: string | null } | null;
  result: IRunOutcome | null;
  error: string | null;
}

/** One change of the workspace's change feed (`mlops/events`): a run, job or alert changed. */
export interface IChange {
  seq: number;
  kind: string;
  subject: string;
  [state: string]: unknown;
}

export interface IChanges {
  events: IChange[];
  last: number;
}

/**
 * What a notebook is to the audit trail (`notebooks/plan`), so which one action it offers:
 * "open" its run (an executed run's notebook), "clone" (run a clone's parameters cell) or
 * "template" (run it as a template, its parameters asked in a form).
 */
export interface INotebookPlan {
  action: 'open' | 'clone' | 'template';
  run_id?: string;
  short_id?: string;
  origin?: { run_id?: string; template: string };
  parameters?: Record<string, unknown>;
  template?: string;
  fields?: IField[];
  secret_names?: string[];
}

/** A parameter a template takes, as the server describes it (a form's field). */
export interface IField {
  name: string;
  type: string;
  default: unknown;
  default_source: string;
  help: string;
  secret: boolean;
  choices: unknown[] | null;
}

/** The notebook's plan (its path relative to the server's root). */
export function notebookPlan(path: string): Promise<INotebookPlan> {
  return requestAPI<INotebookPlan>(`notebooks/plan?path=${encodeURIComponent(path)}`);
}

/**
 * Whether `path` (relative to the server's root) can be a run's executed notebook: a notebook
 * in a run's folder of the workspace's audit trail (`runs`: where the file browser shows it,
 * null when outside the browser's folder). The server decides; this only picks the menu entry.
 */
export function inRunsFolder(path: string, runs: string | null): boolean {
  if (runs === null || !path.endsWith('.ipynb')) {
    return false;
  }
  const prefix = runs ? `${runs}/` : '';
  return path.startsWith(prefix) && path.slice(prefix.length).split('/').length === 2;
}

export async function requestAPI<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops', endpoint);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new ApiError(
      (data && data.message) || `${response.status} ${response.statusText}`,
      (data && data.hint) || null
    );
  }
  return data as T;
}

export function post<T>(endpoint: string, body: unknown): Promise<T> {
  return requestAPI<T>(endpoint, {
    method: 'POST',
    body: JSON.stringify(body)
  });
}

/**
 * Follow a started job (the 202 answer of a run's route) on its progress route until it ends;
 * `onProgress` hears each look. Returns the run's outcome; a job that ended without one (its
 * process died) is thrown as an ApiError saying so.
 */
export async function followJob(
  started: IJob,
  onProgress?: (job: IJob) => void
): Promise<IRunOutcome> {
  let job = started;
  while (job.state !== 'ended') {
    onProgress?.(job);
    await new Promise(resolve => setTimeout(resolve, JOB_POLL_MS));
    job = await requestAPI<IJob>(`jobs/${job.job_id}`);
  }
  if (!job.result) {
    throw new ApiError(job.error || `run ${job.short_id ?? ''} ended without an outcome`);
  }
  return job.result;
}

/**
 * Start a template run (`endpoint` answers 202 with its job once the run is recorded) and
 * follow it (followJob); a refusal before the run starts is thrown as the server's ApiError.
 */
export async function runJob(
  endpoint: string,
  body: unknown,
  onProgress?: (job: IJob) => void
): Promise<IRunOutcome> {
  return followJob(await post<IJob>(endpoint, body), onProgress);
}

/** Ask a running job's run to stop (recorded as cancelled). */
export function cancelJob(jobId: string): Promise<IJob> {
  return post<IJob>(`jobs/${jobId}/cancel`, {});
}

/** What a job is doing, in words: "step 2/5: Deploy the model". */
export function jobProgressText(job: IJob): string {
  const p = job.progress;
  if (!p) {
    return 'starting';
  }
  return `step ${p.done}/${p.total}${p.heading ? ': ' + p.heading : ''}`;
}

/** The text a user reads for an error: the message and the plain words of its hint. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    return err.hint ? `${err.message}: ${err.hint.text}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
