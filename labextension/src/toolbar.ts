/**
 * The audit trail's actions on a notebook, in the notebook toolbar (one button per notebook) and
 * in the file browser's context menu: "Open in the audit trail" for a run's executed notebook
 * (its read-only run tab), "Run in the audit trail" for a clone of a run or a template, "Run as
 * an MLOps template…" for any other notebook. The server says which (`notebooks/plan`); a run
 * goes through the runner as a job (validated, recorded), its progress in a notification.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

import {
  ApiError,
  IJob,
  INotebookPlan,
  IRunOutcome,
  errorText,
  inRunsFolder,
  notebookPlan,
  post
} from './api';
import { el } from './format';
import { mlopsIcon } from './icon';
import { followInNotification } from './jobs';
import { ParametersForm } from './runview';

/** What the notebook actions do once a run is chosen or made. */
export interface INotebookActions {
  /** Open a run's read-only tab. */
  openRun(runId: string): void;
}

/** The toolbar button's words for each action. */
export const ACTION_LABELS: Record<INotebookPlan['action'], string> = {
  open: 'Open in the audit trail',
  clone: 'Run in the audit trail',
  template: 'Run as an MLOps template…'
};

const ACTION_TOOLTIPS: Record<INotebookPlan['action'], string> = {
  open: "This notebook is a run's executed notebook: open its run read-only, with Re-run and Clone",
  clone:
    "Run this notebook's parameters through the runner: validated, recorded in the audit trail",
  template:
    'Run this notebook as a template: its parameters cell asked in a form, validated, the run ' +
    'recorded in the audit trail'
};

/**
 * Do the notebook's one action: open its run, or ask for the run's parameters and secrets in a
 * dialog and run it as a job. A refusal (a value the template does not take) shows the dialog
 * again with the server's message and the texts kept. Returns the run's outcome, if one ran.
 */
export async function notebookAction(
  path: string,
  actions: INotebookActions,
  want: 'open' | 'run' | null = null
): Promise<IRunOutcome | null> {
  const plan = await notebookPlan(path);
  if (want === 'open' && plan.action !== 'open') {
    throw new ApiError(`${path} is not the executed notebook of a run in the audit trail`);
  }
  if (want === 'run' && plan.action === 'open') {
    throw new ApiError(
      `${path} is the executed notebook of run ${plan.short_id}: open it in the audit trail to re-run it`
    );
  }
  if (plan.action === 'open') {
    actions.openRun(plan.run_id!);
    return null;
  }
  let texts: Record<string, string> = {};
  let error = '';
  for (;;) {
    const form = planForm(path, plan, texts, error);
    const answer = await showDialog({
      title: plan.action === 'clone' ? 'Run in the audit trail?' : 'Run as an MLOps template',
      body: form,
      focusNodeSelector: 'input, select',
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })]
    });
    if (!answer.button.accept) {
      return null;
    }
    const value = answer.value ?? form.getValue();
    let job: IJob;
    try {
      job = await post<IJob>('notebooks/run', {
        path,
        params: value.params,
        secrets: value.secrets
      });
    } catch (err) {
      texts = value.params;
      error = errorText(err);
      continue;
    }
    const out = await followInNotification(`Running ${path} in the audit trail`, job);
    if (out) {
      actions.openRun(out.run_id);
    }
    return out;
  }
}

/** The dialog's form for a plan: a clone's values read-only, a template's fields to fill. */
function planForm(
  path: string,
  plan: INotebookPlan,
  texts: Record<string, string>,
  error: string
): ParametersForm {
  const secrets = plan.secret_names || [];
  if (plan.action === 'clone') {
    const origin = plan.origin!;
    const what = origin.run_id
      ? `as a re-run of ${origin.template} run ${origin.run_id.slice(0, 8)}`
      : `as a run of the template ${origin.template}`;
    return new ParametersForm(
      plan.parameters || {},
      {},
      secrets,
      `Run ${what}, with the values of this notebook's parameters cell:`,
      { error }
    );
  }
  return new ParametersForm(
    {},
    {},
    secrets,
    `Run ${plan.template} through the runner with these parameters: it executes a copy of this ` +
      'notebook and records it in the audit trail; the notebook itself is left as it is.',
    {
      fields: plan.fields || [],
      texts,
      error,
      check: params =>
        post<{ problems: Record<string, string> }>('notebooks/check', { path, params }).then(
          answer => answer.problems
        )
    }
  );
}

