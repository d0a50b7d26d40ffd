/**
 * The one change-feed follower of the page, against a scripted server: where it starts, how it
 * resumes after a failed request, what its listeners hear, and that disposing it stops it.
 */
import { IChange } from '../src/api';
import { ChangeFeed } from '../src/feed';

type Answer = { status: number; body: string } | 'fail';
const urls: string[] = [];
let script: Answer[] = [];
let waiting: (() => void) | null = null;

jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.join('/').replace(/\/+/g, '/') }
}));

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: '/base/' }),
    makeRequest: async (url: string) => {
      urls.push(url);
      const next = script.shift();
      if (next === undefined) {
        // a long poll with nothing new: it never answers (until the test ends)
        await new Promise<void>(resolve => (waiting = resolve));
        throw new Error('the test ended');
      }
      if (next === 'fail') {
        throw new TypeError('Failed to fetch');
      }
      return {
        ok: next.status < 400,
        status: next.status,
        statusText: 'OK',
        text: async () => next.body
      };
    }
  }
}));

const change = (seq: number, subject: string): IChange => ({ seq, kind: 'run', subject });
const answer = (events: IChange[], last: number): Answer => ({
  status: 200,
  body: JSON.stringify({ events, last })
});

/** Wait until the follower has asked `n` times. */
async function asked(n: number): Promise<void> {
  for (let i = 0; i < 200 && urls.length < n; i++) {
    await new Promise(resolve => setTimeout(resolve, 1));
  }
  expect(urls.length).toBeGreaterThanOrEqual(n);
}

beforeEach(() => {
  urls.length = 0;
  script = [];
});

afterEach(() => {
  waiting?.();
  waiting = null;
});

test('it starts where the feed stands, then brings each change after it, once for all listeners', async () => {
  script = [answer([], 7), answer([change(8, 'r1'), change(9, 'r2')], 9), answer([], 9)];
  const feed = new ChangeFeed(1);
  const heard: IChange[][] = [];
  const heardToo: IChange[][] = [];
  feed.changed.connect((_, changes) => heard.push(changes));
  feed.changed.connect((_, changes) => heardToo.push(changes));
  feed.start();
  feed.start(); // a second start is the same follower
  await asked(4);
  expect(urls).toEqual([
    '/base/mlops/events',
    '/base/mlops/events?since=7',
    '/base/mlops/events?since=9',
    '/base/mlops/events?since=9'
  ]);
  // the first (empty) batch says "read everything"; an empty poll after it is not announced
  expect(heard.map(b => b.map(c => c.seq))).toEqual([[], [8, 9]]);
  expect(heardToo).toEqual(heard);
  expect(feed.last).toBe(9);
  feed.dispose();
});

test('a failed request is asked again from the last change seen', async () => {
  script = [
    answer([], 3),
    'fail',
    { status: 502, body: 'Bad gateway' },
    answer([change(4, 'r')], 4)
  ];
  const feed = new ChangeFeed(1);
  const heard: number[][] = [];
  feed.changed.connect((_, changes) => heard.push(changes.map(c => c.seq)));
  feed.start();
  await asked(5);
  expect(urls.slice(1, 4)).toEqual([
    '/base/mlops/events?since=3',
    '/base/mlops/events?since=3',
    '/base/mlops/events?since=3'
  ]);
  expect(heard).toEqual([[], [4]]);
  feed.dispose();
});

test('a feed disposed while it asks tells nobody and asks nothing more', async () => {
  script = [answer([change(2, 'r')], 2), answer([change(3, 'r')], 3)];
  const feed = new ChangeFeed(1);
  const heard: IChange[][] = [];
  feed.changed.connect((_, changes) => heard.push(changes));
  feed.start();
  feed.dispose();
  await new Promise(resolve => setTimeout(resolve, 20));
  expect(urls).toEqual(['/base/mlops/events']);
  expect(heard).toEqual([]);
  expect(feed.isDisposed).toBe(true);
});
