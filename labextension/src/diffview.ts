// The main-area "Diff" tab: two versions side by side (cells, outputs, params, metrics, variables).
// Python computes the diff (Diff.to_dict()); this only renders it.
import { Widget } from '@lumino/widgets';
import * as api from './api';
import { renderAnalysis } from './llm';
import { el, formatValue, humanBytes, keyValues, renderOutputs, table } from './render';

export class DiffView extends Widget {
  constructor(readonly notebook: string, readonly a: string, readonly b: string) {
    super();
    this.addClass('jp-mv-diff');
    this.id = `jupyter-mv-diff-${Private.counter++}`;
    this.title.label = `Diff ${a} → ${b}`;
    this.title.caption = `${notebook}: ${a} → ${b}`;
    this.title.closable = true;
    this.node.append(el('div', { class: 'jp-mv-muted' }, `Loading the diff of ${a} and ${b}…`));
    void this.load();
  }

  async load(): Promise<void> {
    try {
      const [d, va, vb] = await Promise.all([
        api.diff(this.notebook, this.a, this.b),
        api.versionDetails(this.notebook, this.a),
        api.versionDetails(this.notebook, this.b)
      ]);
      this.node.replaceChildren(render(d, va, vb));
    } catch (e) {
      this.node.replaceChildren(el('div', { class: 'jp-mv-error' }, `Cannot compare ${this.a} and ${this.b}: ${(e as Error).message}`));
    }
  }
}

function cls(status: string): string {
  return `jp-mv-${status}`;
}

function dictRows(d: api.IDictDiff, metrics: boolean): HTMLElement[][] {
  const rows: HTMLElement[][] = [];
  const cell = (text: string, c = '') => el('span', { class: c }, text);
  for (const [k, v] of Object.entries(d.changed)) {
    const [old, now, delta] = metrics
      ? [(v as any).old, (v as any).new, (v as any).delta]
      : [(v as unknown[])[0], (v as unknown[])[1], undefined];
    rows.push([cell(k, 'jp-mv-changed'), cell(formatValue(old), 'jp-mv-removed'), cell(formatValue(now), 'jp-mv-added'), cell(delta === undefined ? '' : (delta >= 0 ? '+' : '') + formatValue(delta))]);
  }
  for (const [k, v] of Object.entries(d.added)) {
    rows.push([cell(k, 'jp-mv-added'), cell('—'), cell(formatValue(v), 'jp-mv-added'), cell('added')]);
  }
  for (const [k, v] of Object.entries(d.removed)) {
    rows.push([cell(k, 'jp-mv-removed'), cell(formatValue(v), 'jp-mv-removed'), cell('—'), cell('removed')]);
  }
  for (const [k, v] of Object.entries(d.same)) {
    rows.push([cell(k), cell(formatValue(v)), cell(formatValue(v)), cell('')]);
  }
  return rows;
}

/** Source lines marked removed/added against the other side (a line-set comparison is enough here). */
function sourceBlock(src: string | null, other: string | null, mark: 'removed' | 'added'): HTMLElement {
  const pre = el('pre', { class: 'jp-mv-source' });
  if (src === null) {
    pre.append(el('span', { class: 'jp-mv-muted' }, '(not in this version)'));
    return pre;
  }
  const others = new Set((other ?? '').split('\n'));
  for (const line of src.split('\n')) {
    pre.append(el('div', { class: others.has(line) ? '' : cls(mark) }, line || ' '));
  }
  return pre;
}

function render(d: api.IDiff, va: api.IVersionDetails, vb: api.IVersionDetails): HTMLElement {
  const root = el('div', { class: 'jp-mv-diff-body' });
  const changedCells = d.cells.filter(c => c.status !== 'same').length;
  root.append(
    el('h2', {}, `${d.notebook}: ${d.a} → ${d.b}`),
    el(
      'div',
      { class: 'jp-mv-diff-summary' },
      `${Object.keys(d.params.changed).length + Object.keys(d.params.added).length + Object.keys(d.params.removed).length} param change(s), ` +
        `${Object.keys(d.metrics.changed).length + Object.keys(d.metrics.added).length + Object.keys(d.metrics.removed).length} metric change(s), ` +
        `${d.variables.changed.length + d.variables.added.length + d.variables.removed.length} variable change(s), ${changedCells} cell change(s)`
    )
  );
  const header = [' ', d.a, d.b, ' '];
  root.append(el('h3', {}, 'Params'), table(['param', d.a, d.b, ''], dictRows(d.params, false)));
  root.append(el('h3', {}, 'Metrics'), table(['metric', ...header.slice(1, 3), 'delta'], dictRows(d.metrics, true)));

  const vrows: (string | Node)[][] = [];
  for (const c of d.variables.changed) {
    const llm = renderAnalysis(c.analysis);
    const changes = llm ?? keyValues(c.changes, 4);
    vrows.push([el('span', { class: 'jp-mv-changed' }, c.name), `${c.old.type} ${humanBytes(c.old.bytes)}`, `${c.new.type} ${humanBytes(c.new.bytes)}`, changes]);
  }
  for (const v of d.variables.added) {
    vrows.push([el('span', { class: 'jp-mv-added' }, v.name), '—', `${v.type} ${humanBytes(v.bytes)}`, 'added']);
  }
  for (const v of d.variables.removed) {
    vrows.push([el('span', { class: 'jp-mv-removed' }, v.name), `${v.type} ${humanBytes(v.bytes)}`, '—', 'removed']);
  }
  for (const n of d.variables.same) {
    vrows.push([n, 'same', 'same', '']);
  }
  root.append(el('h3', {}, 'Variables'), table(['variable', d.a, d.b, 'changes'], vrows));

  root.append(el('h3', {}, 'Cells'));
  const grid = el('div', { class: 'jp-mv-diff-cells' });
  grid.append(el('div', { class: 'jp-mv-diff-side-head' }, d.a), el('div', { class: 'jp-mv-diff-side-head' }, d.b));
  for (const c of d.cells) {
    const ca = c.a_index !== null ? va.cells[c.a_index] : undefined;
    const cb = c.b_index !== null ? vb.cells[c.b_index] : undefined;
    // data-side labels each side when a narrow view stacks them (the column heads are hidden then)
    const left = el('div', { class: `jp-mv-diff-side ${cls(c.status)}`, 'data-side': d.a }, sourceBlock(c.a_source, c.b_source, 'removed'));
    const right = el('div', { class: `jp-mv-diff-side ${cls(c.status)}`, 'data-side': d.b }, sourceBlock(c.b_source, c.a_source, 'added'));
    if (ca) {
      left.append(renderOutputs(ca.outputs));
    }
    if (cb) {
      right.append(renderOutputs(cb.outputs));
    }
    if (c.outputs_changed) {
      left.classList.add('jp-mv-outputs-changed');
      right.classList.add('jp-mv-outputs-changed');
    }
    const row = el('div', { class: `jp-mv-diff-row jp-mv-cell-${c.status}`, 'data-status': c.status }, left, right);
    grid.append(row);
  }
  root.append(grid);
  return root;
}

namespace Private {
  export let counter = 0;
}
