// A variable's history: pick a variable (or a metric), see the versions where it changed (each against
// its parent, computed by the server: api.variable_history), step back and forth through them, and for
// numbers a chart of its value across versions. Hosts mark the changed versions in their table or
// graph with `changeMap` and follow `onStep` to select the version stepped to.
import { h, svg } from './dom';
import { formatValue } from './format';
import type { IVariableHistory } from './types';

export interface IVariableNames {
  variables: string[];
  metrics: string[];
}

/** The picker value of a metric ("metric:NAME"); a variable's is its name (identifiers have no colon). */
export const metricPick = (name: string) => `metric:${name}`;

/** {name, kind} of a picker value. */
export function parsePick(picked: string): { name: string; kind: 'variable' | 'metric' } {
  return picked.startsWith('metric:') ? { name: picked.slice(7), kind: 'metric' } : { name: picked, kind: 'variable' };
}

/** One select: "— variable history —", then the variables, then the metrics. */
export function renderVariablePicker(names: IVariableNames, picked: string, onPick: (picked: string) => void): HTMLSelectElement {
  const group = (label: string, values: string[], value: (n: string) => string) => values.length
    ? h('optgroup', { label }, values.map(n => h('option', { value: value(n), selected: value(n) === picked || undefined }, n)))
    : '';
  const sel = h('select', { class: 'mv-var-pick', title: "A variable's history: the versions where it changed" },
    h('option', { value: '' }, "Variable's history…"),
    group('variables', names.variables, n => n),
    group('metrics', names.metrics, metricPick));
  sel.value = picked;
  sel.addEventListener('change', () => onPick(sel.value));
  return sel;
}

/** Version label -> its change (added | changed | removed). */
export function changeMap(hist: IVariableHistory | null | undefined): Map<string, string> {
  return new Map((hist?.changes ?? []).map(c => [c.id, c.change]));
}

/** The change before (-1) or after (+1) `current` (a label), by version number; the first/last when
 * `current` is none of them. */
export function stepChange(hist: IVariableHistory, current: string | null | undefined, dir: 1 | -1): string | null {
  const ids = hist.changes.map(c => c.id);
  if (!ids.length) {
    return null;
  }
  const num = (label: string) => Number(label.slice(1));
  if (!current) {
    return dir > 0 ? ids[0] : ids[ids.length - 1];
  }
  const c = num(current);
  const next = dir > 0 ? ids.find(id => num(id) > c) : [...ids].reverse().find(id => num(id) < c);
  return next ?? null;
}

export interface IVariableHistoryOptions {
  current?: string | null;
  /** Go to a version (prev/next, a change chip, a chart point). */
  onStep: (label: string) => void;
}

/** The history of one variable: prev/next through its changes, the changes as chips, a chart of its
 * numeric values. Classes: mv-var-history, mv-var-prev / mv-var-next, mv-var-change[data-version]. */
export function renderVariableHistory(hist: IVariableHistory, opts: IVariableHistoryOptions): HTMLElement {
  const box = h('div', { class: 'mv-var-history', 'data-name': hist.name });
  const n = hist.changes.length;
  const at = opts.current ? hist.changes.findIndex(c => c.id === opts.current) : -1;
  const prev = stepChange(hist, opts.current, -1);
  const next = stepChange(hist, opts.current, 1);
  const what = hist.kind === 'metric' ? 'metric' : 'variable';
  box.append(h('div', { class: 'mv-var-head' },
    h('button', { class: 'mv-btn mv-var-prev', type: 'button', disabled: !prev || undefined, title: prev ? `previous change: ${prev}` : 'no earlier change', onclick: () => prev && opts.onStep(prev) }, '‹'),
    h('button', { class: 'mv-btn mv-var-next', type: 'button', disabled: !next || undefined, title: next ? `next change: ${next}` : 'no later change', onclick: () => next && opts.onStep(next) }, '›'),
    h('span', { class: 'mv-var-pos' }, at >= 0 ? `${hist.changes[at].id}: change ${at + 1} of ${n}` : `${what} ${hist.name}: changed in ${n} version${n === 1 ? '' : 's'}`)));
  box.append(h('div', { class: 'mv-var-changes' }, hist.changes.map(c => h('span', {
    class: `mv-var-change mv-var-${c.change}${c.id === opts.current ? ' mv-var-current' : ''}`, 'data-version': c.id, role: 'button', tabindex: 0,
    title: [`${c.id}: ${c.change}`, c.type, c.text].filter(Boolean).join(' · '), onclick: () => opts.onStep(c.id)
  }, c.id, c.text ? h('span', { class: 'mv-var-text' }, ` ${c.text}`) : ''))));
  if (hist.values.length) {
    box.append(valueChart(hist, opts));
  }
  return box;
}

