/**
 * "Run in the audit trail" on the toolbar of notebooks cloned from a template or a run: the
 * clone's parameters cell goes through the runner (validated like any run), so the run leaves
 * an executed copy and a record, instead of cells run by hand that leave none.
 */
import { Dialog, Notification, ToolbarButton, showDialog } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';

import { INotebookPlan, cancelJob, errorText, jobProgressText, requestAPI, runJob } from './api';
import { mlopsIcon } from './icon';
import { ParametersForm } from './runview';

export class RunInTrailButton implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private _after: (runId: string) => void) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    const button = new ToolbarButton({
      className: 'mlops-run-in-trail',
      icon: mlopsIcon,
      label: 'Run in the audit trail',
      tooltip:
        "Run this notebook's parameters through the runner: validated, recorded in the audit trail",
      onClick: () => void this._run(context)
    });
    void context.ready.then(() => {
      const meta = context.model.getMetadata('mlops') as any;
      if (meta && meta.cloned_from && !button.isDisposed) {
        panel.toolbar.insertItem(10, 'mlops-run-in-trail', button);
      }
    });
    return button;
  }

  private async _run(context: DocumentRegistry.IContext<INotebookModel>): Promise<void> {
    try {
      await context.save();
      const path = context.path;
      const plan = await requestAPI<INotebookPlan>(
        `notebooks/plan?path=${encodeURIComponent(path)}`
      );
      const origin = plan.origin.run_id
        ? `as a re-run of ${plan.origin.template} run ${plan.origin.run_id.slice(0, 8)}`
        : `as a run of the template ${plan.origin.template}`;
      const form = new ParametersForm(
        plan.parameters,
        {},
        plan.secret_names,
        `Run ${origin}, with the values of this notebook's parameters cell:`
      );
      const answer = await showDialog({
        title: 'Run in the audit trail?',
        body: form,
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Run' })]
      });
      if (!answer.button.accept) {
        return;
      }
      const id = Notification.emit(`Running ${path} in the audit trail…`, 'in-progress', {
        autoClose: false
      });
      try {
        const out = await runJob('notebooks/run', { path, secrets: answer.value ?? {} }, job =>
          Notification.update({
            id,
            message: `Running ${path} as ${job.short_id}: ${jobProgressText(job)}`,
            type: 'in-progress',
            autoClose: false,
            actions: [{ label: 'Cancel', callback: () => void cancelJob(job.job_id) }]
          })
        );
        Notification.update({
          id,
          message: `Run ${out.short_id} ${out.status}${out.error ? ': ' + out.error : ''}`,
          type: out.status === 'ok' ? 'success' : out.status === 'cancelled' ? 'warning' : 'error',
          autoClose: 8000
        });
        this._after(out.run_id);
      } catch (err) {
        Notification.update({ id, message: errorText(err), type: 'error', autoClose: false });
      }
    } catch (err) {
      Notification.error(errorText(err), { autoClose: false });
    }
  }
}
