// jupyter_mv for JupyterLab: the "Model versions" sidebar, Snapshot / Restore / Restore outputs /
// Diff commands (palette, notebook toolbar, panel buttons), and the kernel told which notebook it runs.
import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, InputDialog, MainAreaWidget, Notification, showDialog, ToolbarButton } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { KernelMessage } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';
import { DisposableDelegate } from '@lumino/disposable';
import { SplitPanel, Widget } from '@lumino/widgets';
import * as api from './api';
import { DiffView } from './diffview';
import { haveKernel, runMagic, snapshotLine, tellNotebook } from './kernel';
import { IOutputRestore, restoreOutputs } from './outputs';
import { IPanelOptions, VersionsPanel } from './panel';
import { setRenderMime } from './labOutputs';
import { restoreVariables } from './restoring';
import { CHECKOUT, registerCheckout } from './checkout';
import { ResumeOffers } from './resume';
import { GraphViews } from './graphview';
import { RemoteViews } from './remote';
import { registerUndo } from './undo';

const PLUGIN_ID = 'jupyter-mv-labextension:plugin';
const CLIENT_API = 1;

export namespace CommandIDs {
  export const snapshot = 'jupyter-mv:snapshot';
  export const restore = 'jupyter-mv:restore';
  export const restoreOutputs = 'jupyter-mv:restore-outputs';
  export const undoRestoreOutputs = 'jupyter-mv:undo-restore-outputs';
  export const diff = 'jupyter-mv:diff';
  export const openPanel = 'jupyter-mv:open-panel';
}

