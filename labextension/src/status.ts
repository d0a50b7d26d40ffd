/**
 * The status bar item "MLOps: 2 running, 1 training": the runs of the workspace's audit trail
 * still running (panel steps, runs from notebooks, the CLI, the scheduler) and its training jobs
 * not ended, each counted again whenever the change feed announces a change of its kind. A click
 * opens the sidebar.
 */
import { Widget } from '@lumino/widgets';

import { IChange, IRunSummary, ITrainingJob, requestAPI } from './api';
import { ChangeFeed } from './feed';
import { el } from './format';

/** What the item says for `runs` running runs (null: not known yet) and `training` training
 * jobs not ended. */
export function runningText(runs: number | null, training: number): string {
  if (runs === null) {
    return 'MLOps';
  }
  const parts = [runs ? `${runs} running` : '', training ? `${training} training` : ''];
  return `MLOps: ${parts.filter(Boolean).join(', ') || 'idle'}`;
}

export class MLOpsStatus extends Widget {
  constructor(feed: ChangeFeed, onClick: () => void) {
    super({ node: el('button', 'mlops-status-item') });
    this.node.title =
      'Runs of the audit trail still running and training jobs not ended: open the MLOps sidebar';
    this.node.setAttribute('aria-live', 'polite');
    this.node.onclick = onClick;
    this._show();
    feed.changed.connect(this._onChanges, this);
  }

  private _onChanges(_: ChangeFeed, changes: IChange[]): void {
    // No changes: the feed (re)started, so anything may have changed meanwhile.
    if (!changes.length || changes.some(c => c.kind === 'run')) {
      void this._count(
        'runs',
        async () => (await requestAPI<IRunSummary[]>('runs?status=running')).length
      );
    }
    if (!changes.length || changes.some(c => c.kind === 'job')) {
      void this._count(
        'training',
        async () =>
          (await requestAPI<ITrainingJob[]>('training')).filter(
            job => job.state === 'submitted' || job.state === 'running'
          ).length
      );
    }
  }

  /** Counts again; only the latest answer of each count is shown (answers may cross). A
   * count that fails is not known until the next change counts again. */
  private async _count(what: 'runs' | 'training', count: () => Promise<number>): Promise<void> {
    const asked = ++this._asked[what];
    let n: number | null;
    try {
      n = await count();
    } catch {
      n = null;
    }
    if (asked === this._asked[what] && !this.isDisposed) {
      this._counts[what] = n;
      this._show();
    }
  }

  private _show(): void {
    // Training jobs not known (a cluster that did not answer) are left out, not the runs.
    const { runs, training } = this._counts;
    this.node.textContent = runningText(runs, training ?? 0);
    this.node.dataset.running = String(runs ?? '');
    this.node.dataset.training = String(training ?? '');
  }

  private _asked = { runs: 0, training: 0 };
  private _counts: { runs: number | null; training: number | null } = {
    runs: null,
    training: null
  };
}
