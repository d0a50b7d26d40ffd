/**
 * The extension's settings that belong to the browser (JupyterLab's Settings Editor, schema in
 * schema/plugin.json); the workspace's and the server's stay in `mlops settings`.
 */
export interface IBrowserSettings {
  /** Open the MLOps panel when JupyterLab starts (`mlops lab` always does). */
  openPanelOnStart: boolean;
  /** Runs the sidebar lists at first and adds with each "Show more". */
  sidebarPageSize: number;
  /** A panel step longer than this (seconds) is also a notification when it ends. */
  notifyAfterSeconds: number;
}

export const SETTING_DEFAULTS: IBrowserSettings = {
  openPanelOnStart: false,
  sidebarPageSize: 50,
  notifyAfterSeconds: 2
};

/** The settings from the registry's composite; a missing or wrong value keeps its default. */
export function readSettings(composite: { readonly [key: string]: unknown }): IBrowserSettings {
  const number = (key: keyof IBrowserSettings, min: number): number => {
    const value = composite[key];
    return typeof value === 'number' && Number.isFinite(value) && value >= min
      ? value
      : (SETTING_DEFAULTS[key] as number);
  };
  return {
    openPanelOnStart:
      typeof composite.openPanelOnStart === 'boolean'
        ? composite.openPanelOnStart
        : SETTING_DEFAULTS.openPanelOnStart,
    sidebarPageSize: Math.floor(number('sidebarPageSize', 1)),
    notifyAfterSeconds: number('notifyAfterSeconds', 0)
  };
}
