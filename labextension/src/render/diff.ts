// A diff as the server computed it (Diff.to_dict(), diff.schema.json): params, metrics, variables and
// cells side by side. Nothing here compares anything: cell sources are laid out from the server's
// unified diff (`source_diff`) over the two full sources.
import { Child, h, table, Row } from './dom';
import { formatDelta, formatValue, humanBytes } from './format';
import { renderAnalysis, shortType, varShape } from './analysis';
import { renderOutputs, OutputRenderer, textOutput } from './outputs';
import type { ICellDiff, IDiff, IDiffVariable, IStoredCell } from './types';

export interface IDiffOptions {
  /** Show the unchanged params too. */
  showAll?: boolean;
  /** Called when the user flips "show all" (no toggle is drawn without it). */
  onShowAll?: (on: boolean) => void;
  /** Stored cells of A and B (version details): each side's recorded outputs are rendered from them.
   * Without them the cell shows the server's output text diff and changed images. */
  cellsA?: IStoredCell[];
  cellsB?: IStoredCell[];
  renderOutput?: OutputRenderer;
}

/** One line of a side-by-side cell: [line no. in A, text A, line no. in B, text B, kind]. */
export type SbsRow = [number | null, string, number | null, string, 'same' | 'changed' | 'removed' | 'added' | 'skip'];

export const CONTEXT = 3;

function splitLines(s: string | null | undefined): string[] {
  if (!s) {
    return [];
  }
  const lines = s.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') {
    lines.pop(); // as Python's splitlines(), which made the server's diff
  }
  return lines;
}

/** Side-by-side rows of a changed cell from the server's unified diff (difflib format) and the two
 * sources; unchanged runs longer than 2×context+1 are folded into one "skip" row. */
export function sideBySide(aSource: string | null, bSource: string | null, unified: string[], context = CONTEXT): SbsRow[] {
  const la = splitLines(aSource);
  const lb = splitLines(bSource);
  const rows: SbsRow[] = [];
  let ia = 0;
  let ib = 0;
  const same = (untilA: number) => {
    const n = untilA - ia;
    const keep = n <= 2 * context + 1 ? [...Array(n).keys()] : [...Array(context).keys(), -1, ...[...Array(context).keys()].map(k => n - context + k)];
    for (const k of keep) {
      rows.push(k < 0 ? [null, `… ${n - 2 * context} unchanged lines`, null, '', 'skip'] : [ia + k + 1, la[ia + k], ib + k + 1, lb[ib + k], 'same']);
    }
    ia += n;
    ib += n;
  };
  let removed: string[] = [];
  let added: string[] = [];
  const flush = () => {
    for (let k = 0; k < Math.max(removed.length, added.length); k++) {
      const l = k < removed.length;
      const r = k < added.length;
      rows.push([l ? ia + 1 : null, l ? removed[k] : '', r ? ib + 1 : null, r ? added[k] : '', l && r ? 'changed' : l ? 'removed' : 'added']);
      ia += l ? 1 : 0;
      ib += r ? 1 : 0;
    }
    removed = [];
    added = [];
  };
  for (const line of unified.slice(unified[0]?.startsWith('---') ? 2 : 0)) {
    const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (m) {
      flush();
      const start = Number(m[2] === '0' ? Number(m[1]) : Number(m[1]) - 1);
      same(start);
    } else if (line.startsWith('-')) {
      removed.push(line.slice(1));
    } else if (line.startsWith('+')) {
      added.push(line.slice(1));
    } else {
      flush();
      rows.push([ia + 1, la[ia] ?? line.slice(1), ib + 1, lb[ib] ?? line.slice(1), 'same']);
      ia += 1;
      ib += 1;
    }
  }
  flush();
  same(la.length);
  return rows;
}

function side(rows: SbsRow[], which: 'a' | 'b'): HTMLElement {
  const pre = h('pre', { class: 'mv-source mv-sbs-side' });
  for (const [na, ta, nb, tb, kind] of rows) {
    const [n, t] = which === 'a' ? [na, ta] : [nb, tb];
    const mark = kind === 'changed' ? (which === 'a' ? 'mv-removed' : 'mv-added')
      : kind === 'removed' ? (which === 'a' ? 'mv-removed' : 'mv-pad')
        : kind === 'added' ? (which === 'a' ? 'mv-pad' : 'mv-added') : kind === 'skip' ? 'mv-skip' : '';
    pre.append(h('div', { class: `mv-line ${mark}`.trim(), 'data-line': n ?? undefined }, t || ' '));
  }
  return pre;
}

