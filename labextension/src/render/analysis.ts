// The model-aware detail of one changed variable (diff.schema.json "analysis": array, frame, model,
// prompt, eval, error), and a variable's one-line description. Python computes it; this only shows it.
import { Child, h, table } from './dom';
import { formatDelta, formatValue } from './format';
import type { IAnalysis, IChangedVariable, IDiffVariable } from './types';

/** The last part of a type name: `sklearn.linear_model._logistic.LogisticRegression` -> `LogisticRegression`. */
export function shortType(type: unknown): string {
  return String(type ?? '').split('.').pop() || '';
}

/** What a variable is, without its type (shown once beside the name): shape, dtype, class. */
export function varShape(v: Pick<IDiffVariable, 'summary'>): string {
  const sm = (v.summary || {}) as Record<string, unknown>;
  const bits: string[] = [];
  if (Array.isArray(sm.shape)) {
    bits.push(sm.shape.length ? sm.shape.join('×') : 'scalar');
  }
  if (sm.dtype) {
    bits.push(String(sm.dtype));
  }
  return bits.join(' ');
}

/** A variable's type and shape on one line (`ndarray 3×4 float64`). */
export function varLine(v: Pick<IDiffVariable, 'type' | 'summary'>): string {
  return [shortType(v.type), varShape(v)].filter(Boolean).join(' ');
}

const pct = (x: number) => `${formatValue(Number((x * 100).toPrecision(3)))}%`;

