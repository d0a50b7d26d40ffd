/**
 * The MLOps panel in a main-area tab, with no notebook: a kernel session of its own runs
 * `MLOpsPanel(...)` and its output is shown by JupyterLab's OutputArea, its widgets by the
 * ipywidgets manager for kernels (the one consoles use). Closing the tab shuts the kernel down.
 */
import { Notification, SessionContext } from '@jupyterlab/apputils';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Message } from '@lumino/messaging';
import { Panel } from '@lumino/widgets';
import * as base from '@jupyter-widgets/base';
import { KernelWidgetManager, WidgetRenderer, output } from '@jupyter-widgets/jupyterlab-manager';
import { JUPYTER_CONTROLS_VERSION } from '@jupyter-widgets/controls/lib/version';

import { IInfo, requestAPI } from './api';
import { widgetModule } from './widgets';

const WIDGET_VIEW_MIMETYPE = 'application/vnd.jupyter.widget-view+json';
/** This browser tab's panel session (its path), to end it after a reload. */
const SESSION_KEY = 'mlops-widgets:panel-session';
/** The panel's tabs, drawn as its frame while its kernel starts (widgets/panel.py's TABS). */
export const PANEL_TABS = ['Prepare', 'Deploy', 'Monitor', 'Status', 'Runs', 'Train'];

/** Python that builds the panel on the server's workspace and backend. */
export function panelCode(info: IInfo): string {
  return [
    'from mlops_widgets import MLOpsPanel',
    `MLOpsPanel(workspace=${JSON.stringify(info.workspace)}, backend=${JSON.stringify(info.backend)})`
  ].join('\n');
}

/** The core widget modules, registered as jupyterlab-manager registers them for notebooks, and ours. */
function registerCoreWidgets(manager: KernelWidgetManager): void {
  manager.register({
    name: '@jupyter-widgets/base',
    version: base.JUPYTER_WIDGETS_VERSION,
    exports: {
      WidgetModel: base.WidgetModel,
      WidgetView: base.WidgetView,
      DOMWidgetView: base.DOMWidgetView,
      DOMWidgetModel: base.DOMWidgetModel,
      LayoutModel: base.LayoutModel,
      LayoutView: base.LayoutView,
      StyleModel: base.StyleModel,
      StyleView: base.StyleView,
      ErrorWidgetView: base.ErrorWidgetView
    } as any
  });
  manager.register({
    name: '@jupyter-widgets/controls',
    version: JUPYTER_CONTROLS_VERSION,
    exports: () => import('@jupyter-widgets/controls') as any
  });
  manager.register({
    name: '@jupyter-widgets/output',
    version: output.OUTPUT_WIDGET_VERSION,
    exports: { OutputModel: output.OutputModel, OutputView: output.OutputView } as any
  });
  manager.register(widgetModule); // the panel's table and dialog
}

/**
 * The panel's frame (its title, its tabs' names and what it waits for), shown at once: the
 * kernel that draws the panel takes seconds to start, and a blank tab reads as broken.
 */
function panelFrame(): HTMLElement {
  const frame = document.createElement('div');
  frame.className = 'mlops-lab-panel-frame';
  const title = document.createElement('b');
  title.textContent = 'MLOps';
  const tabs = document.createElement('div');
  tabs.className = 'mlops-frame-tabs';
  for (const name of PANEL_TABS) {
    const tab = document.createElement('span');
    tab.className = 'mlops-frame-tab';
    tab.textContent = name;
    tabs.appendChild(tab);
  }
  const note = document.createElement('div');
  note.className = 'mlops-frame-note';
  note.textContent = "Starting the panel's kernel…";
  frame.append(title, tabs, note);
  return frame;
}

export class MLOpsPanelWidget extends Panel {
  /** `notifyAfterSeconds`: a step that takes longer is also a notification when it ends (the
   * user's setting). */
  constructor(
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    private _notifyAfterSeconds = 2
  ) {
    super();
    this.addClass('mlops-lab-panel');
    this.id = 'mlops-panel';
    this.title.label = 'MLOps panel';
    this.title.closable = true;
    this._app = app;
    this._rendermime = rendermime.clone();
    this._model = new OutputAreaModel({ trusted: true });
    this._area = new OutputArea({ model: this._model, rendermime: this._rendermime });
    this._area.addClass('mlops-lab-panel-output');
    this._frame = panelFrame();
    this.node.appendChild(this._frame);
    this.addWidget(this._area);
    this._session = new SessionContext({
      sessionManager: app.serviceManager.sessions,
      specsManager: app.serviceManager.kernelspecs,
      path: `mlops-panel-${Date.now()}`,
      type: 'mlops',
      name: 'MLOps panel',
      kernelPreference: { shouldStart: true, canStart: true, autoStartDefault: true }
    });
    // A tab closed while its kernel starts ends that start ('Disposed'): nothing to report then.
    this.ready = this._start().catch(err => {
      if (!this.isDisposed) {
        this._note(`The MLOps panel could not start: ${err instanceof Error ? err.message : err}`);
      }
    });
    this._steps = new MutationObserver(() => this._stepChanged());
    this._steps.observe(this.node, { subtree: true, childList: true, characterData: true });
  }

