/**
 * The status bar item "MLOps: 2 running": the runs of the workspace's audit trail still running
 * (panel steps, runs from notebooks, the CLI, the scheduler), counted again whenever the change
 * feed announces a run's change. A click opens the sidebar.
 */
import { Widget } from '@lumino/widgets';

import { IChange, IRunSummary, requestAPI } from './api';
import { ChangeFeed } from './feed';
import { el } from './format';

/** What the item says for `n` running runs. */
export function runningText(n: number | null): string {
  return n === null ? 'MLOps' : n ? `MLOps: ${n} running` : 'MLOps: idle';
}

export class MLOpsStatus extends Widget {
  constructor(feed: ChangeFeed, onClick: () => void) {
    super({ node: el('button', 'mlops-status-item') });
    this.node.title = 'Runs of the audit trail still running: open the MLOps sidebar';
    this.node.setAttribute('aria-live', 'polite');
    this.node.onclick = onClick;
    this._show(null);
    feed.changed.connect(this._onChanges, this);
  }

  private _onChanges(_: ChangeFeed, changes: IChange[]): void {
    if (!changes.length || changes.some(c => c.kind === 'run')) {
      void this._count();
    }
  }

  private async _count(): Promise<void> {
    const asked = ++this._asked; // only the latest count is shown (answers may cross)
    let n: number | null;
    try {
      n = (await requestAPI<IRunSummary[]>('runs?status=running')).length;
    } catch {
      n = null; // the next change counts again
    }
    if (asked === this._asked && !this.isDisposed) {
      this._show(n);
    }
  }

  private _show(n: number | null): void {
    this.node.textContent = runningText(n);
    this.node.dataset.running = String(n ?? '');
  }

  private _asked = 0;
}
