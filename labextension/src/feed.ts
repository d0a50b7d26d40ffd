/**
 * The workspace's change feed (`mlops/events?since=`, a long poll), followed once for the whole
 * page: the sidebar, the status bar and the run tabs listen to one `ChangeFeed` instead of each
 * polling the server.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IChange, IChanges, requestAPI } from './api';

/** After a failed request (the server restarting, a proxy cutting the request), ask again after this. */
export const RETRY_MS = 5_000;

export class ChangeFeed {
  /** `retryMs`: the wait after a failed request. */
  constructor(private _retryMs = RETRY_MS) {}

  /**
   * The changes, in order, each batch as the server answered it. An empty batch means "look
   * again at everything": the feed (re)started, so changes before it are not in the feed.
   */
  get changed(): ISignal<this, IChange[]> {
    return this._changed;
  }

  /** Where the feed stands (the last seq seen); null until the first answer. */
  get last(): number | null {
    return this._since;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Follow the feed until disposed (a second call does nothing). */
  start(): void {
    if (!this._started) {
      this._started = true;
      void this._follow();
    }
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  private async _follow(): Promise<void> {
    while (!this._disposed) {
      try {
        const first = this._since === null;
        const answer = await requestAPI<IChanges>(first ? 'events' : `events?since=${this._since}`);
        if (this._disposed) {
          return;
        }
        this._since = answer.last;
        // The first answer says where the feed stands: listeners read everything once, then
        // the feed brings what changes after it.
        if (first || answer.events.length) {
          this._changed.emit(answer.events);
        }
      } catch {
        await new Promise(resolve => setTimeout(resolve, this._retryMs));
      }
    }
  }

  private _changed = new Signal<this, IChange[]>(this);
  private _since: number | null = null;
  private _started = false;
  private _disposed = false;
}