const num = (v: unknown) => (typeof v === 'number' && isFinite(v) ? v : null);

/** Its value across versions (x: the version number): a line through every version holding it, the
 * versions where it changed ringed, the one stepped to filled; a click on a point steps there. */
function valueChart(hist: IVariableHistory, opts: IVariableHistoryOptions): HTMLElement {
  const W = 320, H = 96, L = 52, R = 8, T = 8, B = 18;
  const pts = hist.values.map(v => ({ id: v.id, n: Number(v.id.slice(1)), y: num(v.value), raw: v.value }));
  const ys = pts.map(p => p.y).filter((y): y is number => y !== null);
  let lo = ys.length ? Math.min(...ys) : 0;
  let hi = ys.length ? Math.max(...ys) : 1;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const n0 = Math.min(...pts.map(p => p.n));
  const n1 = Math.max(...pts.map(p => p.n));
  const X = (n: number) => L + (n1 === n0 ? (W - L - R) / 2 : ((n - n0) / (n1 - n0)) * (W - L - R));
  const Y = (y: number) => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  const changed = changeMap(hist);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'mv-var-chart', width: '100%' });
  root.append(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'mv-axis' }), svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'mv-axis' }),
    svg('text', { x: L - 4, y: Y(hi) + 3, 'text-anchor': 'end', class: 'mv-tick' }, formatValue(ys.length ? Math.max(...ys) : NaN)),
    svg('text', { x: L - 4, y: Y(lo) + 3, 'text-anchor': 'end', class: 'mv-tick' }, formatValue(ys.length ? Math.min(...ys) : NaN)),
    svg('text', { x: X(n0), y: H - 4, 'text-anchor': 'start', class: 'mv-tick' }, pts[0].id),
    svg('text', { x: X(n1), y: H - 4, 'text-anchor': 'end', class: 'mv-tick' }, pts[pts.length - 1].id));
  let d = '';
  for (const p of pts) {
    d += p.y === null ? '' : `${d ? 'L' : 'M'}${X(p.n).toFixed(1)},${Y(p.y).toFixed(1)} `;
  }
  root.append(svg('path', { d: d.trim(), class: 'mv-var-line', fill: 'none', 'stroke-width': 1.5 }));
  for (const p of pts) {
    if (p.y === null) {
      continue; // NaN / ±∞: a gap, named in the chips' text
    }
    const c = changed.get(p.id);
    root.append(svg('circle', {
      cx: X(p.n).toFixed(1), cy: Y(p.y).toFixed(1), r: p.id === opts.current ? 5 : c ? 4 : 2.5,
      class: `mv-point mv-var-point${c ? ` mv-var-${c}` : ''}${p.id === opts.current ? ' mv-var-current' : ''}`, 'data-version': p.id,
      onclick: () => opts.onStep(p.id)
    }, svg('title', {}, `${p.id}: ${hist.name} = ${formatValue(p.raw)}`)));
  }
  return h('div', { class: 'mv-var-chartbox' }, root);
}
