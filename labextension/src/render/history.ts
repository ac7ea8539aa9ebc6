// The history table (the sidebar's versions list, the widget's paged log): one row a version, the
// columns a host picks from `historyColumns`. Fits narrow hosts: columns no row fills are left out,
// params that differ between the versions shown come first and are marked, every cell elides with
// its full text as a tooltip.
import { Child, h } from './dom';
import { compactDate, exactTime, formatValue, humanBytes, relTime } from './format';

/** What a row shows: a Version (version.schema.json) or the widget's compact row (history-widget.schema.json). */
export interface IHistoryRow {
  id: string;
  /** The host's selection key (the widget: the store-wide id); `id` when absent. */
  key?: string | number;
  name?: string;
  message?: string;
  created: string;
  tags: string[];
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  /** Names, or (the widget's compact row) a count with `variable_names`. */
  variables: string[] | number;
  variable_names?: string;
  bytes: number;
  parent?: string | null;
  branch?: boolean;
  notebook?: string;
  kind?: string;
}

export interface IColumn {
  key: string;
  label: string;
  text: (r: IHistoryRow) => string;
  node?: (r: IHistoryRow) => Child;
  title?: (r: IHistoryRow) => string;
  /** Shown even when no row fills it. */
  always?: boolean;
  /** As wide as its longest value (short columns); the others share the rest. */
  fit?: boolean;
  /** Marked as differing between the versions shown (changed params). */
  changed?: boolean;
}

export const rowKey = (r: IHistoryRow) => r.key ?? r.id;

/** Params whose value differs between `rows` (or that some rows lack), in first-seen order. */
export function changedParams(rows: IHistoryRow[]): string[] {
  const first = new Map<string, string>();
  const varying = new Set<string>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.params || {})) {
      const s = JSON.stringify(v);
      if (!first.has(k)) {
        first.set(k, s);
      } else if (first.get(k) !== s) {
        varying.add(k);
      }
    }
  }
  for (const k of first.keys()) {
    if (rows.some(r => !(k in (r.params || {})))) {
      varying.add(k);
    }
  }
  return [...first.keys()].filter(k => varying.has(k));
}

function variablesText(r: IHistoryRow): [string, string] {
  if (typeof r.variables === 'number') {
    return [r.variables ? String(r.variables) : '', r.variable_names ?? ''];
  }
  const v = r.variables;
  return [v.length ? `${v.length}: ${v.slice(0, 3).join(', ')}${v.length > 3 ? '…' : ''}` : '', v.join(', ')];
}

function valueEntries(r: IHistoryRow, changed: string[]): [string, unknown, string][] {
  const params = r.params || {};
  return [
    ...changed.filter(k => k in params).map(k => [k, params[k], 'mv-kv mv-param-changed'] as [string, unknown, string]),
    ...Object.entries(r.metrics || {}).map(([k, v]) => [k, v, 'mv-kv mv-metric'] as [string, unknown, string]),
    ...Object.keys(params).filter(k => !changed.includes(k)).map(k => [k, params[k], 'mv-kv'] as [string, unknown, string])
  ];
}

function valuesText(r: IHistoryRow, changed: string[], max = 4): string {
  const e = valueEntries(r, changed);
  const shown = e.slice(0, max).map(([k, v]) => `${k}=${formatValue(v)}`);
  return shown.join(', ') + (e.length > max ? `, +${e.length - max}` : '');
}

/** Changed params (marked), metrics, constant params: one cell. */
function valuesCell(r: IHistoryRow, changed: string[], max = 4): Child {
  const e = valueEntries(r, changed);
  const parts: Child[] = [];
  e.slice(0, max).forEach(([k, v, cls], i) => parts.push(i ? ', ' : '', h('span', { class: cls }, `${k}=${formatValue(v)}`)));
  if (e.length > max) {
    parts.push(`, +${e.length - max}`);
  }
  return h('span', {}, parts);
}

