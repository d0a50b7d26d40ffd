/**
 * The table widget's data handling, apart from the DOM: the rows of one page in the order the
 * user sorted them. Rows and columns arrive from Python as JSON data (never HTML).
 */

/** A cell's value as Python sends it. */
export type Cell = string | number | boolean | null;

/** One row: its `id` (what a selection reports) and a value per column key. */
export interface IRow {
  id: string;
  [key: string]: Cell;
}

/** One column: `key` into the rows, its header `label`, `sort` (the row key sorted on, e.g. an
 * ISO time behind a local one; default `key`), `tones` (value -> badge tone: ok, error, warn),
 * `optional` (hidden in a narrow panel). */
export interface IColumn {
  key: string;
  label: string;
  sort?: string;
  tones?: { [value: string]: string };
  optional?: boolean;
}

export interface IView {
  sortBy: string;
  ascending: boolean;
  page: number;
  pageSize: number;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Compare two cells: numbers as numbers, text in natural order, empty values always last. */
export function compareCells(a: Cell, b: Cell, ascending: boolean): number {
  const emptyA = a === null || a === '';
  const emptyB = b === null || b === '';
  if (emptyA || emptyB) {
    return emptyA === emptyB ? 0 : emptyA ? 1 : -1;
  }
  const order =
    typeof a === 'number' && typeof b === 'number' ? a - b : collator.compare(String(a), String(b));
  return ascending ? order : -order;
}

/** The rows in the view's order (a stable sort: equal rows keep Python's order). */
export function sortedRows(rows: IRow[], columns: IColumn[], view: IView): IRow[] {
  const column = columns.find(c => c.key === view.sortBy);
  if (!column) {
    return rows.slice();
  }
  const key = column.sort || column.key;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((x, y) => compareCells(x.row[key], y.row[key], view.ascending) || x.index - y.index)
    .map(x => x.row);
}

/** How many pages `count` rows take (at least one, so an empty table still has a page 1). */
export function pageCount(count: number, pageSize: number): number {
  return Math.max(1, Math.ceil(count / Math.max(1, pageSize)));
}

/** The page to show: the asked one within range, or the one holding `selected` when asked. */
export function pageOf(ordered: IRow[], view: IView, selected: string | null = null): number {
  const size = Math.max(1, view.pageSize);
  if (selected !== null) {
    const at = ordered.findIndex(r => r.id === selected);
    if (at >= 0) {
      return Math.floor(at / size);
    }
  }
  return Math.min(Math.max(0, view.page), pageCount(ordered.length, size) - 1);
}

/** The rows of page `page` (0-based). */
export function pageRows(ordered: IRow[], page: number, pageSize: number): IRow[] {
  const size = Math.max(1, pageSize);
  return ordered.slice(page * size, (page + 1) * size);
}

/** "11–20 of 57": where the page is in the rows, for the pager (and screen readers). */
export function rangeText(count: number, page: number, pageSize: number): string {
  if (count === 0) {
    return '0 of 0';
  }
  const size = Math.max(1, pageSize);
  const first = page * size + 1;
  return `${first}–${Math.min(count, first + size - 1)} of ${count}`;
}

/** The text a cell shows. */
export function cellText(value: Cell | undefined): string {
  return value === null || value === undefined ? '' : String(value);
}
