/**
 * The API layer against a fake server: what JupyterLab's ServerConnection answers is scripted
 * here, so the tests see exactly what the extension makes of each answer.
 */
import {
  ApiError,
  IJob,
  errorText,
  followJob,
  inRunsFolder,
  notebookPlan,
  post,
  requestAPI
} from '../src/api';
import { readSettings, SETTING_DEFAULTS } from '../src/settings';

const calls: { url: string; init: RequestInit }[] = [];
let answer: { status: number; body: string } = { status: 200, body: '{}' };
let answers: { status: number; body: string }[] = []; // taken first, one a call

jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.join('/').replace(/\/+/g, '/') }
}));

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: '/base/' }),
    makeRequest: async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      const answer = answers.shift() ?? currentAnswer();
      return {
        ok: answer.status < 400,
        status: answer.status,
        statusText: answer.status < 400 ? 'OK' : 'Bad Request',
        text: async () => answer.body
      };
    }
  }
}));

/** The error a call that must fail throws. */
async function refusal(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('the call succeeded');
}

function currentAnswer() {
  return answer;
}

beforeEach(() => {
  calls.length = 0;
  answer = { status: 200, body: '{}' };
  answers = [];
});

test('a GET goes under <base_url>mlops/ and returns the parsed answer', async () => {
  answer = { status: 200, body: '[{"name": "demo", "state": "started"}]' };
  const deployments = await requestAPI<{ name: string }[]>('deployments');
  expect(calls[0].url).toBe('/base/mlops/deployments');
  expect(deployments[0].name).toBe('demo');
});

test('post sends its body as JSON', async () => {
  await post('runs/r1/rerun', { params: { n: 1 }, secrets: {} });
  expect(calls[0].init.method).toBe('POST');
  expect(JSON.parse(calls[0].init.body as string)).toEqual({ params: { n: 1 }, secrets: {} });
});

test("a refusal keeps the server's message and hint", async () => {
  answer = {
    status: 400,
    body: '{"message": "no run r9", "hint": {"action": "runs.list", "text": "pick a listed run"}}'
  };
  const err = await refusal(requestAPI('runs/r9'));
  expect(err).toBeInstanceOf(ApiError);
  expect(err.message).toBe('no run r9');
  expect(err.hint).toEqual({ action: 'runs.list', text: 'pick a listed run' });
  expect(errorText(err)).toBe('no run r9: pick a listed run');
});

test('an answer that is not JSON is shown as its text, an empty one as the status', async () => {
  answer = { status: 502, body: 'Bad gateway from the proxy' };
  expect(errorText(await refusal(requestAPI('info')))).toBe('Bad gateway from the proxy');
  answer = { status: 400, body: '' };
  const empty = await refusal(requestAPI('info'));
  expect(empty).toBeInstanceOf(ApiError);
  expect(errorText(empty)).toBe('400 Bad Request');
});

test('errorText says what any thrown value is', () => {
  expect(errorText(new Error('boom'))).toBe('boom');
  expect(errorText('plain')).toBe('plain');
});

const job = (state: 'running' | 'ended', extra: Partial<IJob> = {}): IJob => ({
  job_id: 'j1',
  action: 'notebook_run',
  state,
  run_id: 'r-1',
  short_id: '1',
  progress: null,
  result: null,
  error: null,
  ...extra
});

test('followJob asks the progress route until the job ends and returns the outcome', async () => {
  const outcome = { run_id: 'r-1', short_id: '1', status: 'ok', error: null };
  answers = [
    { status: 200, body: JSON.stringify(job('running')) },
    { status: 200, body: JSON.stringify(job('ended', { result: outcome })) }
  ];
  const seen: string[] = [];
  const out = await followJob(job('running'), j => seen.push(j.state));
  expect(out).toEqual(outcome);
  expect(calls.map(c => c.url)).toEqual(['/base/mlops/jobs/j1', '/base/mlops/jobs/j1']);
  expect(seen).toEqual(['running', 'running']);
});

test('a job that ended without an outcome is an error saying why', async () => {
  const err = await refusal(
    followJob(job('ended', { error: "the job's process ended with exit code 9" }))
  );
  expect(err.message).toBe("the job's process ended with exit code 9");
  expect(calls).toEqual([]);
});

test('the notebook plan is asked with its path encoded', async () => {
  answer = { status: 200, body: '{"action": "template", "fields": []}' };
  const plan = await notebookPlan('my notes/a&b.ipynb');
  expect(calls[0].url).toBe('/base/mlops/notebooks/plan?path=my%20notes%2Fa%26b.ipynb');
  expect(plan.action).toBe('template');
});

test("only a notebook in a run's folder of the audit trail is offered as a run", () => {
  expect(inRunsFolder('ws/runs/20260101T000000Z-A1-abcd/A1.ipynb', 'ws/runs')).toBe(true);
  expect(inRunsFolder('runs/x/A1.ipynb', 'runs')).toBe(true);
  expect(inRunsFolder('x/A1.ipynb', '')).toBe(true); // the root is the trail's folder
  expect(inRunsFolder('ws/runs/A1.ipynb', 'ws/runs')).toBe(false); // no run's folder
  expect(inRunsFolder('ws/runs/x/y/A1.ipynb', 'ws/runs')).toBe(false);
  expect(inRunsFolder('ws/runs/x/run.json', 'ws/runs')).toBe(false);
  expect(inRunsFolder('ws/runsx/x/A1.ipynb', 'ws/runs')).toBe(false);
  expect(inRunsFolder('ws/runs/x/A1.ipynb', null)).toBe(false); // the trail is elsewhere
});

test('settings keep their defaults where a value is missing or wrong', () => {
  expect(readSettings({})).toEqual(SETTING_DEFAULTS);
  expect(
    readSettings({ openPanelOnStart: true, sidebarPageSize: 20.7, notifyAfterSeconds: 0 })
  ).toEqual({ openPanelOnStart: true, sidebarPageSize: 20, notifyAfterSeconds: 0 });
  expect(
    readSettings({ openPanelOnStart: 'yes', sidebarPageSize: 0, notifyAfterSeconds: -1 })
  ).toEqual(SETTING_DEFAULTS);
});
