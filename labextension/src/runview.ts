/**
 * A run of the audit trail in a main-area tab, read-only and with no kernel: its record, its
 * parameters, and the executed notebook drawn by JupyterLab's renderers (markdown, code
 * highlighted as markdown does, outputs through an OutputArea). Re-run and Clone from here.
 */
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';

import { IChange, IField, IRunRecord, errorText, post, requestAPI } from './api';
import { ChangeFeed } from './feed';
import { runInNotification } from './jobs';
import { badge, el, valueText, when } from './format';

export interface IRunActions {
  /** Open another run (the new one after a re-run). */
  openRun(runId: string, workspace?: string): void;
  /** Open a notebook path (relative to the server's root) in JupyterLab. */
  openPath(path: string): void;
  /** The audit trail changed: the sidebar reloads. */
  changed(): void;
}

/** What a parameters form gives: the fields the user changed (as typed) and the secrets. */
export interface IFormValue {
  params: Record<string, string>;
  secrets: Record<string, string>;
}

export interface IFormOptions {
  /** Editable fields (a notebook run as a template), else the parameters are read-only rows. */
  fields?: IField[];
  /** The texts typed before (the form shown again after the server refused them). */
  texts?: Record<string, string>;
  /** Why the server refused the last values (shown above the fields). */
  error?: string;
  /** The changed texts checked as the run would check them (field -> problem), asked as the
   * user types: each problem shows under its field before Run. */
  check?: (params: Record<string, string>) => Promise<Record<string, string>>;
}

/** How long typing pauses before the texts are checked. */
const CHECK_DELAY_MS = 300;
let problemIds = 0;

/** A field's text before the user types: its default as the command line would write it
 * (text verbatim, other values as JSON); empty when the default is code the form cannot show. */
export function defaultText(field: IField): string {
  if (field.default === null) {
    return field.default_source === 'None' ? 'null' : '';
  }
  return valueText(field.default);
}

/**
 * A form in a dialog: the parameters as read-only rows (a re-run, a clone's run) or as fields
 * (a notebook run as a template), and a password field per secret. The server validates what
 * it gives; a refusal shows the form again with the error and the texts kept.
 */
export class ParametersForm extends Widget {
  constructor(
    parameters: Record<string, unknown>,
    help: Record<string, string>,
    secretNames: string[],
    note: string,
    options: IFormOptions = {}
  ) {
    super();
    this.addClass('mlops-params-form');
    this.node.appendChild(el('p', 'mlops-params-note', note));
    if (options.error) {
      const error = el('p', 'mlops-error mlops-params-error', options.error);
      error.setAttribute('role', 'alert');
      this.node.appendChild(error);
    }
    this._check = options.check ?? null;
    const fields = (options.fields || []).filter(f => !f.secret);
    if (fields.length) {
      this.node.appendChild(this._fieldRows(fields, options.texts || {}));
    } else if (!options.fields) {
      this.node.appendChild(
        Object.keys(parameters).length
          ? parametersTable(parameters, help)
          : el('p', 'mlops-params-note', "none given: the template's defaults apply")
      );
    } else {
      this.node.appendChild(el('p', 'mlops-params-note', 'This notebook takes no parameters.'));
    }
    if (secretNames.length) {
      this.node.appendChild(
        el(
          'p',
          'mlops-params-note',
          "Secrets are never stored: give them again (empty: taken from the server's environment)."
        )
      );
    }
    for (const name of secretNames) {
      const row = el('label', 'mlops-secret');
      const input = el('input', 'jp-mod-styled mlops-secret-input');
      input.type = 'password';
      input.autocomplete = 'off';
      input.dataset.secret = name;
      row.append(el('span', 'mlops-secret-name', name), input);
      this.node.appendChild(row);
      this._secrets.set(name, input);
    }
  }

  /** One row per field: its name, an input (a list for choices and true/false), its help. */
  private _fieldRows(fields: IField[], texts: Record<string, string>): HTMLElement {
    const box = el('div', 'mlops-param-fields');
    for (const field of fields) {
      const row = el('label', 'mlops-param-field');
      const initial = defaultText(field);
      const options = field.choices ?? (field.type === 'bool' ? [true, false] : null);
      let input: HTMLInputElement | HTMLSelectElement;
      if (options) {
        input = el('select', 'jp-mod-styled mlops-param-input');
        for (const choice of options) {
          const opt = el('option', '', valueText(choice));
          opt.value = valueText(choice);
          input.appendChild(opt);
        }
      } else {
        input = el('input', 'jp-mod-styled mlops-param-input');
        input.placeholder = initial ? '' : `default: ${field.default_source}`;
      }
      input.value = texts[field.name] ?? initial;
      input.dataset.param = field.name;
      input.title = `${field.name} (${field.type})`;
      row.append(el('span', 'mlops-param-name', field.name), input);
      if (field.help) {
        row.appendChild(el('span', 'mlops-param-help', field.help));
      }
      const problem = el('span', 'mlops-error mlops-param-problem');
      problem.id = `mlops-param-problem-${++problemIds}`;
      input.setAttribute('aria-describedby', problem.id);
      input.addEventListener('input', () => this._checkSoon());
      row.appendChild(problem);
      box.appendChild(row);
      this._fields.set(field.name, { input, initial, problem });
    }
    return box;
  }

