// One version's details (api.show, version-details.schema.json): what it is, its variables (with
// prompts and eval tables), params, metrics, environment and cells with their recorded outputs.
import { h, table } from './dom';
import { exactTime, formatValue, humanBytes, keyValues } from './format';
import { shortType } from './analysis';
import { renderCells, OutputRenderer, textOutput } from './outputs';
import type { IVariableInfo, IVersionDetails } from './types';

const LLM_KEYS = ['prompt', 'eval'];

/** A variable summary without the prompt/eval records (they have their own sections). */
export function plainSummary(summary: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(summary || {}).filter(([k]) => !LLM_KEYS.includes(k) && k !== 'shape' && k !== 'dtype'));
}

interface IPromptRecord {
  kind: string;
  placeholders: string[];
  text: string;
  truncated?: number;
}

interface IEvalRecord {
  id_column: string | null;
  rows: number;
  means: Record<string, unknown>;
  dataset_hash: string;
}

/** "Prompts" and "Eval tables" sections; null when the version has neither. */
export function renderLLM(variables: IVariableInfo[]): HTMLElement | null {
  const prompts = variables.filter(v => v.summary && (v.summary as Record<string, unknown>).prompt);
  const evals = variables.filter(v => v.summary && (v.summary as Record<string, unknown>).eval);
  if (!prompts.length && !evals.length) {
    return null;
  }
  const box = h('div', { class: 'mv-llm' });
  if (prompts.length) {
    box.append(h('h4', {}, 'Prompts'));
    for (const v of prompts) {
      const p = (v.summary as Record<string, unknown>).prompt as IPromptRecord;
      box.append(h('details', { class: 'mv-prompt', 'data-name': v.name, open: true },
        h('summary', {}, h('b', {}, v.name), ` ${p.kind} · placeholders: `, h('code', {}, (p.placeholders || []).join(', ') || 'none'),
          p.truncated ? ` · first ${String(p.text || '').length} of ${p.truncated} characters` : ''),
        h('pre', { class: 'mv-source mv-prompt-text' }, p.text || '')));
    }
  }
  if (evals.length) {
    box.append(h('h4', {}, 'Eval tables'), table(['table', 'examples', 'by', 'mean scores', 'dataset'], evals.map(v => {
      const e = (v.summary as Record<string, unknown>).eval as IEvalRecord;
      return [v.name, formatValue(e.rows), e.id_column ?? 'index',
        Object.entries(e.means || {}).map(([k, m]) => `${k} ${formatValue(m)}`).join(', '), h('code', {}, String(e.dataset_hash || '').slice(0, 12))];
    }), 'mv-evals'));
  }
  return box;
}

export interface IDetailsOptions {
  renderOutput?: OutputRenderer;
  /** A tick box per variable (the widget's restore picks them); ticked by default. */
  pickVariables?: boolean;
  /** Expand the cells (else each is a collapsed <details> showing its first line). */
  openCells?: boolean;
}

/** Extras the history widget adds to a version's details (history-widget.schema.json). */
export interface IDetailsExtras {
  lineage?: string[];
  children?: string[];
}

export function renderDetails(d: IVersionDetails & IDetailsExtras, opts: IDetailsOptions = {}): HTMLElement {
  const box = h('div', { class: 'mv-version-details', 'data-version': d.id });
  box.append(h('h3', {}, d.id, d.name ? ` · ${d.name}` : '', d.message ? h('span', { class: 'mv-message-text' }, ` — ${d.message}`) : ''));
  const meta: [string, string][] = [
    ['created', exactTime(d.created)],
    ['kind', d.kind + (d.origin && d.origin !== 'local' ? ` (${d.origin})` : '')],
    ['parent', d.parent ?? '—'],
    ['size', `${humanBytes(d.bytes)}${d.new_bytes !== undefined ? ` (${humanBytes(d.new_bytes)} new)` : ''}`]
  ];
  if (d.tags.length) {
    meta.push(['tags', d.tags.join(', ')]);
  }
  if ((d.lineage || []).length > 1) {
    meta.push(['lineage', (d.lineage || []).join(' → ')]);
  }
  if ((d.children || []).length) {
    meta.push(['children', (d.children || []).join(', ')]);
  }
  box.append(h('div', { class: 'mv-meta' }, meta.map(([k, v]) => h('div', { class: 'mv-meta-item', title: v }, h('span', { class: 'mv-meta-key' }, k), ' ', v))));
  const vars = d.variables;
  box.append(
    h('h4', {}, 'Variables ', opts.pickVariables ? h('small', {}, '(ticked ones are restored)') : ''),
    vars.length
      ? table([...(opts.pickVariables ? [''] : []), 'name', 'type', 'size', 'summary'], vars.map(v => {
        const sm = (v.summary || {}) as Record<string, unknown>;
        const shape = Array.isArray(sm.shape) ? ` ${sm.shape.length ? sm.shape.join('×') : 'scalar'}` : '';
        const dtype = sm.dtype ? ` ${sm.dtype}` : '';
        return [
          ...(opts.pickVariables ? [h('input', { type: 'checkbox', class: 'mv-var-pick', 'data-name': v.name, checked: true })] : []),
          v.name, shortType(v.type) + shape + dtype, humanBytes(v.bytes), keyValues(plainSummary(sm), 3)];
      }), 'mv-vars')
      : h('p', { class: 'mv-none' }, 'no variables')
  );
  const llm = renderLLM(vars);
  if (llm) {
    box.append(llm);
  }
  const kv = (o: Record<string, unknown>) => Object.entries(o || {}).map(([k, v]) => [k, formatValue(v)]);
  if (Object.keys(d.params).length) {
    box.append(h('h4', {}, 'Params'), table(['param', 'value'], kv(d.params), 'mv-params-table'));
  }
  if (Object.keys(d.metrics).length) {
    box.append(h('h4', {}, 'Metrics'), table(['metric', 'value'], kv(d.metrics), 'mv-metrics-table'));
  }
  const env = (d.environment || {}) as Record<string, any>;
  if (env.python || env.platform) {
    const pk = env.packages;
    const count = typeof pk === 'number' ? pk : Object.keys(pk || {}).length;
    const git = env.git ? `, git ${String(env.git.commit || '').slice(0, 10)}${env.git.dirty ? ' (dirty)' : ''}` : '';
    const keys = Object.entries((env.key_packages || {}) as Record<string, string>).map(([k, v]) => `${k} ${v}`).join(', ');
    box.append(h('h4', {}, 'Environment'), h('div', { class: 'mv-env' }, `Python ${env.python || '?'} on ${env.platform || '?'}, ${count} packages${git}`, keys ? ` · ${keys}` : ''));
  }
  box.append(h('h4', {}, `Cells (${d.cells.length})`), renderCells(d.cells, opts.renderOutput ?? textOutput, opts.openCells));
  return box;
}
