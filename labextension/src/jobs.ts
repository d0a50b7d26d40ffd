/**
 * A template run the server executes as a job, followed in a JupyterLab notification: its
 * progress with a Cancel action, then its outcome. The run tab's Re-run and the notebook
 * actions (the toolbar button, the file browser's menu) all follow their runs here.
 */
import { Notification } from '@jupyterlab/apputils';

import { IJob, IRunOutcome, cancelJob, errorText, followJob, jobProgressText, post } from './api';

/**
 * Follow the started `job` in a notification headed `what` ("Re-running A1_Stage (1a2b3c4d)").
 * Returns the run's outcome, or null when the job ended without one (the notification says why
 * and stays).
 */
export async function followInNotification(what: string, job: IJob): Promise<IRunOutcome | null> {
  const id = Notification.emit(`${what}…`, 'in-progress', { autoClose: false });
  try {
    const out = await followJob(job, current =>
      Notification.update({
        id,
        message: `${what} as ${current.short_id}: ${jobProgressText(current)}`,
        type: 'in-progress',
        autoClose: false,
        actions: [{ label: 'Cancel', callback: () => void cancelJob(current.job_id) }]
      })
    );
    Notification.update({
      id,
      message: outcomeText(out),
      type: out.status === 'ok' ? 'success' : out.status === 'cancelled' ? 'warning' : 'error',
      autoClose: out.status === 'ok' ? 8000 : false
    });
    return out;
  } catch (err) {
    Notification.update({ id, message: errorText(err), type: 'error', autoClose: false });
    return null;
  }
}

/** Start the job at `endpoint` and follow it in a notification; a refusal is a notification too. */
export async function runInNotification(
  what: string,
  endpoint: string,
  body: unknown
): Promise<IRunOutcome | null> {
  let job: IJob;
  try {
    job = await post<IJob>(endpoint, body);
  } catch (err) {
    Notification.error(errorText(err), { autoClose: false });
    return null;
  }
  return followInNotification(what, job);
}

/** "Run 1a2b3c4d ok", or its status and error. */
export function outcomeText(out: IRunOutcome): string {
  return `Run ${out.short_id} ${out.status}${out.error ? ': ' + out.error : ''}`;
}
