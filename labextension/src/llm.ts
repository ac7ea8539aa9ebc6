// LLM work: prompts (their text and placeholders) and eval tables (scores by example id) in the version
// details and the diff tab. Python records them in variable summaries (jupyter_mv/prompts.py, evals.py)
// and computes the diff's "prompt" / "eval" analyses; this only renders them, as text.
import { IVariableInfo } from './api';
import { el, formatValue, table } from './render';

const LLM_KEYS = ['prompt', 'eval'];

interface IPromptRecord {
  kind: string;
  placeholders: string[];
  text: string;
  truncated?: number;
}

interface IEvalRecord {
  id_column: string | null;
  scores: string[];
  rows: number;
  means: Record<string, number>;
  dataset_hash: string;
}

/** A variable summary without the prompt/eval records (they are shown in their own sections). */
export function plainSummary(summary: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(summary || {}).filter(([k]) => !LLM_KEYS.includes(k)));
}

/** "Prompts" and "Eval tables" sections of a version's details; null when it has neither. */
export function renderLLM(variables: IVariableInfo[]): HTMLElement | null {
  const prompts = variables.filter(v => v.summary && v.summary.prompt);
  const evals = variables.filter(v => v.summary && v.summary.eval);
  if (!prompts.length && !evals.length) {
    return null;
  }
  const box = el('div', { class: 'jp-mv-llm' });
  if (prompts.length) {
    box.append(el('h4', {}, 'Prompts'));
    for (const v of prompts) {
      const p = v.summary.prompt as IPromptRecord;
      const head = `${v.name} · ${p.kind} · placeholders: ${(p.placeholders || []).join(', ') || 'none'}` +
        (p.truncated ? ` · first ${p.text.length} of ${p.truncated} characters` : '');
      const d = el('details', { class: 'jp-mv-llm-prompt', 'data-name': v.name }, el('summary', {}, head),
        el('pre', { class: 'jp-mv-source jp-mv-prompt-text' }, p.text || ''));
      d.open = true;
      box.append(d);
    }
  }
  if (evals.length) {
    box.append(
      el('h4', {}, 'Eval tables'),
      table(['table', 'examples', 'by', 'mean scores', 'dataset'], evals.map(v => {
        const e = v.summary.eval as IEvalRecord;
        return [v.name, String(e.rows), e.id_column ?? 'index',
          Object.entries(e.means || {}).map(([k, m]) => `${k} ${formatValue(m)}`).join(', '),
          el('code', {}, String(e.dataset_hash || '').slice(0, 12))];
      }))
    );
  }
  return box;
}

/** The prompt or eval analysis of one changed variable in the diff tab; null for other kinds. */
export function renderAnalysis(a: Record<string, any> | undefined): HTMLElement | null {
  if (!a || (a.kind !== 'prompt' && a.kind !== 'eval')) {
    return null;
  }
  const box = el('div', { class: `jp-mv-analysis jp-mv-analysis-${a.kind}` });
  if (a.kind === 'prompt') {
    const ph = a.placeholders || {};
    const kinds = a.prompt_kind || [];
    const change = [...(ph.added || []).map((p: string) => `+${p}`), ...(ph.removed || []).map((p: string) => `-${p}`)];
    box.append(el('div', {}, `prompt (${kinds[0] === kinds[1] ? kinds[1] : `${kinds[0]} → ${kinds[1]}`}), placeholders: ` +
      `${(ph.new || []).join(', ') || 'none'}${change.length ? `  (${change.join(', ')})` : ''}`));
    const pre = el('pre', { class: 'jp-mv-source jp-mv-prompt-diff' });
    for (const line of a.line_diff || []) {
      const c = line.startsWith('+') ? 'jp-mv-added' : line.startsWith('-') ? 'jp-mv-removed' : '';
      pre.append(el('div', { class: c }, line || ' '));
    }
    box.append(pre);
    return box;
  }
  const c = a.counts;
  if (c) {
    box.append(el('div', {}, `by ${a.id_column || 'index'}: ${c.regressions} regressed, ${c.improvements} improved, ` +
      `${c.added} new, ${c.removed} removed, ${c.unchanged} unchanged`));
  }
  if (a.examples_note) {
    box.append(el('div', { class: 'jp-mv-muted' }, a.examples_note));
  }
  if (a.note) {
    box.append(el('div', { class: 'jp-mv-removed jp-mv-eval-note' }, `⚠ ${a.note}`));
  }
  for (const [k, m] of Object.entries(a.mean_delta || {}) as [string, any][]) {
    const d = m.delta;
    box.append(el('div', {}, `mean ${k}: ${formatValue(m.old)} → ${formatValue(m.new)}` +
      (typeof d === 'number' ? ` (${d >= 0 ? '+' : ''}${formatValue(d)})` : '')));
  }
  const scores = (e: any) => Object.entries(e.scores).map(([k, v]: [string, any]) => `${k} ${formatValue(v[0])} → ${formatValue(v[1])}`).join(', ');
  const rows: (string | Node)[][] = [];
  for (const e of a.regressions || []) {
    rows.push([el('span', { class: 'jp-mv-removed' }, 'regressed'), formatValue(e.id), scores(e)]);
  }
  for (const e of a.improvements || []) {
    rows.push([el('span', { class: 'jp-mv-added' }, 'improved'), formatValue(e.id), scores(e)]);
  }
  for (const id of a.added || []) {
    rows.push([el('span', { class: 'jp-mv-added' }, 'new'), formatValue(id), '']);
  }
  for (const id of a.removed || []) {
    rows.push([el('span', { class: 'jp-mv-removed' }, 'removed'), formatValue(id), '']);
  }
  if (rows.length) {
    box.append(table(['', 'example', 'scores'], rows));
  }
  return box;
}
