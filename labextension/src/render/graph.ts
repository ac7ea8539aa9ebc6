// The branch graph: versions drawn by their parents (a restore of an older version followed by a
// snapshot starts a branch), newest at the top, one lane a branch. Our own small layout (lanes as
// `git log --graph` assigns them) in SVG behind HTML rows, so labels, names and tag chips are text
// that wraps, elides and is clickable like the table's rows. Long linear runs of automatic versions
// fold into one row that opens on click.
import { h, svg } from './dom';

export interface IGraphNode {
  /** The selection key (the widget: the store id; the sidebar: the label). */
  key: string | number;
  label: string;
  /** The parent's key; null (or a key not among the nodes): a root. */
  parent: string | number | null;
  tags: string[];
  name?: string;
  kind?: string;
  message?: string;
  created?: string;
  /** Shown before the label when the graph holds several notebooks (`notebooks` option). */
  notebook?: string;
}

export interface IGraphOptions {
  selected?: Set<string | number>;
  /** A click picks a node; Ctrl/Cmd/Shift-click (or the tick box) adds or removes it (two: Diff). */
  onSelect?: (key: string | number, additive: boolean) => void;
  /** Versions to mark, by label: a variable's changes (added | changed | removed). */
  highlight?: Map<string, string>;
  /** The label a variable's history stepped to. */
  current?: string | null;
  /** Folds opened by the user (ids from the fold rows' data-fold). */
  expanded?: Set<string>;
  onToggleFold?: (fold: string) => void;
  /** Runs of at least this many plain automatic versions fold (default 3). */
  minFold?: number;
  /** A tick box per node (select two for Diff without a keyboard). */
  pick?: boolean;
  /** Nodes of several notebooks: each row names its notebook. */
  notebooks?: boolean;
}

interface IItem {
  key: string | number;
  parent: string | number | null;
  order: number;
  node?: IGraphNode;
  fold?: { id: string; members: IGraphNode[] };
}

const ROW = 24;
const LANE = 14;
const PAD = 9;
const COLORS = ['#1976d2', '#ef6c00', '#2e7d32', '#8e24aa', '#c62828', '#00838f', '#6d4c41', '#5c6bc0'];

/** The nodes among `all` (oldest first) whose key `shown` holds, each linked to its nearest shown
 * ancestor (a host hiding some versions, by a filter or a setting, keeps the lines of descent). */
export function linkShown(all: IGraphNode[], shown: Set<string | number>): IGraphNode[] {
  const byKey = new Map(all.map(n => [n.key, n]));
  const nearest = (n: IGraphNode): string | number | null => {
    let p = n.parent;
    for (let hops = 0; p !== null && !shown.has(p) && hops < all.length; hops++) {
      p = byKey.get(p)?.parent ?? null;
    }
    return p !== null && shown.has(p) ? p : null;
  };
  return all.filter(n => shown.has(n.key)).map(n => ({ ...n, parent: nearest(n) }));
}

/** The rows of the graph (oldest first) after folding runs of plain automatic versions. */
export function foldRuns(nodes: IGraphNode[], opts: IGraphOptions = {}): IItem[] {
  const byKey = new Map(nodes.map(n => [n.key, n]));
  const children = new Map<string | number, IGraphNode[]>();
  for (const n of nodes) {
    if (n.parent !== null && byKey.has(n.parent)) {
      children.set(n.parent, [...(children.get(n.parent) ?? []), n]);
    }
  }
  const newest = nodes.length ? nodes[nodes.length - 1].key : null;
  const plain = (n: IGraphNode) => n.kind === 'auto' && !n.tags.length && !n.name && n.key !== newest &&
    !opts.selected?.has(n.key) && !opts.highlight?.has(n.label) && opts.current !== n.label &&
    (children.get(n.key)?.length ?? 0) === 1;
  const minFold = opts.minFold ?? 3;
  const foldOf = new Map<string | number, { id: string; members: IGraphNode[] }>();
  for (const n of nodes) {
    const p = n.parent !== null ? byKey.get(n.parent) : undefined;
    if (!plain(n) || (p && plain(p))) {
      continue; // not the start of a run
    }
    const members = [n];
    let cur = n;
    for (;;) {
      const next = children.get(cur.key)![0];
      if (!plain(next)) {
        break;
      }
      members.push(next);
      cur = next;
    }
    const id = `fold:${n.key}`;
    if (members.length >= minFold && !opts.expanded?.has(id)) {
      const fold = { id, members };
      for (const m of members) {
        foldOf.set(m.key, fold);
      }
    }
  }
  const order = new Map(nodes.map((n, i) => [n.key, i]));
  const items: IItem[] = [];
  for (const n of nodes) {
    const f = foldOf.get(n.key);
    const parentKey = n.parent !== null && byKey.has(n.parent) ? n.parent : null;
    const shownParent = parentKey !== null && foldOf.has(parentKey) ? foldOf.get(parentKey)!.id : parentKey;
    if (!f) {
      items.push({ key: n.key, parent: shownParent, order: order.get(n.key)!, node: n });
    } else if (f.members[f.members.length - 1] === n) {
      const first = f.members[0];
      const fp = first.parent !== null && byKey.has(first.parent) ? first.parent : null;
      items.push({ key: f.id, parent: fp !== null && foldOf.has(fp) ? foldOf.get(fp)!.id : fp, order: order.get(n.key)!, fold: f });
    }
  }
  return items;
}

