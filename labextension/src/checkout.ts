// "Check out a version": its cell sources and outputs into the OPEN notebook (the notebook model in the
// page, never the file on disk), its variables into the kernel, or both. One undo brings the previous
// notebook back: JupyterLab's notebook undo (the change is one shared-model transaction), or the
// "Undo checkout" command, which puts back the cells as they were, unsaved edits included.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ICommandPalette, Notification, showDialog } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import * as api from './api';
import { haveKernel } from './kernel';
import { matchCells, normaliseOutput } from './outputs';
import { restoreVariables } from './restoring';

export const CHECKOUT = 'jupyter-mv:checkout';
export const UNDO_CHECKOUT = 'jupyter-mv:undo-checkout';

/** How to take a checkout back. */
export interface ICodeCheckout {
  panel: NotebookPanel;
  version: string;
  /** Notebook cells given the version's source and outputs. */
  matched: number;
  /** Cells of the version the notebook no longer had, inserted. */
  inserted: number;
  undo(): void;
}

type CellJSON = { [key: string]: any };

function setCells(panel: NotebookPanel, cells: CellJSON[]): void {
  const shared = panel.content.model!.sharedModel;
  // one transaction: one step of the notebook's own undo (Z in command mode) takes it back
  shared.transact(() => {
    shared.deleteCellRange(0, shared.cells.length);
    shared.insertCells(0, cells as any);
  });
}

/**
 * Put the version's cells into the notebook: a notebook cell that ran in the version (same cell id,
 * else the same source) gets the version's source, outputs and execution count; a cell of the version
 * the notebook no longer has is inserted after the version's cell that ran before it; other cells
 * (markdown, cells added since) stay as they are. Cells from a version made elsewhere (`trusted`
 * false) are created untrusted, so their outputs render sanitized and run no script.
 */
export function checkoutCode(panel: NotebookPanel, version: string, stored: api.IStoredCell[], trusted: boolean): ICodeCheckout {
  const shared = panel.content.model!.sharedModel;
  const before: CellJSON[] = shared.cells.map(c => c.toJSON() as CellJSON);
  const code = shared.cells.filter(c => c.cell_type === 'code');
  const matches = matchCells(code.map(c => ({ id: c.getId(), source: c.getSource() })), stored);
  const placedAt = new Map<api.IStoredCell, string>(); // stored cell -> notebook cell id
  for (const [id, hit] of matches) {
    placedAt.set(hit, id);
  }
  const fromVersion = (c: api.IStoredCell, base: CellJSON): CellJSON => ({
    ...base,
    cell_type: 'code',
    source: c.source,
    outputs: c.outputs.map(normaliseOutput),
    execution_count: c.execution_count ?? null,
    metadata: { ...(base.metadata ?? {}), trusted }
  });
  const cells: CellJSON[] = before.map(j => {
    const hit = matches.get(j.id);
    return hit ? fromVersion(hit, j) : { ...j };
  });
  const ids = new Set(cells.map(c => c.id));
  let inserted = 0;
  let anchor = -1; // index in `cells` of the version's cell placed last
  const firstMatched = cells.findIndex(c => matches.has(c.id));
  for (const c of stored) {
    const at = placedAt.get(c);
    if (at !== undefined) {
      anchor = cells.findIndex(x => x.id === at);
      continue;
    }
    const fresh = fromVersion(c, { metadata: {} });
    if (c.cell_id && !ids.has(c.cell_id)) {
      fresh.id = c.cell_id;
      ids.add(c.cell_id);
    }
    const pos = anchor >= 0 ? anchor + 1 : firstMatched >= 0 ? firstMatched + inserted : cells.length;
    cells.splice(pos, 0, fresh);
    anchor = pos;
    inserted++;
  }
  setCells(panel, cells);
  let undone = false;
  return {
    panel,
    version,
    matched: matches.size,
    inserted,
    undo: () => {
      if (!undone && !panel.isDisposed && panel.content.model) {
        undone = true;
        setCells(panel, before);
      }
    }
  };
}

export interface ICheckoutOptions {
  current: () => NotebookPanel | null;
  pickVersion: (title: string) => Promise<string | null>;
  palette: ICommandPalette | null;
}

const CODE = 'Code only';
const VARIABLES = 'Variables only';
const BOTH = 'Code and variables';

export function registerCheckout(app: JupyterFrontEnd, options: ICheckoutOptions): void {
  const { commands } = app;
  let last: ICodeCheckout | null = null;
  const changed = () => commands.notifyCommandChanged(UNDO_CHECKOUT);

  commands.addCommand(CHECKOUT, {
    label: 'Check out a version…',
    caption: 'Model versions: put the selected version\'s cell code and outputs into this notebook, its ' +
      'variables into the kernel, or both (the notebook\'s undo takes the code back)',
    isEnabled: () => options.current() !== null,
    execute: async () => {
      const nb = options.current();
      const id = await options.pickVersion('Check out which version?');
      if (!nb || !id) {
        return;
      }
      const choice = await showDialog({
        title: `Check out ${id}`,
        body: `Code: the cells ${id} ran get its source and outputs in this notebook (unsaved edits are kept ` +
          'for Undo checkout; the file is not saved). Variables: the kernel gets its variables (%mv_restore).',
        buttons: [
          Dialog.cancelButton(),
          Dialog.okButton({ label: VARIABLES, className: 'jp-mv-checkout-variables' }),
          Dialog.okButton({ label: CODE, className: 'jp-mv-checkout-code' }),
          Dialog.okButton({ label: BOTH, className: 'jp-mv-checkout-both' })
        ]
      });
      if (!choice.button.accept) {
        return;
      }
      const what = choice.button.label;
      if ((what === VARIABLES || what === BOTH) && !haveKernel(nb, `Checking out ${id}'s variables`)) {
        return; // before the code changes: "both" is all or nothing
      }
      if (what === CODE || what === BOTH) {
        try {
          const details = await api.versionDetails(nb.context.path, id);
          const local = api.madeHere(details);
          last = checkoutCode(nb, id, details.cells, local);
          changed();
          const untrusted = local ? '' : ` ${id} was not made here (${details.origin ?? 'unknown origin'}): its cells are untrusted, so no script in their outputs runs.`;
          Notification.info(`Checked out the code of ${id}: ${last.matched} cell(s) updated, ${last.inserted} inserted.${untrusted}`, {
            autoClose: 8000,
            actions: [{ label: 'Undo checkout', callback: () => void commands.execute(UNDO_CHECKOUT) }]
          });
        } catch (e) {
          Notification.error(`Cannot check out the code of ${id}: ${(e as Error).message}`, { autoClose: 8000 });
          return;
        }
      }
      if (what === VARIABLES || what === BOTH) {
        await restoreVariables(nb, id);
      }
    }
  });

  commands.addCommand(UNDO_CHECKOUT, {
    label: 'Undo checkout',
    caption: 'Model versions: put back the notebook cells the last checkout replaced (unsaved edits included)',
    isEnabled: () => last !== null && !last.panel.isDisposed,
    execute: () => {
      if (last) {
        last.undo();
        last = null;
        changed();
      }
    }
  });

  if (options.palette) {
    options.palette.addItem({ command: CHECKOUT, category: 'Model versions' });
    options.palette.addItem({ command: UNDO_CHECKOUT, category: 'Model versions' });
  }
}