const versionsIcon = new LabIcon({
  name: 'jupyter-mv:versions',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="6" cy="5" r="2.5"/><circle cx="6" cy="19" r="2.5"/><circle cx="18" cy="12" r="2.5"/>' +
    '<rect x="5" y="6" width="2" height="12"/><path d="M6 8c0 3 3 4 10 4h0v-1.5C10 10.5 7 9.5 7 7z"/></g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Model versions of the active notebook: history, snapshot, restore, diff.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  // ILabShell is provided by JupyterLab only: without it this runs in another shell (Notebook 7),
  // whose left area is a side panel collapsed by default, so the panel gets a toolbar button
  // ISettingRegistry: the panel's options (schema/plugin.json); without it the defaults apply
  optional: [ICommandPalette, ILayoutRestorer, ILabShell, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const { commands } = app;
    setRenderMime(rendermime); // recorded outputs in the panel and diff tab render through it, untrusted
    let lastRestore: IOutputRestore | null = null;

    const panel = new VersionsPanel({
      snapshot: () => void commands.execute(CommandIDs.snapshot),
      restore: () => void commands.execute(CommandIDs.restore),
      restoreOutputs: () => void commands.execute(CommandIDs.restoreOutputs),
      diff: () => void commands.execute(CommandIDs.diff)
    });
    panel.title.icon = versionsIcon;
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, panel.id);

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings) => {
        const composite = settings.composite as Partial<IPanelOptions>;
        panel.setOptions({
          showAutomaticVersions: composite.showAutomaticVersions !== false,
          refreshInterval: typeof composite.refreshInterval === 'number' ? composite.refreshInterval : 5
        });
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(e => console.warn('jupyter_mv: cannot load the Model versions settings; using the defaults', e));
    }

    const notifyCommands = () => {
      for (const id of Object.values(CommandIDs)) {
        commands.notifyCommandChanged(id);
      }
    };
    panel.changed.connect(notifyCommands);

    const current = (): NotebookPanel | null => tracker.currentWidget;

    /** The selected version, or ask for one. */
    const pickVersion = async (title: string): Promise<string | null> => {
      if (panel.notebook !== current()) {
        panel.setNotebook(current());
        await panel.refresh();
      }
      const sel = panel.selected;
      if (sel.length === 1) {
        return sel[0].id;
      }
      const items = [...panel.versions].reverse().map(v => `${v.id}${v.message ? ' — ' + v.message : ''}`);
      if (!items.length) {
        Notification.warning('This notebook has no model versions yet.', { autoClose: 4000 });
        return null;
      }
      const got = await InputDialog.getItem({ title, items, current: 0 });
      return got.button.accept && got.value ? got.value.split(' ')[0] : null;
    };

    commands.addCommand(CommandIDs.snapshot, {
      label: 'Snapshot',
      caption: 'Model versions: snapshot the notebook\'s variables, cells and outputs (%mv_snapshot)',
      icon: versionsIcon,
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        if (!nb || !haveKernel(nb, 'A snapshot')) {
          return;
        }
        const got = await InputDialog.getText({ title: 'Snapshot', label: 'Message (optional)', placeholder: 'what changed?' });
        if (!got.button.accept) {
          return;
        }
        await nb.sessionContext.ready;
        await tellNotebook(nb);
        const result = await runMagic(nb, [snapshotLine(got.value ?? '')]);
        if (result.ok) {
          Notification.success(result.text || 'Snapshot taken', { autoClose: 4000 });
        } else {
          Notification.error(`Snapshot failed: ${result.text}`, { autoClose: 8000 });
        }
        await panel.refresh();
      }
    });

    commands.addCommand(CommandIDs.restore, {
      label: 'Restore',
      caption: 'Model versions: put the selected version\'s variables back into the kernel (%mv_restore)',
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        if (!nb || !haveKernel(nb, 'Restore')) {
          return;
        }
        const id = await pickVersion('Restore which version?');
        if (!id) {
          return;
        }
        const ok = await showDialog({
          title: `Restore ${id}?`,
          body: `The kernel's variables get ${id}'s values (names ${id} does not have are left alone).`,
          buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Restore' })]
        });
        if (!ok.button.accept) {
          return;
        }
        await restoreVariables(nb, id);
      }
    });

    commands.addCommand(CommandIDs.restoreOutputs, {
      label: 'Restore outputs',
      caption: 'Model versions: replace the notebook\'s cell outputs with the selected version\'s',
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        const id = await pickVersion('Restore the outputs of which version?');
        if (!nb || !id) {
          return;
        }
        try {
          const details = await api.versionDetails(nb.context.path, id);
          // outputs of a version made elsewhere (imported, pulled) land in untrusted cells
          const r = restoreOutputs(nb, id, details.cells, api.madeHere(details));
          lastRestore = r;
          notifyCommands();
          if (r.matched) {
            const untrusted = api.madeHere(details) ? '' : ` ${id} was not made here (${details.origin ?? 'unknown origin'}): the cells are untrusted, so no script in them runs.`;
            Notification.info(`Outputs of ${r.matched} cell(s) restored from ${id}.${untrusted}`, {
              autoClose: 6000,
              actions: [{ label: 'Undo', callback: () => void commands.execute(CommandIDs.undoRestoreOutputs) }]
            });
          } else {
            Notification.warning(`No cell of this notebook matches a cell of ${id}.`, { autoClose: 5000 });
          }
        } catch (e) {
          Notification.error(`Cannot restore outputs: ${(e as Error).message}`, { autoClose: 8000 });
        }
      }
    });

    commands.addCommand(CommandIDs.undoRestoreOutputs, {
      label: 'Undo restore outputs',
      caption: 'Model versions: put back the outputs the last "Restore outputs" replaced',
      isEnabled: () => lastRestore !== null && !lastRestore.panel.isDisposed,
      execute: () => {
        if (lastRestore) {
          lastRestore.undo();
          lastRestore = null;
          notifyCommands();
        }
      }
    });

    commands.addCommand(CommandIDs.diff, {
      label: 'Diff',
      caption: 'Model versions: compare two versions side by side (the two selected, or the selected and its parent)',
      isEnabled: () => current() !== null,
      execute: async () => {
        const nb = current();
        if (!nb) {
          return;
        }
        if (panel.notebook !== nb) {
          panel.setNotebook(nb);
        }
        await panel.refresh();
        const vs = panel.versions;
        const sel = panel.selected;
        let pair: [string, string] | null = null;
        if (sel.length === 2) {
          pair = [sel[0].id, sel[1].id];
        } else if (sel.length === 1) {
          const i = vs.findIndex(v => v.id === sel[0].id);
          const before = sel[0].parent ?? (i > 0 ? vs[i - 1].id : null);
          pair = before ? [before, sel[0].id] : null;
        } else if (vs.length >= 2) {
          pair = [vs[vs.length - 2].id, vs[vs.length - 1].id];
        }
        if (!pair) {
          Notification.warning('A diff needs two versions: select one with a parent, or two with Ctrl-click.', { autoClose: 5000 });
          return;
        }
        showDiff(new DiffView(nb.context.path, pair[0], pair[1]));
      }
    });

    /** Put a diff where this shell has room: a main-area tab (JupyterLab); else the bottom area
     * (Notebook 7 keeps a single document in its main area and ignores a second one silently);
     * else inside the Model versions panel. Which one works is seen from whether the widget got
     * attached, not guessed from the shell's name. */
    const openDiffs = new Map<string, MainAreaWidget>();
    const showDiff = (content: DiffView): void => {
      // versions never change, so a diff already open for the same pair is shown again
      const key = JSON.stringify([content.notebook, content.a, content.b]);
      const open = openDiffs.get(key);
      if (open && !open.isDisposed && open.isAttached) {
        content.dispose();
        app.shell.activateById(open.id);
        return;
      }
      const widget = new MainAreaWidget({ content });
      widget.id = content.id;
      widget.title.label = content.title.label;
      widget.title.caption = content.title.caption;
      widget.title.icon = versionsIcon;
      widget.title.closable = true;
      for (const area of ['main', 'down'] as const) {
        try {
          app.shell.add(widget, area);
        } catch (e) {
          console.warn(`jupyter_mv: the shell refused the diff in its ${area} area`, e);
        }
        if (widget.isAttached) {
          openDiffs.set(key, widget);
          widget.disposed.connect(() => openDiffs.delete(key));
          app.shell.activateById(widget.id);
          if (area === 'down') {
            growSplitArea(widget);
          }
          return;
        }
      }
      content.parent = null; // out of the unused wrapper, into the panel
      widget.dispose();
      try {
        app.shell.activateById(panel.id);
        panel.showDiff(content);
      } catch (e) {
        content.dispose();
        Notification.error(`Cannot show the diff of ${content.a} and ${content.b} here: ${(e as Error).message}. ` +
          `%mv_diff ${content.a} ${content.b} in a cell shows it too.`, { autoClose: 10000 });
      }
    };

    commands.addCommand(CommandIDs.openPanel, {
      label: 'Show model versions',
      caption: 'Model versions: open the panel of the active notebook\'s versions',
      icon: versionsIcon,
      execute: () => app.shell.activateById(panel.id)
    });

    /** The side panel in or out of view (Notebook 7's toolbar button). */
    const togglePanel = () => {
      const shell = app.shell as JupyterFrontEnd.IShell & { collapseLeft?: () => void };
      if (panel.isVisible && shell.collapseLeft) {
        shell.collapseLeft();
      } else {
        app.shell.activateById(panel.id);
      }
    };

    // issue 16: undo a cell's variable changes, check out code and/or data, resume after a kernel start
    registerUndo(app, { current, palette, done: () => panel.scheduleRefresh() });
    registerCheckout(app, { current, pickVersion, palette });
    panel.addAction('Checkout', 'jp-mv-action-checkout', () => void commands.execute(CHECKOUT),
      'Put the selected version\'s code into this notebook and/or its variables into the kernel');
    new GraphViews(panel); // the Table | Graph toggle and a variable's history
    new RemoteViews(app, panel, { current, pickVersion, palette }); // issue 14: ☁ marks, Push / Pull
    const resume = new ResumeOffers(panel);
    tracker.forEach(nb => resume.watch(nb));
    tracker.widgetAdded.connect((_, nb) => resume.watch(nb));

    if (palette) {
      const category = 'Model versions';
      for (const command of [CommandIDs.snapshot, CommandIDs.restore, CommandIDs.restoreOutputs, CommandIDs.undoRestoreOutputs, CommandIDs.diff, CommandIDs.openPanel]) {
        palette.addItem({ command, category });
      }
    }

    // notebook toolbar button
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (nb: NotebookPanel) => {
        const button = new ToolbarButton({
          className: 'jp-mv-snapshot-button',
          label: 'Snapshot',
          icon: versionsIcon,
          tooltip: 'Model versions: snapshot (%mv_snapshot)',
          onClick: () => {
            if (tracker.currentWidget !== nb) {
              app.shell.activateById(nb.id);
            }
            void commands.execute(CommandIDs.snapshot);
          }
        });
        if (!nb.toolbar.insertAfter('cellType', 'jupyterMvSnapshot', button)) {
          nb.toolbar.insertItem(10, 'jupyterMvSnapshot', button);
        }
        if (labShell) {
          return new DisposableDelegate(() => button.dispose());
        }
        // outside JupyterLab the panel's sidebar tab is hidden with the collapsed side panel
        const show = new ToolbarButton({
          className: 'jp-mv-panel-button',
          label: 'Versions',
          tooltip: 'Model versions: show or hide the panel of this notebook\'s versions',
          onClick: () => {
            if (tracker.currentWidget !== nb) {
              app.shell.activateById(nb.id);
            }
            togglePanel();
          }
        });
        nb.toolbar.insertAfter('jupyterMvSnapshot', 'jupyterMvVersions', show);
        return new DisposableDelegate(() => {
          button.dispose();
          show.dispose();
        });
      }
    });

    // each notebook: tell its kernel which notebook it runs, follow renames, refresh on activity
    tracker.widgetAdded.connect((_, nb) => followNotebook(nb, panel));
    tracker.currentChanged.connect(() => panel.setNotebook(tracker.currentWidget));
    panel.setNotebook(tracker.currentWidget);

    api
      .serverVersion()
      .then(v => {
        if (v.api !== CLIENT_API) {
          console.warn(`jupyter_mv: server API level ${v.api}, this extension speaks ${CLIENT_API}`);
        }
      })
      .catch(e => console.warn('jupyter_mv: the server extension does not answer', e));
  }
};