  /**
   * A step's outcome as a JupyterLab notification too when it failed or took long (the
   * panel shows it under the control that started it; the user may be looking elsewhere).
   * Steps run side by side, each with a task bar of its own that writes its outcome into
   * `.mlops-task-message`, empty while its step runs: every bar is watched on its own.
   */
  private _stepChanged(): void {
    if (this._frame && this.node.querySelector('.mlops-panel')) {
      this._frame.remove(); // the panel's own widgets are drawn: the frame has done its part
      this._frame = null;
    }
    this.node.querySelectorAll('.mlops-taskbar').forEach(bar => this._barChanged(bar));
  }

  private _barChanged(bar: Element): void {
    const message = bar.querySelector('.mlops-task-message');
    const text = (message?.textContent || '').trim();
    const started = this._stepStarted.get(bar);
    if (!text) {
      // A step that started: its title is shown and its last outcome cleared.
      if (started === undefined && (bar.querySelector('b')?.textContent || '').trim()) {
        this._stepStarted.set(bar, Date.now());
      }
      return;
    }
    if (started === undefined) {
      return; // an outcome already announced (or shown before this tab watched)
    }
    const slow = Date.now() - started > this._notifyAfterSeconds * 1000;
    this._stepStarted.delete(bar);
    if (message?.querySelector('.mlops-error')) {
      Notification.error(`MLOps panel: ${text}`, { autoClose: false });
    } else if (slow) {
      const cancelled = !!message?.querySelector('.mlops-cancelled');
      Notification.emit(`MLOps panel: ${text}`, cancelled ? 'warning' : 'success', {
        autoClose: 5000
      });
    }
  }

  /** Resolves once the panel's code ran (its widgets may still be drawing). */
  readonly ready: Promise<void>;

  private async _start(): Promise<void> {
    await this._endStale();
    if (this.isDisposed) {
      return;
    }
    this._kernelStart = this._session.initialize();
    const [info] = await Promise.all([requestAPI<IInfo>('info'), this._kernelStart]);
    await this._session.ready;
    const kernel = this._session.session?.kernel;
    if (!kernel) {
      this._note('No kernel could be started for the panel.');
      return;
    }
    this._manager = new KernelWidgetManager(kernel, this._rendermime);
    registerCoreWidgets(this._manager);
    const manager = this._manager;
    this._rendermime.removeMimeType(WIDGET_VIEW_MIMETYPE);
    this._rendermime.addFactory(
      {
        safe: false,
        mimeTypes: [WIDGET_VIEW_MIMETYPE],
        createRenderer: options => new WidgetRenderer(options, manager)
      },
      -10
    );
    this._model.clear();
    await OutputArea.execute(panelCode(info), this._area, this._session);
  }

  /**
   * A page reload drops this tab's panel without closing it: its kernel would run on, unseen.
   * The browser tab remembers its panel's session (sessionStorage survives a reload and is not
   * shared with other browser tabs); the one left from before the reload is shut down.
   */
  private async _endStale(): Promise<void> {
    const sessions = this._app.serviceManager.sessions;
    const stale = sessionStorage.getItem(SESSION_KEY);
    sessionStorage.setItem(SESSION_KEY, this._session.path);
    if (!stale || stale === this._session.path) {
      return;
    }
    await sessions.refreshRunning();
    for (const model of sessions.running()) {
      if (model.path === stale) {
        await sessions.shutdown(model.id);
      }
    }
  }

  private _note(text: string): void {
    this._model.clear();
    this._model.add({ output_type: 'stream', name: 'stdout', text });
    this._frame?.remove(); // what went wrong is said instead
    this._frame = null;
  }

  /** Closing the tab ends the panel and its kernel (a plain widget would only be detached). */
  protected onCloseRequest(msg: Message): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._steps.disconnect();
    if (sessionStorage.getItem(SESSION_KEY) === this._session.path) {
      sessionStorage.removeItem(SESSION_KEY);
    }
    this._manager?.dispose();
    // The session is shut down and disposed only once its kernel's start has settled: a
    // SessionContext disposed while its kernel starts throws 'Disposed' from a chain of its own
    // that nobody can catch (its _handleSessionError), and the kernel started meanwhile would
    // run on with no tab.
    const session = this._session;
    void this._kernelStart
      .catch(() => undefined)
      .then(() => session.shutdown())
      .catch(() => undefined)
      .finally(() => session.dispose());
    super.dispose();
  }

  private _app: JupyterFrontEnd;
  private _rendermime: IRenderMimeRegistry;
  private _model: OutputAreaModel;
  private _area: OutputArea;
  private _session: SessionContext;
  /** The session's start (`initialize`), once begun: what disposing waits for. */
  private _kernelStart: Promise<unknown> = Promise.resolve();
  private _manager: KernelWidgetManager | null = null;
  private _steps: MutationObserver;
  private _frame: HTMLElement | null;
  private _stepStarted = new WeakMap<Element, number>(); // per task bar: when its running step started
}