/** Lanes, git-log style: a child continues its parent's lane when it is the parent's first child
 * shown; another child opens a lane free over the rows its edge crosses. */
export function assignLanes(items: IItem[]): Map<string | number, number> {
  const row = new Map(items.map((it, i) => [it.key, i]));
  const hasChild = new Set(items.map(it => it.parent).filter(p => p !== null));
  const lane = new Map<string | number, number>();
  const tip: (string | number | null)[] = []; // the lane's last item while its line goes on; null: free
  const freeAfter: number[] = []; // the row a freed lane's last item sits in
  items.forEach((it, i) => {
    const p = it.parent !== null && lane.has(it.parent) ? it.parent : null;
    let l = p !== null && tip[lane.get(p)!] === p ? lane.get(p)! : -1;
    if (l < 0) {
      const from = p !== null ? row.get(p)! : i;
      l = tip.findIndex((t, k) => t === null && freeAfter[k] < from);
      if (l < 0) {
        l = tip.length;
        tip.push(null);
        freeAfter.push(-1);
      }
    }
    lane.set(it.key, l);
    tip[l] = hasChild.has(it.key) ? it.key : null;
    freeAfter[l] = i;
  });
  return lane;
}

function title(n: IGraphNode, parentLabel: string | null, branch: boolean): string {
  return [n.label, n.name, n.kind === 'auto' ? 'automatic' : '', n.tags.length ? `tags: ${n.tags.join(', ')}` : '',
    branch && parentLabel ? `branch from ${parentLabel}` : parentLabel ? `after ${parentLabel}` : '', n.message, n.created ?? '']
    .filter(Boolean).join(' · ');
}

/** Keep the keyboard where it was across a re-draw: call before replacing a graph inside `scope` (an
 * element that stays), then call what it returns once the new one is in place (the row with the same
 * key gets the focus back). */
export function keepGraphFocus(scope: HTMLElement): () => void {
  const active = document.activeElement as HTMLElement | null;
  const row = scope.contains(active) ? (active?.closest?.('.mv-graph-row') as HTMLElement | null) : null;
  const key = row?.dataset.key ?? row?.dataset.fold;
  return () => {
    if (key !== undefined) {
      const again = [...scope.querySelectorAll<HTMLElement>('.mv-graph-row')].find(r => (r.dataset.key ?? r.dataset.fold) === key);
      again?.focus();
    }
  };
}

/** The graph of `nodes` (oldest first), newest at the top. Rows carry class mv-graph-node and
 * data-version (vN) / data-key; fold rows class mv-graph-fold and data-fold. */
