// "Undo last cell's variable changes": %mv_undo in the notebook's kernel (jupyter_mv/undo.py keeps the
// variables before each executed cell). The notebook's code and outputs are not touched.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { runMagic, tellNotebook } from './kernel';

export const UNDO_CELL = 'jupyter-mv:undo-cell';

export interface IUndoOptions {
  current: () => NotebookPanel | null;
  palette: ICommandPalette | null;
  /** Called after the kernel answered (the undone state may be a new version: the list re-reads). */
  done: () => void;
}

/** Register the command; its keyboard shortcut (Accel Alt Z in command mode: free in JupyterLab's
 * defaults, where Accel Shift Z is Redo) is declared in schema/plugin.json so users can rebind it. */
export function registerUndo(app: JupyterFrontEnd, options: IUndoOptions): void {
  app.commands.addCommand(UNDO_CELL, {
    label: "Undo last cell's variable changes",
    caption: 'Model versions: put the kernel\'s variables back as they were before the last executed cell ' +
      'that changed any (%mv_undo); the code is not touched. Repeat to walk further back.',
    isEnabled: () => options.current() !== null,
    execute: async () => {
      const nb = options.current();
      if (!nb) {
        return;
      }
      await nb.sessionContext.ready;
      if (!nb.sessionContext.session?.kernel) {
        Notification.warning('Undo needs the notebook\'s kernel, and it has none running.', { autoClose: 5000 });
        return;
      }
      await tellNotebook(nb);
      const result = await runMagic(nb, ['%mv_undo']);
      options.done();
      if (!result.ok) {
        Notification.error(`Undo failed: ${result.text}`, { autoClose: 8000 });
      } else if (result.text.startsWith('nothing to undo') || result.text.startsWith('cannot undo')) {
        Notification.info(result.text, { autoClose: 6000 });
      } else if (result.text.includes('jupyter_mv warning')) {
        Notification.warning(result.text, { autoClose: 10000 });
      } else {
        Notification.success(result.text || 'Undone', { autoClose: 6000 });
      }
    }
  });
  options.palette?.addItem({ command: UNDO_CELL, category: 'Model versions' });
}