export function renderAnalysis(x: Pick<IChangedVariable, 'analysis' | 'changes'>): HTMLElement {
  const a = x.analysis as IAnalysis | undefined;
  const box = h('div', { class: `mv-analysis${a ? ` mv-analysis-${a.kind}` : ''}` });
  const line = (...c: Child[]) => box.append(h('div', {}, ...c));
  if (!a) {
    for (const [k, val] of Object.entries(x.changes || {})) {
      if (Array.isArray(val) && k !== 'bytes') {
        line(`${k}: ${formatValue(val[0])} → ${formatValue(val[1])}`);
      }
    }
    if (!box.childElementCount) {
      // changed, yet its summary (an elided repr: a long string, a big list) reads the same on both
      // sides: say so instead of leaving the change column blank, with the exact sizes when they differ
      const b = (x.changes || {}).bytes;
      const sizes = Array.isArray(b) && b[0] !== b[1] ? ` (${formatValue(b[0])} → ${formatValue(b[1])} bytes)` : '';
      line(h('span', { class: 'mv-changed-unseen' }, `value changed; its summary is the same${sizes}`));
    }
    return box;
  }
  switch (a.kind) {
    case 'array': {
      if (JSON.stringify(a.shape[0]) !== JSON.stringify(a.shape[1])) {
        line(`shape ${formatValue(a.shape[0])} → ${formatValue(a.shape[1])}`);
      }
      if (a.dtype[0] !== a.dtype[1]) {
        line(`dtype ${a.dtype[0]} → ${a.dtype[1]}`);
      }
      for (const [k, [o, n]] of Object.entries(a.stats || {})) {
        line(`${k} ${formatValue(o)} → ${formatValue(n)}`);
      }
      if (typeof a.fraction_changed === 'number') {
        line(h('b', {}, `${pct(a.fraction_changed)} of elements changed`), a.estimated ? ' (estimated from chunks)' : '');
      }
      break;
    }
    case 'frame': {
      line(`rows ${formatValue(a.rows[0])} → ${formatValue(a.rows[1])}`);
      for (const [c, t] of Object.entries(a.columns_added || {})) {
        line(h('span', { class: 'mv-added' }, `+ column ${c} (${t})`));
      }
      for (const [c, t] of Object.entries(a.columns_removed || {})) {
        line(h('span', { class: 'mv-removed' }, `− column ${c} (${t})`));
      }
      for (const [c, [o, n]] of Object.entries(a.columns_retyped || {})) {
        line(`column ${c}: ${o} → ${n}`);
      }
      if (a.rows_changed !== undefined) {
        line(`${a.rows_changed} row(s) changed, ${a.rows_added} added, ${a.rows_removed} removed`);
      }
      if ((a.sample || []).length) {
        box.append(table(['index', 'old', 'new'], (a.sample || []).map(r => {
          const row = r as { index?: unknown; old: unknown; new: unknown };
          return [formatValue(row.index), formatValue(row.old), formatValue(row.new)];
        }), 'mv-sample'));
      }
      break;
    }
    case 'model': {
      const [ca, cb] = a.class;
      if (ca !== cb) {
        line(`class ${ca} → ${cb}`);
      }
      for (const [k, [o, n]] of Object.entries(a.hyperparameters.changed || {})) {
        line(`${k}: ${formatValue(o)} → ${formatValue(n)}`);
      }
      for (const [k, v] of Object.entries(a.hyperparameters.added || {})) {
        line(h('span', { class: 'mv-added' }, `+ ${k}: ${formatValue(v)}`));
      }
      for (const [k, v] of Object.entries(a.hyperparameters.removed || {})) {
        line(h('span', { class: 'mv-removed' }, `− ${k}: ${formatValue(v)}`));
      }
      if (a.parameters) {
        line(`parameters ${formatValue(a.parameters[0])} → ${formatValue(a.parameters[1])}`);
      }
      if ((a.weights || []).length) {
        box.append(table(['weights', 'shape', '‖Δ‖', 'relative'], (a.weights || []).map(w => [
          w.name, formatValue(w.shape), formatValue(w.delta_norm), typeof w.relative === 'number' ? pct(w.relative) : ''
        ]), 'mv-weights'));
      }
      for (const n of a.weights_added || []) {
        line(h('span', { class: 'mv-added' }, `+ weights ${n}`));
      }
      for (const n of a.weights_removed || []) {
        line(h('span', { class: 'mv-removed' }, `− weights ${n}`));
      }
      if (a.adapters) {
        const ad = a.adapters;
        const pctOr = (w: { relative?: number | null; delta_norm?: number | null }) =>
          typeof w.relative === 'number' ? pct(w.relative) : w.delta_norm ? 'from zero' : '?';
        line(`adapter: ${ad.changed.length} of ${ad.changed.length + ad.unchanged} weights changed`,
          ad.changed.length ? `: ${ad.changed.slice(0, 8).map(w => `${String(w.name).replace(/^base_model\.model\./, '')} ${pctOr(w)}`).join(', ')}` : '',
          ad.base_changed ? `; ${ad.base_changed} base weights changed too` : '; base unchanged');
      }
      if (a.weights_note) {
        line(h('i', {}, a.weights_note));
      }
      break;
    }
    case 'prompt': {
      const ph = a.placeholders || {};
      const kinds = a.prompt_kind || [];
      line(`prompt (${kinds[0] === kinds[1] ? kinds[1] : `${kinds[0]} → ${kinds[1]}`}), placeholders: `,
        h('code', {}, (ph.new || []).join(', ') || 'none'),
        (ph.added || []).map(p => h('span', { class: 'mv-added' }, ` +${p}`)),
        (ph.removed || []).map(p => h('span', { class: 'mv-removed' }, ` −${p}`)));
      box.append(h('pre', { class: 'mv-source mv-prompt-diff' }, (a.line_diff || []).map(l =>
        h('div', { class: l.startsWith('+') ? 'mv-added' : l.startsWith('-') ? 'mv-removed' : l.startsWith('@@') ? 'mv-hunk' : '' }, l || ' '))));
      if (a.truncated) {
        line(h('i', {}, 'long prompt: the diff covers its first part'));
      }
      break;
    }
    case 'eval': {
      const c = a.counts;
      if (c) {
        line(h('b', {}, `by ${a.id_column || 'index'}: ${c.regressions} regressed, ${c.improvements} improved, ${c.added} new, ${c.removed} removed`), `, ${c.unchanged} unchanged`);
      }
      if (a.examples_note) {
        line(h('i', {}, a.examples_note));
      }
      if (a.note) {
        line(h('span', { class: 'mv-removed mv-eval-note' }, `⚠ ${a.note}`));
      }
      for (const [k, m] of Object.entries(a.mean_delta || {})) {
        const d = formatDelta(m.delta);
        line(`mean ${k}: ${formatValue(m.old)} → ${formatValue(m.new)}`, d ? h('span', { class: (m.delta ?? 0) > 0 ? 'mv-up' : 'mv-down' }, ` ${d}`) : '');
      }
      const scores = (e: { scores: Record<string, unknown[]> }) =>
        Object.entries(e.scores).map(([k, [o, n]]) => `${k} ${formatValue(o)} → ${formatValue(n)}`).join(', ');
      const rows = [
        ...(a.regressions || []).map(e => ({ cls: 'mv-removed', cells: ['regressed', formatValue(e.id), scores(e)] })),
        ...(a.improvements || []).map(e => ({ cls: 'mv-added', cells: ['improved', formatValue(e.id), scores(e)] })),
        ...(a.added || []).map(id => ({ cls: 'mv-added', cells: ['new', formatValue(id), ''] })),
        ...(a.removed || []).map(id => ({ cls: 'mv-removed', cells: ['removed', formatValue(id), ''] }))
      ];
      if (rows.length) {
        box.append(table(['', 'example', 'scores'], rows, 'mv-eval'));
      }
      break;
    }
    case 'error':
      line(h('i', {}, `analysis failed: ${a.error}`));
      break;
  }
  return box;
}