export interface IColumnOptions {
  /** One column a changed param and a column a metric (the widget), else one "values" column (the sidebar). */
  wide?: boolean;
  /** Metric columns of the wide layout (default: every metric the rows have). */
  metrics?: string[];
  /** Param columns of the wide layout (default: the changed ones). */
  params?: string[];
  /** A notebook column (histories of several notebooks). */
  notebook?: boolean;
  /** Relative creation times ("5 minutes ago") instead of compact dates. */
  relative?: boolean;
}

/** The columns for `rows`, in display order. */
export function historyColumns(rows: IHistoryRow[], opts: IColumnOptions = {}): IColumn[] {
  const changed = changedParams(rows);
  const cols: IColumn[] = [];
  if (opts.notebook) {
    cols.push({ key: 'notebook', label: 'notebook', text: r => r.notebook ?? '' });
  }
  cols.push({
    key: 'version', label: 'version', text: r => r.id, always: true, fit: true,
    title: r => [r.id, r.name, r.branch ? `branch from ${r.parent}` : ''].filter(Boolean).join(' · '),
    node: r => h('span', { class: 'mv-vlabel' + (r.branch ? ' mv-branch' : '') }, h('span', { class: 'mv-dot' }), r.id)
  });
  cols.push({ key: 'tags', label: 'tags', text: r => r.tags.join(', '), node: r => h('span', { class: 'mv-tags' }, r.tags.map(t => h('span', { class: 'mv-tag mv-tagchip' }, t))) });
  if (opts.wide) {
    for (const k of opts.params ?? changed) {
      cols.push({ key: `param:${k}`, label: k, text: r => formatValue(r.params?.[k]), changed: changed.includes(k) });
    }
    const metrics = opts.metrics ?? [...new Set(rows.flatMap(r => Object.keys(r.metrics || {})))];
    for (const k of metrics) {
      cols.push({ key: `metric:${k}`, label: k, text: r => formatValue(r.metrics?.[k]) });
    }
  } else {
    cols.push({ key: 'message', label: 'message', text: r => r.message ?? '' });
    // one "values" column: a narrow sidebar has room for one column of numbers, so the params that
    // differ between versions come first (marked), then the metrics, then the constant params
    cols.push({
      key: 'values', label: 'values', text: r => valuesText(r, changed), node: r => valuesCell(r, changed),
      title: r => valuesText(r, changed, 999) + (changed.length ? `\n(Δ: differs between versions: ${changed.join(', ')})` : ''),
      changed: changed.length > 0
    });
  }
  if (opts.wide) {
    cols.push({ key: 'message', label: 'message', text: r => r.message ?? '' });
  }
  cols.push({ key: 'name', label: 'name', text: r => r.name ?? '' });
  cols.push({
    key: 'created', label: 'created', always: true, fit: !opts.relative,
    text: r => (opts.relative ? relTime(r.created) : compactDate(r.created)), title: r => exactTime(r.created)
  });
  cols.push({ key: 'variables', label: 'variables', text: r => variablesText(r)[0], title: r => variablesText(r)[1] });
  cols.push({ key: 'size', label: 'size', text: r => (r.bytes ? humanBytes(r.bytes) : ''), fit: true });
  if (opts.wide) {
    cols.push({
      key: 'parent', label: 'parent', text: r => (r.branch ? `⑂ ${r.parent}` : r.parent ?? ''),
      node: r => (r.branch ? h('span', { class: 'mv-branch-from', title: 'a snapshot taken after restoring an older version' }, `⑂ ${r.parent}`) : r.parent ?? '')
    });
  }
  // a column no row fills only takes width
  return cols.filter(c => c.always || rows.some(r => c.text(r) !== ''));
}

export interface ITableOptions {
  selected?: Set<string | number>;
  /** A click picks a row; Ctrl/Cmd/Shift-click (or the tick box) adds or removes it. */
  onSelect?: (key: string | number, additive: boolean) => void;
  /** Sortable headers: the current sort and what a header click asks for. */
  sort?: { by: string; desc: boolean; onSort: (key: string) => void };
  /** A tick box per row (select two for Diff without a keyboard). */
  pick?: boolean;
  cls?: string;
}

