// DOM helpers of the rendering layer. Text is always set as text (never parsed as HTML): only
// outputs.ts turns recorded HTML into nodes, through a sanitizer.

export type Child = Node | string | number | null | undefined | false | Child[];
export type Attrs = Record<string, string | number | boolean | null | undefined | ((e: any) => void)>;

function appendAll(node: Node & ParentNode, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    if (Array.isArray(c)) {
      appendAll(node, c);
    } else {
      node.append(c instanceof Node ? c : String(c));
    }
  }
}

/** An element: `class` sets the class, `on<event>` functions listen, `true` is an empty attribute,
 * null/undefined/false leave the attribute out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (typeof v === 'function') {
      node.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      node.className = String(v);
    } else {
      node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  appendAll(node, children);
  return node;
}

/** The lab extension's name for `h`. */
export const el = h;

const SVGNS = 'http://www.w3.org/2000/svg';

export function svg(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const node = document.createElementNS(SVGNS, tag) as SVGElement;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) {
      continue;
    }
    if (typeof v === 'function') {
      node.addEventListener(k.slice(2), v);
    } else {
      node.setAttribute(k, String(v));
    }
  }
  appendAll(node, children);
  return node;
}

/** A row with a class (changed/added/removed) or plain cells. */
export type Row = Child[] | { cls?: string; cells: Child[]; attrs?: Attrs };

/** A table. Every cell carries its text as a tooltip: narrow views elide cells (CSS), the full text
 * stays reachable. */
export function table(headers: Child[], rows: Row[], cls = ''): HTMLTableElement {
  const head = h('tr', {}, headers.map(x => h('th', {}, x)));
  const body = h('tbody');
  for (const r of rows) {
    const cells = Array.isArray(r) ? r : r.cells;
    const tr = h('tr', Array.isArray(r) ? {} : { ...(r.attrs || {}), class: r.cls || undefined });
    for (const c of cells) {
      const td = h('td', {}, c);
      const tip = td.textContent ?? '';
      if (tip) {
        td.title = tip;
      }
      tr.append(td);
    }
    body.append(tr);
  }
  return h('table', { class: `mv-table ${cls}`.trim() }, h('thead', {}, head), body);
}