  getValue(): IFormValue {
    const params: Record<string, string> = {};
    this._fields.forEach(({ input, initial }, name) => {
      if (input.value !== initial) {
        params[name] = input.value; // only what the user changed: the rest keeps its default
      }
    });
    const secrets: Record<string, string> = {};
    this._secrets.forEach((input, name) => {
      secrets[name] = input.value;
    });
    return { params, secrets };
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _checkSoon(): void {
    if (this._check) {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => void this._checkNow(), CHECK_DELAY_MS);
    }
  }

  /** Each field's problem under it (the newest answer only: typing goes on meanwhile). */
  private async _checkNow(): Promise<void> {
    const asked = ++this._asked;
    let problems: Record<string, string>;
    try {
      problems = await this._check!(this.getValue().params);
    } catch {
      return; // the server did not answer: Run says why
    }
    if (asked !== this._asked || this.isDisposed) {
      return;
    }
    this._fields.forEach(({ input, problem }, name) => {
      problem.textContent = problems[name] || '';
      if (problems[name]) {
        input.setAttribute('aria-invalid', 'true');
      } else {
        input.removeAttribute('aria-invalid');
      }
    });
  }

  private _check: IFormOptions['check'] | null;
  private _timer = 0;
  private _asked = 0;
  private _fields = new Map<
    string,
    { input: HTMLInputElement | HTMLSelectElement; initial: string; problem: HTMLElement }
  >();
  private _secrets = new Map<string, HTMLInputElement>();
}

export function parametersTable(
  parameters: Record<string, unknown>,
  help: Record<string, string> = {}
): HTMLTableElement {
  const table = el('table', 'mlops-params');
  for (const [name, value] of Object.entries(parameters)) {
    const row = el('tr');
    const valueCell = el('td', 'mlops-param-value');
    valueCell.appendChild(el('code', '', valueText(value)));
    row.append(
      el('th', 'mlops-param-name', name),
      valueCell,
      el('td', 'mlops-param-help', help[name] || '')
    );
    table.appendChild(row);
  }
  return table;
}

export class RunContent extends Panel {
  constructor(
    readonly runId: string,
    readonly workspace: string,
    private _rendermime: IRenderMimeRegistry,
    private _actions: IRunActions,
    feed: ChangeFeed | null = null
  ) {
    super();
    this.addClass('mlops-run-view');
    this._header = new Widget();
    this._header.addClass('mlops-run-header');
    this.addWidget(this._header);
    this.ready = this._loading = this._load();
    // A running run's tab follows the change feed to its end state (no reload).
    feed?.changed.connect(this._onChanges, this);
  }

  readonly ready: Promise<void>;

  private _onChanges(_: ChangeFeed, changes: IChange[]): void {
    const restarted = !changes.length && this._record?.status === 'running';
    if (restarted || changes.some(c => c.subject === this.runId)) {
      this._loading = this._loading.then(() => this._reload());
    }
  }

  /** Draw the run again as it is now (its status changed): the header and the notebook. */
  private async _reload(): Promise<void> {
    if (this.isDisposed) {
      return;
    }
    for (const widget of this.widgets.slice(1)) {
      widget.dispose();
    }
    await this._load();
  }

  private async _load(): Promise<void> {
    try {
      const record = await requestAPI<IRunRecord>(`runs/${this.runId}${this._query}`);
      if (this.isDisposed) {
        return;
      }
      this._record = record;
      this.title.label = `${record.template} ${record.short_id}`;
      this._drawHeader(record);
      this.node.dataset.status = record.status;
      if (record.kind !== 'event' && record.status !== 'running') {
        await this._drawNotebook(
          await requestAPI<any>(`runs/${this.runId}/notebook${this._query}`)
        );
      }
    } catch (err) {
      this._header.node.replaceChildren(el('div', 'mlops-error', errorText(err)));
    }
  }

  /** The workspace the run is in, when not the server's (a panel in a notebook named it). */
  private get _query(): string {
    return this.workspace ? `?workspace=${encodeURIComponent(this.workspace)}` : '';
  }