/** A key on a focused row: Enter/Space select it, ArrowUp/ArrowDown/Home/End move the focus. */
function rowKeydown(e: KeyboardEvent, key: string | number, opts: ITableOptions): void {
  const tr = e.currentTarget as HTMLElement;
  if (!opts.onSelect || e.target !== tr) {
    return; // a tick box or a button inside the row handles its own keys
  }
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    e.stopPropagation(); // the notebook's shortcuts (Enter: edit mode) must not see it
    opts.onSelect(key, e.ctrlKey || e.metaKey || e.shiftKey);
    return;
  }
  const rows = [...(tr.parentElement?.children ?? [])] as HTMLElement[];
  const i = rows.indexOf(tr);
  const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: rows.length - 1 }[e.key];
  if (to !== undefined && rows[to]) {
    e.preventDefault();
    rows[to].focus();
  }
}

export function renderHistoryTable(rows: IHistoryRow[], cols: IColumn[], opts: ITableOptions = {}): HTMLTableElement {
  const sel = opts.selected ?? new Set();
  const head = h('tr', {}, opts.pick ? h('th', { class: 'mv-pick' }, '') : '', cols.map(c => {
    const sorted = opts.sort && opts.sort.by === c.key;
    const th = h('th', {
      class: `mv-col-${c.key.replace(/[^\w-]/g, '_')}${c.changed ? ' mv-param-changed' : ''}${opts.sort ? ' mv-sortable' : ''}${sorted ? ' mv-sorted' : ''}`,
      'data-col': c.key, title: c.changed ? `${c.label}: differs between the versions shown` : c.label,
      onclick: opts.sort ? () => opts.sort!.onSort(c.key) : undefined
    }, c.label, sorted ? (opts.sort!.desc ? ' ▼' : ' ▲') : '');
    if (c.fit) {
      // as wide as the longest value (the header may elide: its tooltip names it)
      const chars = Math.max(3, ...rows.map(r => c.text(r).length)) + (opts.sort ? 2 : 0); // room for ▲/▼
      th.style.width = `calc(${chars}ch + 6px)`;
    }
    return th;
  }));
  const body = h('tbody', {}, rows.map(r => {
    const key = rowKey(r);
    const tr = h('tr', {
      class: 'mv-row' + (sel.has(key) ? ' mv-selected' : ''), 'data-version': r.id, 'data-id': key,
      // keyboard-only use: each row is a Tab stop; Enter/Space picks it as a click would (Ctrl/Shift
      // adds or removes it), the arrow keys move between rows
      tabindex: opts.onSelect ? 0 : undefined, 'aria-selected': opts.onSelect ? String(sel.has(key)) : undefined,
      onclick: (e: MouseEvent) => {
        if ((e.target as HTMLElement).tagName !== 'INPUT') {
          opts.onSelect?.(key, e.ctrlKey || e.metaKey || e.shiftKey);
        }
      },
      onkeydown: (e: KeyboardEvent) => rowKeydown(e, key, opts)
    },
    opts.pick ? h('td', { class: 'mv-pick' }, h('input', { type: 'checkbox', class: 'mv-row-pick', checked: sel.has(key) || undefined, title: 'select (two for Diff)', onchange: () => opts.onSelect?.(key, true) })) : '',
    cols.map(c => h('td', { class: `mv-col-${c.key.replace(/[^\w-]/g, '_')}`, title: c.title ? c.title(r) : c.text(r) },
      h('span', { class: 'mv-cell' }, c.node ? c.node(r) : c.text(r)))));
    return tr;
  }));
  return h('table', { class: `mv-table mv-versions ${opts.cls ?? ''}`.trim() }, h('thead', {}, head), body);
}
