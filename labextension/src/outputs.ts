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

/** Replace the outputs of the matching cells; returns how to undo it. */
export function restoreOutputs(panel: NotebookPanel, version: string, stored: IStoredCell[]): IOutputRestore {
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
        setOutputs(panel, previous);
      }
    }
  };
}