  private _drawHeader(r: IRunRecord): void {
    const node = this._header.node;
    node.replaceChildren();
    const title = el('h2', 'mlops-run-title');
    title.append(
      el('span', '', `${r.template} `),
      badge(r.status),
      el('code', 'mlops-run-id', r.short_id)
    );
    node.appendChild(title);
    node.appendChild(
      el(
        'div',
        'mlops-run-meta',
        `${when(r.started_at)} → ${when(r.ended_at)} UTC · ${r.backend} · by ${r.user}` +
          (r.deployment_name ? ` · deployment ${r.deployment_name}` : '') +
          ' · read-only, no kernel'
      )
    );
    if (r.error) {
      node.appendChild(el('div', 'mlops-error', r.error));
    }
    const event = r.kind === 'event';
    const buttons = el('div', 'mlops-run-actions');
    buttons.hidden = event; // an event record (a deployment started...) has nothing to re-run
    const rerun = el('button', 'jp-Button jp-mod-styled jp-mod-accept mlops-run-rerun', 'Re-run…');
    rerun.onclick = () => void this.rerun();
    const clone = el('button', 'jp-Button jp-mod-styled jp-mod-reject mlops-run-clone', 'Clone…');
    clone.onclick = () => void this.clone();
    buttons.append(rerun, clone);
    node.appendChild(buttons);
    node.appendChild(el('h3', '', 'Parameters'));
    node.appendChild(parametersTable(r.parameters, r.parameter_help));
    if (r.secret_names.length) {
      node.appendChild(
        el('div', 'mlops-run-meta', `secrets (not stored): ${r.secret_names.join(', ')}`)
      );
    }
    if (Object.keys(r.results || {}).length) {
      node.appendChild(el('h3', '', 'Results'));
      node.appendChild(parametersTable(r.results));
    }
    node.appendChild(
      el(
        'h3',
        '',
        event
          ? 'An event of the audit trail: no notebook'
          : r.status === 'running'
            ? 'Running: its executed notebook shows here when it ends'
            : 'Executed notebook'
      )
    );
  }

  private async _drawNotebook(nb: any): Promise<void> {
    const language = nb?.metadata?.language_info?.name || 'python';
    for (const cell of nb.cells || []) {
      const source = Array.isArray(cell.source) ? cell.source.join('') : String(cell.source || '');
      if (cell.cell_type === 'markdown') {
        await this._markdown(source, 'mlops-cell-markdown');
      } else if (cell.cell_type === 'code') {
        const fence = codeFence(source);
        await this._markdown(fence + language + '\n' + source + '\n' + fence, 'mlops-cell-code');
        if ((cell.outputs || []).length) {
          const model = new OutputAreaModel({ values: cell.outputs, trusted: false });
          const area = new OutputArea({ model, rendermime: this._rendermime });
          area.addClass('mlops-cell-outputs');
          this.addWidget(area);
        }
      }
    }
  }

  private async _markdown(source: string, className: string): Promise<void> {
    const renderer = this._rendermime.createRenderer('text/markdown');
    renderer.addClass(className);
    this.addWidget(renderer);
    await renderer.renderModel(new MimeModel({ data: { 'text/markdown': source } }));
  }

  /** Confirm with the parameters shown and the secrets asked again, then re-run. */
  async rerun(): Promise<void> {
    const r = this._record;
    if (!r) {
      return;
    }
    const form = new ParametersForm(
      r.parameters,
      r.parameter_help,
      r.secret_names,
      `Run ${r.template} again with the parameters of run ${r.short_id}:`
    );
    const answer = await showDialog({
      title: `Re-run ${r.template}?`,
      body: form,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Re-run' })]
    });
    if (!answer.button.accept) {
      return;
    }
    // a job on the server: the run goes on in its own process; progress and Cancel in a notification
    const out = await runInNotification(
      `Re-running ${r.template} (${r.short_id})`,
      `runs/${r.run_id}/rerun`,
      { secrets: (answer.value ?? form.getValue()).secrets }
    );
    if (out) {
      this._actions.changed();
      this._actions.openRun(out.run_id); // re-runs run in the server's workspace
    }
  }

  /** Ask where, then write an editable copy of the run beside the user's files and open it. */
  async clone(): Promise<void> {
    const r = this._record;
    if (!r) {
      return;
    }
    const input = el('input', 'jp-mod-styled mlops-clone-path');
    input.value = `${r.template}-${r.short_id}.ipynb`;
    const body = new Widget({ node: el('div', 'mlops-clone-form') });
    body.node.append(el('p', '', "Notebook path (in the file browser's folder):"), input);
    const answer = await showDialog({
      title: `Clone run ${r.short_id}`,
      body,
      focusNodeSelector: 'input',
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Clone' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      const out = await post<{ path: string }>(`runs/${r.run_id}/clone`, {
        dest: input.value,
        workspace: this.workspace || null
      });
      Notification.success(`Cloned ${r.short_id} to ${out.path}`, { autoClose: 5000 });
      this._actions.openPath(out.path);
    } catch (err) {
      Notification.error(errorText(err), { autoClose: false });
    }
  }

  private _header: Widget;
  private _record: IRunRecord | null = null;
  private _loading: Promise<void>;
}

export function runWidget(
  runId: string,
  workspace: string,
  rendermime: IRenderMimeRegistry,
  actions: IRunActions,
  feed: ChangeFeed | null = null
): MainAreaWidget<RunContent> {
  const content = new RunContent(runId, workspace, rendermime, actions, feed);
  const widget = new MainAreaWidget({ content, reveal: content.ready });
  widget.id = `mlops-run-${runId}`;
  widget.title.label = 'Run';
  widget.title.closable = true;
  return widget;
}

/**
 * A markdown fence longer than any run of backticks in `source`: the code (a parameter value
 * holding ``` and markup included) stays inside its block, shown as text, never rendered.
 */
export function codeFence(source: string): string {
  const longest = Math.max(0, ...(source.match(/`+/g) || []).map(run => run.length));
  return '`'.repeat(Math.max(3, longest + 1));
}