/** The one toolbar button of every notebook: its words follow what the notebook is. */
export class NotebookActionButton implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private _actions: INotebookActions) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    let plan: INotebookPlan | null = null;
    // A plain button (not a React ToolbarButton): its words change with the plan.
    const node = el('button', 'jp-ToolbarButtonComponent jp-mod-minimal jp-Button');
    const label = el('span', 'jp-ToolbarButtonComponent-label');
    node.append(mlopsIcon.element({ className: 'jp-ToolbarButtonComponent-icon' }), label);
    const button = new Widget({ node });
    button.addClass('jp-ToolbarButton');
    button.addClass('mlops-notebook-action');
    node.onclick = () => void this._click(context, plan);
    const show = (action: INotebookPlan['action']) => {
      node.dataset.action = action;
      label.textContent = ACTION_LABELS[action];
      node.title = ACTION_TOOLTIPS[action];
    };
    show('template');
    const look = async () => {
      try {
        plan = await notebookPlan(context.path);
      } catch {
        plan = null; // a cell that does not parse: the click says why
      }
      if (!button.isDisposed) {
        show(plan?.action ?? 'template');
      }
    };
    // A notebook closed while it opens rejects `ready` ('Disposed'): no button to show then.
    context.ready.then(
      () => {
        if (!button.isDisposed) {
          panel.toolbar.insertItem(10, 'mlops-notebook-action', button);
          void look();
        }
      },
      () => undefined
    );
    context.fileChanged.connect(() => void look()); // saved: a clone's metadata, a new cell
    return button;
  }

  private async _click(
    context: DocumentRegistry.IContext<INotebookModel>,
    plan: INotebookPlan | null
  ): Promise<void> {
    try {
      if (plan?.action !== 'open' && context.model.dirty) {
        await context.save(); // what the runner reads is what the user sees
      }
      await notebookAction(context.path, this._actions);
    } catch (err) {
      await showDialog({
        title: 'MLOps',
        body: errorText(err),
        buttons: [Dialog.okButton()]
      });
    }
  }
}

export const NotebookCommandIDs = {
  run: 'mlops:run-notebook',
  open: 'mlops:open-notebook-run'
};

/**
 * The two entries of the file browser's context menu on notebooks: "Run as an MLOps template…"
 * (a clone runs as a clone; a run's executed notebook is refused, saying why) and "Open in the
 * audit trail" (shown only on a notebook in a run's folder of the audit trail: `runsFolder()`,
 * relative to the server's root, null when the trail is outside the browser's folder; the
 * server says whether it is the run's executed notebook).
 */
export function addNotebookCommands(
  app: JupyterFrontEnd,
  browser: IDefaultFileBrowser,
  actions: INotebookActions,
  runsFolder: () => string | null
): void {
  const selected = (): string | null => {
    const item = browser.selectedItems().next();
    return !item.done && item.value.type === 'notebook' ? item.value.path : null;
  };
  const isRun = () => {
    const path = selected();
    return path !== null && inRunsFolder(path, runsFolder());
  };
  const act = async (path: string, want: 'open' | 'run') => {
    try {
      await notebookAction(path, actions, want);
    } catch (err) {
      await showDialog({ title: 'MLOps', body: errorText(err), buttons: [Dialog.okButton()] });
    }
  };
  app.commands.addCommand(NotebookCommandIDs.run, {
    label: ACTION_LABELS.template,
    caption: ACTION_TOOLTIPS.template,
    icon: mlopsIcon,
    isVisible: () => selected() !== null,
    execute: () => {
      const path = selected();
      return path === null ? undefined : act(path, 'run');
    }
  });
  app.commands.addCommand(NotebookCommandIDs.open, {
    label: ACTION_LABELS.open,
    caption: ACTION_TOOLTIPS.open,
    icon: mlopsIcon,
    isVisible: isRun,
    execute: () => {
      const path = selected();
      return path === null ? undefined : act(path, 'open');
    }
  });
  const selector = '.jp-DirListing-item[data-file-type="notebook"]';
  app.contextMenu.addItem({ command: NotebookCommandIDs.run, selector, rank: 60 });
  app.contextMenu.addItem({ command: NotebookCommandIDs.open, selector, rank: 61 });
}
