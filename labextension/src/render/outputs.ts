// Recorded outputs (nbformat outputs, or the widgets' reduced form) as DOM, through a renderer the host
// gives: the lab passes one built on its rendermime registry (untrusted models, ../labOutputs.ts); the
// widgets pass the DOMPurify one (./sanitize.ts). Recorded outputs are untrusted content either way:
// a version may come from a bundle someone sent, so no output may run script.
import { h } from './dom';

/** One output: nbformat (`output_type`) or the widgets' reduced form (`type`: stream/error/display). */
export interface IOutputLike {
  output_type?: string;
  type?: string;
  [key: string]: unknown;
}

export type OutputRenderer = (o: IOutputLike) => Node;

export function joinText(v: unknown): string {
  return Array.isArray(v) ? v.join('') : String(v ?? '');
}

// ANSI colour codes of tracebacks are noise in a text view
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** Text-only rendering (stream, error, text/plain, images as <img> of base64 data): what a host
 * without a sanitizer shows. Never parses markup. */
export const textOutput: OutputRenderer = o => {
  const t = o.output_type ?? o.type;
  if (t === 'stream') {
    return h('pre', { class: 'mv-out mv-stream' + (o.name === 'stderr' ? ' mv-stderr' : '') }, joinText(o.text));
  }
  if (t === 'error') {
    const tb = Array.isArray(o.traceback) ? stripAnsi((o.traceback as string[]).join('\n')) : '';
    return h('pre', { class: 'mv-out mv-error' }, tb || (o.text as string) || `${o.ename}: ${o.evalue}`);
  }
  const data = (o.data ?? {}) as Record<string, unknown>;
  for (const mime of ['image/png', 'image/jpeg', 'image/gif', 'image/webp']) {
    if (data[mime]) {
      return h('img', { class: 'mv-out mv-img', src: `data:${mime};base64,${joinText(data[mime]).trim()}` });
    }
  }
  if (data['text/plain'] !== undefined) {
    return h('pre', { class: 'mv-out' }, joinText(data['text/plain']));
  }
  const mimes = Object.keys(data).join(', ');
  return h('pre', { class: 'mv-out mv-muted' }, mimes ? `[${mimes}]` : `[${t}]`);
};

export function renderOutputs(outputs: IOutputLike[], render: OutputRenderer = textOutput): HTMLElement {
  const box = h('div', { class: 'mv-outputs' });
  if (!outputs.length) {
    box.append(h('div', { class: 'mv-muted' }, '(no output)'));
  }
  for (const o of outputs) {
    box.append(render(o));
  }
  return box;
}

export interface ICellLike {
  execution_count?: number | null;
  source?: string;
  outputs?: IOutputLike[];
}

/** Cells as collapsible blocks (source, outputs); `open` expands them. */
export function renderCells(cells: ICellLike[], render: OutputRenderer = textOutput, open = false): HTMLElement {
  return h('div', { class: 'mv-cells' }, cells.map(c => h('details', { class: 'mv-cell', open: open || undefined },
    h('summary', {}, h('code', {}, `In [${c.execution_count ?? ' '}]: `), (c.source || '').split('\n')[0].slice(0, 100)),
    h('pre', { class: 'mv-code mv-source' }, c.source || ''),
    renderOutputs(c.outputs || [], render))));
}
