// "Restore outputs": put a version's stored outputs back into the open notebook's cells.
import { NotebookPanel } from '@jupyterlab/notebook';
import { IOutput, IStoredCell } from './api';

type OutputList = any[];

/** What one restore changed, so that one undo can put the previous outputs back. */
export interface IOutputRestore {
  panel: NotebookPanel;
  version: string;
  matched: number;
  previous: Map<string, OutputList>; // cell id -> outputs before the restore
  undo(): void;
}

function joinText(v: unknown): unknown {
  return Array.isArray(v) ? v.join('') : v;
}

/** nbformat allows multi-line strings as lists; the shared model wants plain strings. */
export function normaliseOutput(o: IOutput): IOutput {
  const out: any = { ...o };
  if (out.output_type === 'stream') {
    out.text = joinText(out.text) ?? '';
  }
  if (out.data && typeof out.data === 'object') {
    const data: Record<string, unknown> = {};
    for (const [mime, value] of Object.entries(out.data)) {
      data[mime] = mime.endsWith('json') ? value : joinText(value);
    }
    out.data = data;
  }
  if (out.output_type === 'execute_result' || out.output_type === 'display_data') {
    out.metadata = out.metadata ?? {};
  }
  delete out.transient;
  return out as IOutput;
}

function normaliseSource(s: string): string {
  return s.replace(/\r\n/g, '\n').trim();
}

/** Pick the stored cell for each notebook cell: same cell id, else same source (first unused). */
export function matchCells(
  cells: { id: string; source: string }[],
  stored: IStoredCell[]
): Map<string, IStoredCell> {
  const byId = new Map<string, IStoredCell>();
  for (const c of stored) {
    if (c.cell_id) {
      byId.set(c.cell_id, c); // later executions win
    }
  }
  const used = new Set<IStoredCell>();
  const result = new Map<string, IStoredCell>();
  for (const cell of cells) {
    const hit = byId.get(cell.id);
    if (hit) {
      result.set(cell.id, hit);
      used.add(hit);
    }
  }
  for (const cell of cells) {
    if (result.has(cell.id)) {
      continue;
    }
    const src = normaliseSource(cell.source);
    // newest execution of the same source that no other cell took
    for (let i = stored.length - 1; i >= 0; i--) {
      const c = stored[i];
      if (!used.has(c) && normaliseSource(c.source) === src && src !== '') {
        result.set(cell.id, c);
        used.add(c);
        break;
      }
    }
  }
  return result;
}

function setOutputs(panel: NotebookPanel, outputs: Map<string, OutputList>): void {
  const shared = panel.content.model!.sharedModel;
  const cells = shared.cells.filter(c => c.cell_type === 'code' && outputs.has(c.getId()));
  // Two shared-model transactions (clear, then fill) rather than one: when a replacement arrives
  // as a single insert+delete event, the cell's output model appends the new stream output to the
  // old one before deleting the old, and the restored text vanishes with it.
  shared.transact(() => {
    for (const cell of cells) {
      (cell as any).setOutputs([]);
    }
  });
  shared.transact(() => {
    for (const cell of cells) {
      (cell as any).setOutputs(outputs.get(cell.getId()));
    }
  });
}

/**
 * Mark cells (by id) trusted or not, in the cell model (how its outputs render now) and in the
 * cell's `trusted` metadata (what the server reads when saving: a notebook with an untrusted cell is
 * not signed, so reopening it does not trust those outputs either). Returns the previous states.
 */
function setTrusted(panel: NotebookPanel, states: Map<string, boolean>): Map<string, boolean> {
  const before = new Map<string, boolean>();
  for (const cell of panel.content.model!.cells) {
    const want = states.get(cell.id);
    if (want === undefined) {
      continue;
    }
    before.set(cell.id, cell.trusted);
    cell.trusted = want;
    cell.sharedModel.setMetadata('trusted', want);
  }
  return before;
}

/**
 * Replace the outputs of the matching cells; returns how to undo it.
 *
 * `trusted` is false for a version not made in this store (imported, pulled): its outputs are
 * untrusted content, so the cells are marked untrusted *before* the outputs arrive (JupyterLab then
 * renders them sanitized and never runs their script), and stay so when the notebook is saved.
 */
export function restoreOutputs(panel: NotebookPanel, version: string, stored: IStoredCell[], trusted = false): IOutputRestore {
  const shared = panel.content.model!.sharedModel;
  const code = shared.cells.filter(c => c.cell_type === 'code');
  const matches = matchCells(code.map(c => ({ id: c.getId(), source: c.getSource() })), stored);
  const previous = new Map<string, OutputList>();
  const next = new Map<string, OutputList>();
  for (const c of code) {
    const hit = matches.get(c.getId());
    if (hit) {
      previous.set(c.getId(), (c as any).getOutputs());
      next.set(c.getId(), hit.outputs.map(normaliseOutput));
    }
  }
  const wasTrusted = trusted ? new Map<string, boolean>() : setTrusted(panel, new Map([...next.keys()].map(id => [id, false])));
  setOutputs(panel, next);
  let undone = false;
  return {
    panel,
    version,
    matched: next.size,
    previous,
    undo: () => {
      if (!undone && !panel.isDisposed && panel.content.model) {
        undone = true;
        setOutputs(panel, previous); // while still untrusted; then the cells' own trust comes back
        setTrusted(panel, wasTrusted);
      }
    }
  };
}
