/** The table widget's order and pages, as the user sees them after clicking a header or Next. */
import { IColumn, IRow, cellText, pageOf, pageRows, rangeText, sortedRows } from '../src/tabledata';

const columns: IColumn[] = [
  { key: 'time', label: 'Started', sort: 'started_at' },
  { key: 'name', label: 'Name' },
  { key: 'workers', label: 'Workers' }
];

const rows: IRow[] = [
  {
    id: 'a',
    time: '2026-01-02 09:00:00',
    started_at: '2026-01-02T08:00:00Z',
    name: 'run10',
    workers: 10
  },
  {
    id: 'b',
    time: '2026-01-01 23:00:00',
    started_at: '2026-01-01T22:00:00Z',
    name: 'run9',
    workers: 9
  },
  { id: 'c', time: '', started_at: null, name: '', workers: 2 }
];

const view = { sortBy: '', ascending: true, page: 0, pageSize: 2 };

test('a column sorts on its sort key, in natural order, empty values last either way', () => {
  expect(sortedRows(rows, columns, { ...view, sortBy: 'time' }).map(r => r.id)).toEqual([
    'b',
    'a',
    'c'
  ]);
  expect(
    sortedRows(rows, columns, { ...view, sortBy: 'time', ascending: false }).map(r => r.id)
  ).toEqual(['a', 'b', 'c']);
  expect(sortedRows(rows, columns, { ...view, sortBy: 'name' }).map(r => r.id)).toEqual([
    'b',
    'a',
    'c'
  ]);
  expect(sortedRows(rows, columns, { ...view, sortBy: 'workers' }).map(r => r.id)).toEqual([
    'c',
    'b',
    'a'
  ]);
  expect(sortedRows(rows, columns, view).map(r => r.id)).toEqual(['a', 'b', 'c']); // as Python sent them
});

test('pages: the asked one within range, or the one holding the selected row', () => {
  expect(pageRows(rows, 1, 2).map(r => r.id)).toEqual(['c']);
  expect(pageOf(rows, { ...view, page: 7 })).toBe(1);
  expect(pageOf(rows, view, 'c')).toBe(1);
  expect(pageOf(rows, { ...view, page: 1 }, 'gone')).toBe(1);
  expect(pageOf([], { ...view, page: 3 })).toBe(0);
  expect(rangeText(3, 1, 2)).toBe('3–3 of 3');
  expect(rangeText(0, 0, 2)).toBe('0 of 0');
  expect(cellText(null)).toBe('');
  expect(cellText(0)).toBe('0');
});
