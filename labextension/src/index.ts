/**
 * mlops-widgets in JupyterLab: a launcher tile and a palette command "MLOps panel" opening the
 * panel in a main-area tab, a left sidebar with the deployments and the audit trail, read-only
 * run tabs with Re-run and Clone, a status bar item counting the running runs (all three follow
 * one change feed), the audit trail's action on every notebook (toolbar and file browser menu),
 * and the browser's settings in the Settings Editor.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { IInfo, requestAPI } from './api';
import { ChangeFeed } from './feed';
import { mlopsIcon } from './icon';
import { MLOpsPanelWidget } from './panel';
import { RunContent, runWidget } from './runview';
import { IBrowserSettings, SETTING_DEFAULTS, readSettings } from './settings';
import { MLOpsSidebar } from './sidebar';
import { MLOpsStatus } from './status';
import { NotebookActionButton, addNotebookCommands } from './toolbar';
import { widgetsPlugin } from './widgets';

export const CommandIDs = {
  openPanel: 'mlops:open-panel',
  openRun: 'mlops:open-run',
  refresh: 'mlops:refresh'
};

const OPENED_KEY = 'mlops-widgets:panel-opened';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlops-widgets:plugin',
  description: 'The MLOps panel, sidebar and audit trail in JupyterLab.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [
    ILauncher,
    ICommandPalette,
    ILayoutRestorer,
    IStatusBar,
    ISettingRegistry,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    fileBrowser: IDefaultFileBrowser | null
  ) => {
    const { commands, shell } = app;
    let panel: MLOpsPanelWidget | null = null;
    let settings: IBrowserSettings = { ...SETTING_DEFAULTS };
    let info: IInfo | null = null;
    // One follower of the workspace's change feed for the sidebar, the status bar and run tabs.
    const feed = new ChangeFeed();

    const runs = new WidgetTracker<MainAreaWidget<RunContent>>({ namespace: 'mlops-run' });
    // The panel's tab comes back after a reload (with a fresh kernel; the old one is ended).
    const panels = new WidgetTracker<MLOpsPanelWidget>({ namespace: 'mlops-panel' });
    const sidebar = new MLOpsSidebar(
      runId => void commands.execute(CommandIDs.openRun, { runId }),
      () => void commands.execute(CommandIDs.openPanel),
      feed
    );
    sidebar.title.icon = mlopsIcon;

    commands.addCommand(CommandIDs.openPanel, {
      label: 'MLOps panel',
      caption: "Stage, deploy and monitor models: the MLOps panel on this server's workspace",
      icon: args => (args['isPalette'] ? undefined : mlopsIcon),
      execute: () => {
        if (!panel || panel.isDisposed) {
          panel = new MLOpsPanelWidget(app, rendermime, settings.notifyAfterSeconds);
          panel.title.icon = mlopsIcon;
          void panels.add(panel);
          shell.add(panel, 'main');
        }
        shell.activateById(panel.id);
        return panel;
      }
    });

    commands.addCommand(CommandIDs.openRun, {
      label: args => `Open run ${String(args['runId'] || '').slice(0, 8)}`,
      execute: args => {
        const runId = String(args['runId']);
        const workspace = String(args['workspace'] || '');
        const open = runs.find(w => w.id === `mlops-run-${runId}`);
        if (open) {
          shell.activateById(open.id);
          return open;
        }
        const widget = runWidget(
          runId,
          workspace,
          rendermime,
          {
            openRun: (id, ws) =>
              void commands.execute(CommandIDs.openRun, { runId: id, workspace: ws || '' }),
            openPath: path => void commands.execute('docmanager:open', { path }),
            changed: () => void sidebar.refresh()
          },
          feed
        );
        widget.title.icon = mlopsIcon;
        void runs.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
        return widget;
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the MLOps sidebar',
      execute: () => sidebar.refresh()
    });

    if (launcher) {
      launcher.add({ command: CommandIDs.openPanel, category: 'Other', rank: 0 });
    }
    if (palette) {
      for (const command of [CommandIDs.openPanel, CommandIDs.refresh]) {
        palette.addItem({ command, category: 'MLOps' });
      }
    }

    shell.add(sidebar, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(sidebar, 'mlops-sidebar');
      void restorer.restore(panels, { command: CommandIDs.openPanel, name: () => 'panel' });
      void restorer.restore(runs, {
        command: CommandIDs.openRun,
        args: w => ({ runId: w.content.runId, workspace: w.content.workspace }),
        name: w => w.content.runId
      });
    }

    // The panel's links to runs (wherever the panel is: this tab or a notebook) open the run
    // read-only in this JupyterLab instead of a new browser tab with the notebook editable.
    document.addEventListener(
      'click',
      event => {
        const link = (event.target as HTMLElement | null)?.closest?.('a.mlops-open-link[data-run]');
        if (link instanceof HTMLElement && link.dataset.run) {
          event.preventDefault();
          event.stopPropagation();
          void commands.execute(CommandIDs.openRun, {
            runId: link.dataset.run,
            workspace: link.dataset.workspace || ''
          });
        }
      },
      true
    );

    if (statusBar) {
      statusBar.registerStatusItem('mlops-widgets:status', {
        item: new MLOpsStatus(feed, () => shell.activateById(sidebar.id)),
        align: 'left',
        rank: 50
      });
    }
    feed.start();

    const loaded = settingRegistry
      ? settingRegistry.load(plugin.id).then(
          registry => {
            const apply = () => {
              settings = readSettings(registry.composite);
              sidebar.pageSize = settings.sidebarPageSize;
            };
            apply();
            registry.changed.connect(apply);
          },
          () => undefined // no settings: the defaults
        )
      : Promise.resolve();

    // Started by `mlops lab`, or the user's setting: the panel opens once per browser session.
    void Promise.all([app.restored, requestAPI<IInfo>('info'), loaded]).then(([, answer]) => {
      info = answer;
      const open = info.open_panel || settings.openPanelOnStart;
      if (open && !sessionStorage.getItem(OPENED_KEY)) {
        sessionStorage.setItem(OPENED_KEY, '1');
        void commands.execute(CommandIDs.openPanel);
      }
    });

    const notebookActions = {
      openRun: (runId: string) => void commands.execute(CommandIDs.openRun, { runId })
    };
    app.docRegistry.addWidgetExtension('Notebook', new NotebookActionButton(notebookActions));
    if (fileBrowser) {
      addNotebookCommands(app, fileBrowser, notebookActions, () => info?.runs_shown ?? null);
    }
  }
};

export default [plugin, widgetsPlugin];
