// Small DOM helpers shared by the panel and the diff tab. Recorded outputs are rendered through
// JupyterLab's rendermime registry as untrusted models (see renderOutput).
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { IOutput } from './api';

let registry: IRenderMimeRegistry | null = null;

/** The app's rendermime registry, given once by the plugin when it activates. Without it (never in
 * JupyterLab) outputs are shown as text and images only. */
export function setRenderMime(r: IRenderMimeRegistry | null): void {
  registry = r;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      node.className = v;
    } else {
      node.setAttribute(k, v);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child);
    }
  }
  return node;
}

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  for (const u of units) {
    if (Math.abs(v) < 1000 || u === 'TB') {
      return u === 'B' ? `${Math.round(v)} B` : `${v.toFixed(1)} ${u}`;
    }
    v /= 1000;
  }
  return `${n} B`;
}

export function shortDate(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) {
    return iso;
  }
  const pad = (x: number) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Non-finite numbers arrive as "NaN" / "Infinity" / "-Infinity" (the server writes RFC 8259 JSON). */
const NONFINITE_TEXT: Record<string, string> = { NaN: 'NaN', Infinity: '∞', '-Infinity': '-∞' };

export function formatValue(v: unknown): string {
  if (typeof v === 'number') {
    if (!isFinite(v)) {
      return Number.isNaN(v) ? 'NaN' : v > 0 ? '∞' : '-∞';
    }
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  }
  if (typeof v === 'string' && v in NONFINITE_TEXT) {
    return NONFINITE_TEXT[v];
  }
  if (typeof v === 'string') {
    return v;
  }
  return JSON.stringify(v);
}

export function keyValues(d: Record<string, unknown>, max = 4): string {
  const entries = Object.entries(d);
  const shown = entries.slice(0, max).map(([k, v]) => `${k}=${formatValue(v)}`);
  if (entries.length > max) {
    shown.push(`+${entries.length - max}`);
  }
  return shown.join(', ');
}

function text(v: unknown): string {
  return Array.isArray(v) ? v.join('') : String(v ?? '');
}

// ANSI colour codes of tracebacks are noise in a text view
function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/**
 * One nbformat output as a DOM node.
 *
 * Recorded outputs are untrusted content (a version may come from a bundle someone sent), so the
 * sidebar and the diff tab always render them as *untrusted* models: the registry picks only a safe
 * renderer ('ensure': never application/javascript), and JupyterLab's sanitizer cleans HTML and
 * Markdown, as for an untrusted notebook. SVG, which JupyterLab refuses to show untrusted, is shown
 * as an <img> data URL, as JupyterLab itself shows a trusted SVG: an image runs no script.
 */
const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

export function renderOutput(o: IOutput): HTMLElement {
  const t = o.output_type;
  if (t === 'stream') {
    return el('pre', { class: `jp-mv-output jp-mv-stream-${String(o.name)}` }, text(o.text));
  }
  if (t === 'error') {
    const tb = Array.isArray(o.traceback) ? stripAnsi((o.traceback as string[]).join('\n')) : '';
    return el('pre', { class: 'jp-mv-output jp-mv-error' }, tb || `${o.ename}: ${o.evalue}`);
  }
  const data = (o.data ?? {}) as Record<string, unknown>;
  if (registry) {
    const bundle: Record<string, unknown> = {};
    for (const [mime, value] of Object.entries(data)) {
      if (mime === WIDGET_VIEW) {
        continue; // a recorded widget view names a model in a kernel that no longer holds it: its text stands in
      }
      bundle[mime] = mime.endsWith('json') ? value : text(value);
    }
    const mime = registry.preferredMimeType(bundle as ReadonlyPartialJSONObject, 'ensure');
    if (mime && !(mime === 'text/plain' && data['image/svg+xml'])) {
      const host = el('div', { class: 'jp-mv-output jp-mv-rendered', 'data-mime-type': mime });
      const renderer = registry.createRenderer(mime);
      host.append(renderer.node);
      const model = new MimeModel({
        data: bundle as ReadonlyPartialJSONObject,
        metadata: (o.metadata ?? {}) as ReadonlyPartialJSONObject,
        trusted: false
      });
      renderer.renderModel(model).catch(e => {
        host.replaceChildren(el('pre', { class: 'jp-mv-output jp-mv-muted' }, `[${mime}: ${(e as Error).message}]`));
      });
      return host;
    }
  }
  for (const mime of ['image/png', 'image/jpeg']) {
    if (data[mime]) {
      return el('img', { class: 'jp-mv-output', src: `data:${mime};base64,${text(data[mime]).trim()}` });
    }
  }
  if (data['image/svg+xml']) {
    const svg = encodeURIComponent(text(data['image/svg+xml']));
    return el('img', { class: 'jp-mv-output', src: `data:image/svg+xml,${svg}` });
  }
  if (data['text/plain'] !== undefined) {
    return el('pre', { class: 'jp-mv-output' }, text(data['text/plain']));
  }
  const mimes = Object.keys(data).join(', ');
  return el('pre', { class: 'jp-mv-output jp-mv-muted' }, mimes ? `[${mimes}]` : `[${t}]`);
}

export function renderOutputs(outputs: IOutput[]): HTMLElement {
  const box = el('div', { class: 'jp-mv-outputs' });
  if (!outputs.length) {
    box.append(el('div', { class: 'jp-mv-muted' }, '(no output)'));
  }
  for (const o of outputs) {
    box.append(renderOutput(o));
  }
  return box;
}

/** A table of key / value rows. */
export function table(headers: string[], rows: (string | Node)[][], cls = 'jp-mv-table'): HTMLTableElement {
  const t = el('table', { class: cls });
  const head = el('tr');
  for (const h of headers) {
    head.append(el('th', {}, h));
  }
  t.append(el('thead', {}, head));
  const body = el('tbody');
  for (const r of rows) {
    const tr = el('tr');
    for (const c of r) {
      // cells elide in narrow views: the full text stays reachable as a tooltip
      tr.append(el('td', { title: typeof c === 'string' ? c : (c.textContent ?? '') }, c));
    }
    body.append(tr);
  }
  t.append(body);
  return t;
}

/** An SVG line of `values` (oldest first); NaN/undefined leave gaps. */
export function sparkline(values: (number | undefined)[], labels: string[], width = 240, height = 40): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'jp-mv-sparkline');
  const nums = values.filter((v): v is number => typeof v === 'number' && isFinite(v));
  if (!nums.length) {
    return svg;
  }
  const lo = Math.min(...nums);
  const hi = Math.max(...nums);
  const pad = 4;
  const x = (i: number) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v: number) => (hi === lo ? height / 2 : height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo));
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (typeof v === 'number' && isFinite(v)) {
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
      const dot = document.createElementNS(ns, 'circle');
      dot.setAttribute('cx', x(i).toFixed(1));
      dot.setAttribute('cy', y(v).toFixed(1));
      dot.setAttribute('r', '2.5');
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${labels[i]}: ${formatValue(v)}`;
      dot.append(title);
      svg.append(dot);
    } else {
      pen = false;
    }
  });
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', d.trim());
  svg.prepend(path);
  return svg;
}
