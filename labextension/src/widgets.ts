/**
 * The panel's own ipywidgets, drawn with JupyterLab's UI: a table (sortable, paginated, rows
 * selectable with mouse or keyboard, status values as theme-coloured badges) and a confirmation
 * asked through JupyterLab's dialog. Python sends data as JSON; every text here is set with
 * textContent, never parsed as HTML.
 *
 * ui-components' React `Table` is not used: it sorts by header clicks only (no keyboard, no
 * aria-sort), keeps its sort to itself and has no selection nor pages. This table takes its
 * classes (`jp-sortable-table`...) and caret icons, so it looks like JupyterLab's.
 */
import { JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { caretDownIcon, caretUpIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import {
  DOMWidgetModel,
  DOMWidgetView,
  IJupyterWidgetRegistry,
  IWidgetRegistryData,
  WidgetModel
} from '@jupyter-widgets/base';

import { el } from './format';
import {
  IColumn,
  IRow,
  IView,
  cellText,
  pageCount,
  pageOf,
  pageRows,
  rangeText,
  sortedRows
} from './tabledata';

export const MODULE_NAME = 'mlops-widgets';
/** The Python models ask for ^MODULE_VERSION (mlops_widgets/widgets/_table.py, _dialog.py). */
export const MODULE_VERSION = '0.1.0';

const MODULE = {
  _model_module: MODULE_NAME,
  _model_module_version: MODULE_VERSION,
  _view_module: MODULE_NAME,
  _view_module_version: MODULE_VERSION
};

export class TableModel extends DOMWidgetModel {
  defaults(): any {
    return {
      ...super.defaults(),
      ...MODULE,
      _model_name: 'TableModel',
      _view_name: 'TableView',
      columns: [],
      rows: [],
      value: null,
      sort_by: '',
      ascending: true,
      page: 0,
      page_size: 10,
      label: '',
      empty: ''
    };
  }
}

/** A table of rows as a grid: one row selected (reported to Python as `value`). */
export class TableView extends DOMWidgetView {
  render(): void {
    this.el.classList.add('mlops-table-widget');
    this.listenTo(
      this.model,
      'change:rows change:columns change:sort_by change:ascending change:page change:page_size change:label change:empty',
      () => this._draw()
    );
    // A selection made in Python (a new run) shows on its page.
    this.listenTo(this.model, 'change:value', () => {
      this._page = null;
      this._draw();
    });
    this._draw();
  }

  private get _view(): IView {
    return {
      sortBy: this.model.get('sort_by'),
      ascending: this.model.get('ascending'),
      page: this.model.get('page'),
      pageSize: this.model.get('page_size')
    };
  }

  private _draw(): void {
    const columns: IColumn[] = this.model.get('columns');
    const rows: IRow[] = this.model.get('rows');
    const selected: string | null = this.model.get('value');
    const view = this._view;
    const ordered = sortedRows(rows, columns, view);
    const page = pageOf(
      ordered,
      { ...view, page: this._page ?? view.page },
      this._page === null ? selected : null
    );
    this._page = page;
    const shown = pageRows(ordered, page, view.pageSize);
    const focused = this._focusedKey();

    const table = el('table', 'jp-sortable-table mlops-grid');
    table.setAttribute('role', 'grid');
    table.setAttribute('aria-label', this.model.get('label') || 'table');
    const head = el('tr', 'jp-sortable-table-tr');
    for (const column of columns) {
      head.append(this._header(column, view));
    }
    table.append(el('thead'), el('tbody'));
    table.tHead!.append(head);
    const body = table.tBodies[0];
    const active = shown.some(r => r.id === this._active)
      ? this._active
      : shown.some(r => r.id === selected)
        ? selected
        : (shown[0]?.id ?? null);
    for (const row of shown) {
      body.append(this._row(row, columns, row.id === selected, row.id === active));
    }
    if (!shown.length) {
      const tr = el('tr', 'jp-sortable-table-tr mlops-grid-empty');
      const td = el('td', 'mlops-muted', this.model.get('empty') || 'nothing to show');
      td.colSpan = Math.max(1, columns.length);
      tr.append(td);
      body.append(tr);
    }
    this.el.replaceChildren(table, this._pager(ordered.length, page, view.pageSize));
    this._refocus(focused);
  }

  private _header(column: IColumn, view: IView): HTMLTableCellElement {
    const th = el('th', column.optional ? 'mlops-optional' : '');
    th.scope = 'col';
    th.dataset.key = column.key;
    const sorted = view.sortBy === column.key;
    if (sorted) {
      th.classList.add('jp-sorted-header');
      th.setAttribute('aria-sort', view.ascending ? 'ascending' : 'descending');
    }
    const button = el('button', 'jp-sortable-table-th-wrapper mlops-sort', column.label);
    button.type = 'button';
    button.title = `Sort by ${column.label}`;
    const icon = (sorted && !view.ascending ? caretDownIcon : caretUpIcon).element({
      tag: 'span',
      className: 'jp-sort-icon'
    });
    icon.setAttribute('aria-hidden', 'true');
    button.append(icon);
    button.addEventListener('click', () => {
      const ascending = sorted ? !view.ascending : true;
      this._page = 0;
      this.model.set({ sort_by: column.key, ascending, page: 0 });
      this.model.save_changes();
    });
    th.append(button);
    return th;
  }

  private _row(
    row: IRow,
    columns: IColumn[],
    selected: boolean,
    active: boolean
  ): HTMLTableRowElement {
    const tr = el('tr', 'jp-sortable-table-tr mlops-grid-row');
    tr.dataset.id = row.id;
    tr.tabIndex = active ? 0 : -1;
    tr.setAttribute('aria-selected', selected ? 'true' : 'false');
    if (selected) {
      tr.classList.add('jp-mod-selected');
    }
    for (const column of columns) {
      const td = el('td', column.optional ? 'mlops-optional' : '');
      td.dataset.key = column.key;
      const text = cellText(row[column.key]);
      const tone = column.tones ? column.tones[text] : undefined;
      if (column.tones && text) {
        td.append(el('span', `mlops-badge mlops-badge-${tone || 'neutral'}`, text));
      } else {
        td.textContent = text;
      }
      tr.append(td);
    }
    tr.addEventListener('click', () => this._select(row.id));
    tr.addEventListener('keydown', event => this._key(event, row.id));
    return tr;
  }

  private _pager(count: number, page: number, pageSize: number): HTMLElement {
    const pages = pageCount(count, pageSize);
    const pager = el('div', 'mlops-pager');
    pager.hidden = pages < 2;
    const go = (to: number): void => {
      this._page = to;
      this.model.set('page', to);
      this.model.save_changes();
    };
    const prev = el('button', 'jp-mod-styled jp-mod-reject mlops-pager-prev', 'Previous');
    prev.type = 'button';
    prev.disabled = page <= 0;
    prev.addEventListener('click', () => go(page - 1));
    const next = el('button', 'jp-mod-styled jp-mod-reject mlops-pager-next', 'Next');
    next.type = 'button';
    next.disabled = page >= pages - 1;
    next.addEventListener('click', () => go(page + 1));
    const where = el(
      'span',
      'mlops-pager-range',
      `${rangeText(count, page, pageSize)}, page ${page + 1} of ${pages}`
    );
    where.setAttribute('aria-live', 'polite');
    pager.append(prev, where, next);
    return pager;
  }

  private _select(id: string): void {
    this._active = id;
    if (this.model.get('value') !== id) {
      this.model.set('value', id);
      this.model.save_changes();
    } else {
      this._draw();
    }
  }

  /** Arrows, Home and End move between rows, Page Up/Down between pages; Enter/Space select. */
  private _key(event: KeyboardEvent, id: string): void {
    const rows = Array.from(this.el.querySelectorAll<HTMLTableRowElement>('tr.mlops-grid-row'));
    const at = rows.findIndex(r => r.dataset.id === id);
    const moves: { [key: string]: number } = {
      ArrowDown: at + 1,
      ArrowUp: at - 1,
      Home: 0,
      End: rows.length - 1
    };
    if (event.key in moves) {
      const target = rows[Math.min(rows.length - 1, Math.max(0, moves[event.key]))];
      event.preventDefault();
      for (const r of rows) {
        r.tabIndex = r === target ? 0 : -1;
      }
      this._active = target.dataset.id ?? null;
      target.focus();
    } else if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this._select(id);
    } else if (event.key === 'PageDown' || event.key === 'PageUp') {
      const button = this.el.querySelector<HTMLButtonElement>(
        event.key === 'PageDown' ? '.mlops-pager-next' : '.mlops-pager-prev'
      );
      if (button && !button.disabled) {
        event.preventDefault();
        this._active = null;
        this._focusRow = true;
        button.click();
      }
    }
  }

  /** What had the focus inside the table before a redraw: a row's id or a header's key. */
  private _focusedKey(): string | null {
    const focused = document.activeElement;
    if (!focused || !this.el.contains(focused)) {
      return null;
    }
    if (focused instanceof HTMLElement && focused.dataset.id) {
      return `row:${focused.dataset.id}`;
    }
    const th = focused.closest('th');
    if (th instanceof HTMLElement) {
      return `col:${th.dataset.key}`;
    }
    return focused.classList.contains('mlops-pager-next') ? 'next' : 'prev';
  }

  private _refocus(key: string | null): void {
    const find = (selector: string) => this.el.querySelector<HTMLElement>(selector);
    let target: HTMLElement | null = null;
    if (this._focusRow) {
      this._focusRow = false;
      target = find('tr.mlops-grid-row[tabindex="0"]');
    } else if (key?.startsWith('row:')) {
      target = find(`tr.mlops-grid-row[data-id="${CSS.escape(key.slice(4))}"]`);
    } else if (key?.startsWith('col:')) {
      target = find(`th[data-key="${CSS.escape(key.slice(4))}"] button`);
    } else if (key) {
      const button = find(key === 'next' ? '.mlops-pager-next' : '.mlops-pager-prev');
      target =
        button && !button.hasAttribute('disabled')
          ? button
          : find('tr.mlops-grid-row[tabindex="0"]');
    }
    target?.focus();
  }

  private _page: number | null = null; // the page shown (null: the selected row's)
  private _active: string | null = null; // the row that takes the Tab key's focus
  private _focusRow = false; // after a Page Up/Down: focus the new page's row
}

/**
 * A question Python asks (`{ask, title, body, items, ok, destructive}` as a custom message),
 * shown as JupyterLab's dialog; the answer goes back as `{answer, ok}`. The model needs no
 * view: it asks wherever the panel's kernel is connected.
 */
export class ConfirmModel extends WidgetModel {
  defaults(): any {
    return { ...super.defaults(), ...MODULE, _model_name: 'ConfirmModel', _view_name: null };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.on('msg:custom', (content: any) => void this._ask(content));
  }

  private async _ask(content: any): Promise<void> {
    if (typeof content?.ask !== 'number') {
      return;
    }
    const body = new Widget();
    body.addClass('mlops-dialog-body');
    if (content.body) {
      body.node.append(el('p', '', String(content.body)));
    }
    const items: unknown[] = Array.isArray(content.items) ? content.items : [];
    if (items.length) {
      const list = el('ul');
      for (const item of items) {
        list.append(el('li', '', String(item)));
      }
      body.node.append(list);
    }
    const destructive = !!content.destructive;
    const result = await showDialog({
      title: String(content.title || ''),
      body,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({
          label: String(content.ok || 'OK'),
          displayType: destructive ? 'warn' : 'default'
        })
      ],
      defaultButton: destructive ? 0 : 1 // Enter on a destructive question cancels
    });
    this.send({ answer: content.ask, ok: result.button.accept });
  }
}

/** The module the Python models name (mlops_widgets/widgets/_table.py, _dialog.py). */
export const widgetModule: IWidgetRegistryData = {
  name: MODULE_NAME,
  version: MODULE_VERSION,
  exports: { TableModel, TableView, ConfirmModel } as any
};

/** Registers the module with the widget manager of notebooks and consoles. */
export const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-widgets:widgets',
  description: "The MLOps panel's table and confirmation widgets.",
  autoStart: true,
  requires: [IJupyterWidgetRegistry],
  activate: (_app, registry: IJupyterWidgetRegistry) => registry.registerWidget(widgetModule)
};