/** Notebook 7 opens its bottom area at the height of its tab bar, which hides the diff: give the
 * area holding `widget` at least 45% of the split it sits in (the user can drag it afterwards). */
function growSplitArea(widget: Widget): void {
  let child: Widget = widget;
  while (child.parent && !(child.parent instanceof SplitPanel)) {
    child = child.parent;
  }
  const split = child.parent;
  if (!(split instanceof SplitPanel) || split.widgets.length < 2) {
    return;
  }
  const i = split.widgets.indexOf(child);
  const sizes = split.relativeSizes();
  if (i < 0 || sizes[i] >= 0.3) {
    return;
  }
  const rest = sizes.reduce((a, b) => a + b, 0) - sizes[i];
  split.setRelativeSizes(sizes.map((s, j) => (j === i ? 0.45 : rest > 0 ? (0.55 * s) / rest : 0.55 / (sizes.length - 1))));
}

function followNotebook(nb: NotebookPanel, panel: VersionsPanel): void {
  const session = nb.sessionContext;
  let needsTell = true;
  let path = nb.context.path;
  const tell = () => {
    needsTell = false;
    void tellNotebook(nb);
  };
  session.kernelChanged.connect(() => {
    needsTell = true;
  });
  session.statusChanged.connect((_, status) => {
    if (['starting', 'restarting', 'autorestarting', 'dead', 'unknown'].includes(status)) {
      needsTell = true;
    } else if (status === 'idle' && needsTell && session.session?.kernel) {
      tell();
    }
  });
  void session.ready.then(() => {
    if (needsTell && session.session?.kernel) {
      tell();
    }
  });
  nb.context.pathChanged.connect(async (_, newPath) => {
    const oldPath = path;
    path = newPath;
    if (oldPath === newPath) {
      return;
    }
    try {
      await api.rename(oldPath, newPath);
      panel.setMovedNote(nb, oldPath, null);
    } catch (e) {
      Notification.warning(`Model versions: the history of ${oldPath} stays under its old name (${(e as Error).message})`, { autoClose: 8000 });
      // the toast goes; the panel keeps saying why this notebook now lists no versions
      panel.setMovedNote(nb, oldPath, (e as Error).message);
    }
    tell();
    if (panel.notebook === nb) {
      void panel.refresh();
    }
  });
  // a snapshot from a magic or a widget ends with the kernel going idle after the request
  session.iopubMessage.connect((_, msg: KernelMessage.IMessage) => {
    if (panel.notebook !== nb || !panel.isVisible || msg.header.msg_type !== 'status') {
      return;
    }
    const state = (msg.content as KernelMessage.IStatusMsg['content']).execution_state;
    const parent = (msg.parent_header as KernelMessage.IHeader | undefined)?.msg_type;
    if (state === 'idle' && (parent === 'execute_request' || parent === 'comm_msg')) {
      panel.scheduleRefresh();
    }
  });
}

export default plugin;
