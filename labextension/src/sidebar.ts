/**
 * The left sidebar "MLOps": the workspace's deployments with state badges, and its audit trail
 * grouped by deployment, then template, newest first, with filters. A run opens in a tab.
 */
import { Widget } from '@lumino/widgets';

import { IDeployment, IInfo, IRunSummary, errorText, requestAPI } from './api';
import { ChangeFeed } from './feed';
import { badge, el, when } from './format';

const NO_DEPLOYMENT = '(no deployment)';
// A slow look in case the change feed cannot be followed (a proxy cutting long requests).
const POLL_MS = 60_000;
/** Runs listed at first and added by each "Show more" (the setting sidebarPageSize). */
export const PAGE_SIZE = 50;

/** Runs grouped by deployment, then template; groups keep the runs' newest-first order. */
export function groupRuns(runs: IRunSummary[]): Map<string, Map<string, IRunSummary[]>> {
  const groups = new Map<string, Map<string, IRunSummary[]>>();
  for (const run of runs) {
    const dep = run.deployment_name || NO_DEPLOYMENT;
    if (!groups.has(dep)) {
      groups.set(dep, new Map());
    }
    const byTemplate = groups.get(dep)!;
    if (!byTemplate.has(run.template)) {
      byTemplate.set(run.template, []);
    }
    byTemplate.get(run.template)!.push(run);
  }
  return groups;
}

export class MLOpsSidebar extends Widget {
  constructor(openRun: (runId: string) => void, openPanel: () => void, feed: ChangeFeed) {
    super();
    this.id = 'mlops-sidebar';
    this.addClass('mlops-sidebar');
    this.title.caption = 'MLOps';
    this._openRun = openRun;

    const header = el('div', 'mlops-sidebar-header');
    header.appendChild(el('h2', 'mlops-sidebar-title', 'MLOps'));
    const refresh = el(
      'button',
      'jp-Button jp-mod-styled jp-mod-reject mlops-sidebar-refresh',
      'Refresh'
    );
    refresh.title = 'Reload the deployments and the audit trail';
    refresh.onclick = () => void this.refresh();
    const panel = el(
      'button',
      'jp-Button jp-mod-styled jp-mod-accept mlops-sidebar-open-panel',
      'Open panel'
    );
    panel.onclick = openPanel;
    header.append(refresh, panel);
    this._where = el('div', 'mlops-sidebar-where');

    this._deployments = el('div', 'mlops-sidebar-deployments');
    this._filters = this._makeFilters();
    this._runs = el('div', 'mlops-sidebar-runs');
    this._more = el('button', 'jp-Button jp-mod-styled jp-mod-reject mlops-sidebar-more');
    this._more.hidden = true;
    this._more.onclick = () => {
      this._limit += this._pageSize;
      this._showRuns(this._lastRuns);
    };
    this._message = el('div', 'mlops-sidebar-message');
    this.node.append(
      header,
      this._where,
      el('h3', 'mlops-sidebar-section', 'Deployments'),
      this._deployments,
      el('h3', 'mlops-sidebar-section', 'Audit trail'),
      this._filters,
      this._message,
      this._runs,
      this._more
    );
    feed.changed.connect(this._onChanges, this);
  }

  /** How many runs a page lists (the user's setting). */
  set pageSize(size: number) {
    this._pageSize = Math.max(1, Math.floor(size) || PAGE_SIZE);
    this._limit = this._pageSize;
    if (this._lastRuns.length) {
      this._showRuns(this._lastRuns);
    }
  }

  private _makeFilters(): HTMLElement {
    const box = el('div', 'mlops-sidebar-filters');
    this._template = el('select', 'jp-mod-styled mlops-filter-template');
    this._status = el('select', 'jp-mod-styled mlops-filter-status');
    for (const s of ['', 'ok', 'failed', 'cancelled']) {
      const opt = el('option', '', s || 'any status');
      opt.value = s;
      this._status.appendChild(opt);
    }
    this._deployment = el('input', 'jp-mod-styled mlops-filter-deployment');
    this._deployment.placeholder = 'deployment name';
    this._template.onchange = () => void this.refresh();
    this._status.onchange = () => void this.refresh();
    this._deployment.onchange = () => void this.refresh();
    for (const [label, control] of [
      ['Template', this._template],
      ['Status', this._status],
      ['Deployment', this._deployment]
    ] as [string, HTMLElement][]) {
      const row = el('label', 'mlops-filter');
      row.append(el('span', 'mlops-filter-label', label), control);
      box.appendChild(row);
    }
    return box;
  }

  /** Every time the sidebar is shown, and on each change the workspace's feed announces
   * (runs, jobs, alerts by the panel, the CLI, the scheduler...), with a slow poll besides. */
  protected onAfterShow(): void {
    void this.refresh();
    window.clearInterval(this._timer);
    this._timer = window.setInterval(() => {
      if (this.isVisible && !document.hidden) {
        void this.refresh();
      }
    }, POLL_MS);
  }