function whole(src: string | null, mark: string): HTMLElement {
  if (src === null) {
    return h('pre', { class: 'mv-source' }, h('span', { class: 'mv-muted' }, '(not in this version)'));
  }
  return h('pre', { class: 'mv-source' }, splitLines(src).map(l => h('div', { class: `mv-line ${mark}`.trim() }, l || ' ')));
}

function imageList(images: { mime: string; data: string }[] | undefined, render: OutputRenderer): Child {
  return (images || []).map(im => render({ type: 'display', data: { [im.mime]: im.data } }));
}

export function renderCellDiff(d: IDiff, c: ICellDiff, opts: IDiffOptions = {}): HTMLElement {
  const render = opts.renderOutput ?? textOutput;
  const where = c.b_index ?? c.a_index;
  const rows = c.status === 'changed' && c.source_diff.length ? sideBySide(c.a_source, c.b_source, c.source_diff) : null;
  const left = h('div', { class: 'mv-diff-side', 'data-side': d.a }, rows ? side(rows, 'a') : whole(c.a_source, c.status === 'removed' ? 'mv-removed' : ''));
  const right = h('div', { class: 'mv-diff-side', 'data-side': d.b }, rows ? side(rows, 'b') : whole(c.b_source, c.status === 'added' ? 'mv-added' : ''));
  const ca = c.a_index !== null && opts.cellsA ? opts.cellsA[c.a_index] : undefined;
  const cb = c.b_index !== null && opts.cellsB ? opts.cellsB[c.b_index] : undefined;
  if (opts.cellsA || opts.cellsB) {
    if (ca) {
      left.append(renderOutputs(ca.outputs, render));
    }
    if (cb) {
      right.append(renderOutputs(cb.outputs, render));
    }
  } else if (c.images) {
    left.append(h('div', { class: 'mv-images' }, imageList(c.images.a, render)));
    right.append(h('div', { class: 'mv-images' }, imageList(c.images.b, render)));
  }
  const box = h('div', { class: `mv-diff-row mv-cell-diff mv-${c.status}${c.outputs_changed ? ' mv-outputs-changed' : ''}`, 'data-status': c.status },
    h('div', { class: 'mv-cell-head' }, `cell ${where ?? ''}: ${c.status}`, c.outputs_changed ? ' (outputs changed)' : ''),
    h('div', { class: 'mv-diff-sides' }, left, right));
  if (!opts.cellsA && c.outputs_diff.length) {
    box.append(h('pre', { class: 'mv-outdiff' }, c.outputs_diff.slice(2).map(l =>
      h('div', { class: l.startsWith('+') ? 'mv-added' : l.startsWith('-') ? 'mv-removed' : '' }, l || ' '))));
  }
  return box;
}

function typeAndSize(v: IDiffVariable, withType: boolean): string {
  return [withType ? shortType(v.type) : '', varShape(v), humanBytes(v.bytes)].filter(Boolean).join(' ');
}

