/**
 * The API layer against a fake server: what JupyterLab's ServerConnection answers is scripted
 * here, so the tests see exactly what the extension makes of each answer.
 */
import { ApiError, errorText, post, requestAPI } from '../src/api';

const calls: { url: string; init: RequestInit }[] = [];
let answer: { status: number; body: string } = { status: 200, body: '{}' };

jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.join('/').replace(/\/+/g, '/') }
}));

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: '/base/' }),
    makeRequest: async (url: string, init: RequestInit) => {
      calls.push({ url, init });
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

beforeEach(() => {
  calls.length = 0;
  answer = { status: 200, body: '{}' };
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