  protected onAfterHide(): void {
    window.clearInterval(this._timer);
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  /** The feed announced changes (or restarted: then everything is read again). */
  private _onChanges(): void {
    if (this.isVisible) {
      void this.refresh();
    }
  }

  /** Reload everything (also after a re-run or a run from a notebook). */
  async refresh(): Promise<void> {
    this._message.textContent = '';
    try {
      const info = await requestAPI<IInfo>('info');
      this._where.textContent = `workspace ${info.workspace_shown} · backend ${info.backend}`;
      const query = new URLSearchParams();
      if (this._template.value) {
        query.set('template', this._template.value);
      }
      if (this._status.value) {
        query.set('status', this._status.value);
      }
      if (this._deployment.value.trim()) {
        query.set('deployment', this._deployment.value.trim());
      }
      const [deployments, runs] = await Promise.all([
        requestAPI<IDeployment[]>('deployments'),
        requestAPI<IRunSummary[]>(`runs?${query.toString()}`)
      ]);
      const shown = JSON.stringify([deployments, runs]);
      if (shown !== this._shown) {
        // a poll that finds nothing new leaves the list alone
        this._shown = shown;
        this._showDeployments(deployments);
        this._showRuns(runs);
      }
    } catch (err) {
      this._message.textContent = errorText(err);
      this._message.classList.add('mlops-error');
    }
  }

  private _showDeployments(deployments: IDeployment[]): void {
    this._deployments.replaceChildren();
    if (!deployments.length) {
      this._deployments.appendChild(el('div', 'mlops-sidebar-empty', 'no deployments yet'));
    }
    for (const d of deployments) {
      const row = el('div', 'mlops-deployment');
      row.dataset.deployment = d.name;
      row.append(el('span', 'mlops-deployment-name', d.name), badge(d.state));
      if (d.alerts) {
        const alerts = badge(`${d.alerts} alert${d.alerts > 1 ? 's' : ''}`);
        alerts.classList.add('mlops-badge-alert');
        alerts.title = 'unacknowledged alerts: violated thresholds nobody acknowledged yet';
        row.appendChild(alerts);
      }
      row.title = d.error || `${d.status}, ${d.kernels} kernel(s)`;
      this._deployments.appendChild(row);
    }
  }

  private _showRuns(all: IRunSummary[]): void {
    this._lastRuns = all;
    const runs = all.slice(0, this._limit);
    const rest = all.length - runs.length;
    this._more.hidden = rest <= 0;
    this._more.textContent = `Show ${Math.min(rest, this._pageSize)} more (${all.length} in all)`;
    const templates = new Set(all.map(r => r.template));
    if (!this._templatesLoaded || this._template.value === '') {
      const keep = this._template.value;
      this._template.replaceChildren();
      for (const t of ['', ...[...templates].sort()]) {
        const opt = el('option', '', t || 'any template');
        opt.value = t;
        this._template.appendChild(opt);
      }
      this._template.value = keep;
      this._templatesLoaded = true;
    }
    this._runs.replaceChildren();
    if (!runs.length) {
      this._runs.appendChild(el('div', 'mlops-sidebar-empty', 'no runs match'));
      return;
    }
    for (const [dep, byTemplate] of groupRuns(runs)) {
      const group = this._fold(el('details', 'mlops-run-group'), dep);
      group.dataset.deployment = dep;
      group.appendChild(el('summary', 'mlops-run-group-title', dep));
      for (const [template, list] of byTemplate) {
        const sub = this._fold(el('details', 'mlops-run-template'), `${dep}/${template}`);
        sub.appendChild(el('summary', 'mlops-run-template-title', `${template} (${list.length})`));
        for (const run of list) {
          sub.appendChild(this._runRow(run));
        }
        group.appendChild(sub);
      }
      this._runs.appendChild(group);
    }
  }

  /** A group open unless the user folded it (remembered across refreshes). */
  private _fold(details: HTMLDetailsElement, key: string): HTMLDetailsElement {
    details.open = !this._folded.has(key);
    details.addEventListener('toggle', () => {
      if (details.open) {
        this._folded.delete(key);
      } else {
        this._folded.add(key);
      }
    });
    return details;
  }

  private _runRow(run: IRunSummary): HTMLElement {
    const row = el('button', 'mlops-run-item');
    row.dataset.run = run.run_id;
    row.title = run.error
      ? `${run.short_id}: ${run.error}`
      : `run ${run.short_id}: open it read-only`;
    row.append(
      el('span', 'mlops-run-when', when(run.started_at)),
      badge(run.status),
      el('span', 'mlops-run-id', run.short_id)
    );
    if (run.kind === 'event') {
      row.classList.add('mlops-run-event');
    }
    row.onclick = () => this._openRun(run.run_id);
    return row;
  }

  private _openRun: (runId: string) => void;
  private _where: HTMLElement;
  private _deployments: HTMLElement;
  private _filters: HTMLElement;
  private _runs: HTMLElement;
  private _message: HTMLElement;
  private _template!: HTMLSelectElement;
  private _status!: HTMLSelectElement;
  private _deployment!: HTMLInputElement;
  private _templatesLoaded = false;
  private _more: HTMLButtonElement;
  private _pageSize = PAGE_SIZE;
  private _limit = PAGE_SIZE;
  private _lastRuns: IRunSummary[] = [];
  private _timer = 0;
  private _shown = '';
  private _folded = new Set<string>();
}
