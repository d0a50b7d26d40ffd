/** What the status bar item says for the counts it has. */
import { runningText } from '../src/status';

jest.mock('@lumino/widgets', () => ({ Widget: class {} })); // the item itself is not built here

test('the item names what runs and what trains, and idle when nothing does', () => {
  expect(runningText(null, 3)).toBe('MLOps'); // runs not counted yet
  expect(runningText(0, 0)).toBe('MLOps: idle');
  expect(runningText(2, 0)).toBe('MLOps: 2 running');
  expect(runningText(0, 1)).toBe('MLOps: 1 training');
  expect(runningText(2, 1)).toBe('MLOps: 2 running, 1 training');
});