/** The whole diff. Sections: .mv-params, .mv-metrics, .mv-variables, .mv-celldiff. */
export function renderDiff(d: IDiff, opts: IDiffOptions = {}): HTMLElement {
  const root = h('div', { class: 'mv-diffview', 'data-a': d.a, 'data-b': d.b });
  const count = (x: { added: object; removed: object; changed: object }) =>
    Object.keys(x.added).length + Object.keys(x.removed).length + Object.keys(x.changed).length;
  const cells = d.cells.filter(c => c.status !== 'same');
  const nvars = d.variables.added.length + d.variables.removed.length + d.variables.changed.length;
  root.append(
    h('div', { class: 'mv-diff-title' }, h('b', {}, `diff ${d.a} → ${d.b}`), ' ', h('small', {}, d.notebook)),
    h('div', { class: 'mv-diff-summary' }, `${count(d.params)} param change(s), ${count(d.metrics)} metric change(s), ${nvars} variable change(s), ${cells.length} cell change(s)`)
  );
  // params
  const p = d.params;
  const prow: Row[] = [
    ...Object.entries(p.changed).map(([k, v]) => ({ cls: 'mv-changed', cells: [k, formatValue((v as unknown[])[0]), formatValue((v as unknown[])[1]), 'changed'] })),
    ...Object.entries(p.added).map(([k, v]) => ({ cls: 'mv-added', cells: [k, '', formatValue(v), 'added'] })),
    ...Object.entries(p.removed).map(([k, v]) => ({ cls: 'mv-removed', cells: [k, formatValue(v), '', 'removed'] })),
    ...(opts.showAll ? Object.entries(p.same).map(([k, v]) => ({ cls: 'mv-same', cells: [k, formatValue(v), formatValue(v), ''] })) : [])
  ];
  const nSame = Object.keys(p.same).length;
  const toggle = opts.onShowAll
    ? h('label', { class: 'mv-toggle' }, h('input', { type: 'checkbox', class: 'mv-show-all', checked: opts.showAll || undefined, onchange: (e: Event) => opts.onShowAll!((e.target as HTMLInputElement).checked) }), ` show all (${nSame} unchanged)`)
    : '';
  root.append(h('div', { class: 'mv-section mv-params' }, h('h4', {}, 'Params ', toggle),
    prow.length ? table(['param', d.a, d.b, ''], prow) : h('p', { class: 'mv-none' }, 'no param changes')));
  // metrics
  const m = d.metrics;
  const mrow: Row[] = [
    ...Object.entries(m.changed).map(([k, c]) => {
      const delta = formatDelta(c.delta);
      const up = typeof c.delta === 'number' && c.delta > 0;
      return { cls: 'mv-changed', cells: [k, formatValue(c.old), formatValue(c.new), delta ? h('span', { class: up ? 'mv-up' : 'mv-down' }, `${up ? '▲' : '▼'} ${delta}`) : ''] };
    }),
    ...Object.entries(m.added).map(([k, v]) => ({ cls: 'mv-added', cells: [k, '', formatValue(v), 'added'] })),
    ...Object.entries(m.removed).map(([k, v]) => ({ cls: 'mv-removed', cells: [k, formatValue(v), '', 'removed'] }))
  ];
  root.append(h('div', { class: 'mv-section mv-metrics' }, h('h4', {}, 'Metrics'),
    mrow.length ? table(['metric', d.a, d.b, 'delta'], mrow) : h('p', { class: 'mv-none' }, 'no metric changes')));
  // variables: the type once, beside the name, when both sides have the same
  const v = d.variables;
  const name = (n: string, type: string, cls: string) => h('span', { class: `mv-varname ${cls}` }, n, type ? h('span', { class: 'mv-vartype' }, ` ${type}`) : '');
  const vrows: Row[] = [
    ...v.changed.map(x => {
      const sameType = x.old.type === x.new.type;
      return { cls: 'mv-changed', attrs: { 'data-name': x.name }, cells: [name(x.name, sameType ? shortType(x.new.type) : '', 'mv-changed'), typeAndSize(x.old, !sameType), typeAndSize(x.new, !sameType), renderAnalysis(x)] };
    }),
    ...v.added.map(x => ({ cls: 'mv-added', attrs: { 'data-name': x.name }, cells: [name(x.name, shortType(x.type), 'mv-added'), '', typeAndSize(x, false), 'added'] })),
    ...v.removed.map(x => ({ cls: 'mv-removed', attrs: { 'data-name': x.name }, cells: [name(x.name, shortType(x.type), 'mv-removed'), typeAndSize(x, false), '', 'removed'] }))
  ];
  root.append(h('div', { class: 'mv-section mv-variables' }, h('h4', {}, 'Variables ', h('small', {}, `${v.same.length} unchanged`)),
    vrows.length ? table(['variable', d.a, d.b, 'change'], vrows) : h('p', { class: 'mv-none' }, 'no variable changes')));
  // cells
  root.append(h('div', { class: 'mv-section mv-celldiff' }, h('h4', {}, 'Cells ', h('small', {}, `${cells.length} changed of ${d.cells.length}`)),
    h('div', { class: 'mv-diff-cells' }, cells.map(c => renderCellDiff(d, c, opts)))));
  return root;
}