export function renderGraph(nodes: IGraphNode[], opts: IGraphOptions = {}): HTMLElement {
  const box = h('div', { class: 'mv-graph' });
  if (!nodes.length) {
    box.append(h('p', { class: 'mv-none' }, 'No versions yet.'));
    return box;
  }
  const items = foldRuns(nodes, opts);
  const lanes = assignLanes(items);
  const row = new Map(items.map((it, i) => [it.key, i]));
  const n = items.length;
  const width = PAD * 2 + LANE * Math.max(...lanes.values());
  const X = (l: number) => PAD + l * LANE;
  const Y = (i: number) => (n - 1 - i) * ROW + ROW / 2;
  const color = (l: number) => COLORS[l % COLORS.length];
  const pic = svg('svg', { class: 'mv-graph-svg', width, height: n * ROW, viewBox: `0 0 ${width} ${n * ROW}` });
  const labelOf = new Map(nodes.map(x => [x.key, x.label]));
  // edges first, nodes over them
  items.forEach((it, i) => {
    if (it.parent === null || !row.has(it.parent)) {
      return;
    }
    const pl = lanes.get(it.parent)!;
    const l = lanes.get(it.key)!;
    const [px, py, cx, cy] = [X(pl), Y(row.get(it.parent)!), X(l), Y(i)];
    const d = pl === l ? `M${cx},${cy} L${px},${py}`
      : `M${cx},${cy} L${cx},${py - ROW * 0.7} C${cx},${py - ROW * 0.25} ${px},${py - ROW * 0.45} ${px},${py}`;
    pic.append(svg('path', { d, class: 'mv-graph-edge', stroke: color(l), fill: 'none', 'stroke-width': 2 }));
  });
  const sel = opts.selected ?? new Set();
  const rows = h('div', { class: 'mv-graph-rows', style: `--mv-graph-indent:${width + 4}px` });
  for (let i = n - 1; i >= 0; i--) {
    const it = items[i];
    const l = lanes.get(it.key)!;
    const [x, y] = [X(l), Y(i)];
    if (it.fold) {
      const f = it.fold;
      const first = f.members[0].label;
      const last = f.members[f.members.length - 1].label;
      pic.append(svg('rect', { x: x - 4, y: y - 6, width: 8, height: 12, rx: 3, class: 'mv-graph-foldmark', stroke: color(l) }));
      rows.append(h('div', {
        class: 'mv-graph-row mv-graph-fold', 'data-fold': f.id, role: 'button', tabindex: 0,
        title: `${f.members.length} automatic versions without tags or names (${first}–${last}): click to show them`,
        onclick: () => opts.onToggleFold?.(f.id),
        onkeydown: (e: KeyboardEvent) => (e.key === 'Enter' || e.key === ' ') && opts.onToggleFold?.(f.id)
      }, h('span', { class: 'mv-graph-foldtext' }, `⋯ ${f.members.length} automatic versions ${first}–${last}`)));
      continue;
    }
    const node = it.node!;
    const parentLabel = node.parent !== null ? labelOf.get(node.parent) ?? null : null;
    const branch = it.parent !== null && row.has(it.parent) && lanes.get(it.parent) !== l;
    const change = opts.highlight?.get(node.label);
    const isCurrent = opts.current === node.label;
    pic.append(svg('circle', {
      cx: x, cy: y, r: node.kind === 'auto' ? 3.5 : 5, class: 'mv-graph-dot' + (change ? ` mv-var-${change}` : ''),
      fill: node.kind === 'auto' ? 'var(--jp-layout-color1, #fff)' : color(l), stroke: color(l), 'stroke-width': 2
    }));
    if (change) {
      pic.append(svg('circle', { cx: x, cy: y, r: 8, class: `mv-graph-ring mv-var-${change}`, fill: 'none', 'stroke-width': 2 }));
    }
    const unfold = opts.expanded?.has(`fold:${node.key}`) ? `fold:${node.key}` : undefined;
    const cls = ['mv-graph-row', 'mv-graph-node', sel.has(node.key) ? 'mv-selected' : '', branch ? 'mv-graph-branch' : '',
      change ? `mv-var-hl mv-var-${change}` : '', isCurrent ? 'mv-var-current' : '', node.kind === 'auto' ? 'mv-graph-auto' : '']
      .filter(Boolean).join(' ');
    rows.append(h('div', {
      class: cls, 'data-version': node.label, 'data-key': node.key, title: title(node, parentLabel, branch), tabindex: 0,
      onkeydown: (e: KeyboardEvent) => {
        if ((e.key === 'Enter' || e.key === ' ') && (e.target as HTMLElement).tagName !== 'INPUT') {
          e.preventDefault();
          opts.onSelect?.(node.key, e.ctrlKey || e.metaKey || e.shiftKey);
        }
      },
      onclick: (e: MouseEvent) => {
        const t = e.target as HTMLElement;
        if (t.tagName !== 'INPUT' && !t.classList.contains('mv-graph-refold')) {
          opts.onSelect?.(node.key, e.ctrlKey || e.metaKey || e.shiftKey);
        }
      }
    },
    opts.pick ? h('input', { type: 'checkbox', class: 'mv-row-pick', checked: sel.has(node.key) || undefined, title: 'select (two for Diff)', onchange: () => opts.onSelect?.(node.key, true) }) : '',
    opts.notebooks && node.notebook ? h('span', { class: 'mv-graph-notebook' }, node.notebook) : '',
    h('span', { class: 'mv-graph-label' }, node.label),
    branch && parentLabel ? h('span', { class: 'mv-branch-from', title: `a branch: taken after restoring ${parentLabel}` }, `from ${parentLabel}`) : '',
    node.name ? h('b', { class: 'mv-graph-name' }, node.name) : '',
    node.tags.length ? h('span', { class: 'mv-tags' }, node.tags.map(t => h('span', { class: 'mv-tag mv-tagchip' }, t))) : '',
    change ? h('span', { class: `mv-var-badge mv-var-${change}` }, change) : '',
    node.message ? h('span', { class: 'mv-graph-msg' }, node.message) : '',
    unfold ? h('span', { class: 'mv-graph-refold', role: 'button', title: 'fold these automatic versions again', onclick: () => opts.onToggleFold?.(unfold) }, '⊟') : ''));
  }
  box.append(pic, rows);
  return box;
}
