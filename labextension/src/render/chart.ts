// Metric charts: the sidebar's sparkline and the widget's multi-series chart.
import { h, svg } from './dom';
import { formatValue } from './format';

/** An SVG line of `values` (oldest first); NaN/undefined leave gaps. */
export function sparkline(values: unknown[], labels: string[], width = 240, height = 40): SVGElement {
  const box = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', class: 'jp-mv-sparkline mv-sparkline' });
  const num = (v: unknown) => (typeof v === 'number' && isFinite(v) ? v : undefined);
  const nums = values.map(num).filter((v): v is number => v !== undefined);
  if (!nums.length) {
    return box;
  }
  const lo = Math.min(...nums);
  const hi = Math.max(...nums);
  const pad = 4;
  const x = (i: number) => (values.length === 1 ? width / 2 : pad + (i * (width - 2 * pad)) / (values.length - 1));
  const y = (v: number) => (hi === lo ? height / 2 : height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo));
  let d = '';
  let pen = false;
  values.forEach((raw, i) => {
    const v = num(raw);
    if (v === undefined) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
    pen = true;
    box.append(svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }, svg('title', {}, `${labels[i]}: ${formatValue(v)}`)));
  });
  box.prepend(svg('path', { d: d.trim() }));
  return box;
}

export interface IChartData {
  ids: (number | string)[];
  x: number[];
  labels: string[];
  series: Record<string, unknown[]>;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];

/** One line per metric, version on x; hover shows the version, click picks it, the legend hides lines. */
export function renderChart(chart: Partial<IChartData>, hidden: Set<string>, onPick: (id: number | string) => void,
  onToggle: (name: string) => void, selected: Set<number | string>): HTMLElement {
  const names = Object.keys(chart.series || {});
  const box = h('div', { class: 'mv-chart' });
  const xs = chart.x || [];
  if (!names.length || !xs.length) {
    box.append(h('p', { class: 'mv-none' }, 'no metrics recorded yet'));
    return box;
  }
  const ids = chart.ids || [];
  const labels = chart.labels || [];
  const series = chart.series || {};
  const W = 640, H = 190, L = 48, R = 10, T = 10, B = 26;
  const num = (v: unknown) => (typeof v === 'number' && isFinite(v) ? v : null);
  let lo = Infinity;
  let hi = -Infinity;
  for (const n of names) {
    if (!hidden.has(n)) {
      for (const v of series[n]) {
        const y = num(v);
        if (y !== null) {
          lo = Math.min(lo, y);
          hi = Math.max(hi, y);
        }
      }
    }
  }
  if (!isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const X = (x: number) => L + (x1 === x0 ? (W - L - R) / 2 : ((x - x0) / (x1 - x0)) * (W - L - R));
  const Y = (y: number) => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'mv-chart-svg', width: '100%', height: H });
  root.append(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'mv-axis' }), svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'mv-axis' }));
  for (const y of [lo, (lo + hi) / 2, hi]) {
    root.append(svg('text', { x: L - 4, y: Y(y) + 3, 'text-anchor': 'end', class: 'mv-tick' }, formatValue(y)));
  }
  root.append(svg('text', { x: X(x0), y: H - 8, 'text-anchor': 'start', class: 'mv-tick' }, labels[0] ?? ''),
    svg('text', { x: X(x1), y: H - 8, 'text-anchor': 'end', class: 'mv-tick' }, labels[labels.length - 1] ?? ''));
  names.forEach((n, k) => {
    if (hidden.has(n)) {
      return;
    }
    const color = COLORS[k % COLORS.length];
    let d = '';
    series[n].forEach((v, i) => {
      const y = num(v);
      if (y !== null) {
        d += (d ? 'L' : 'M') + X(xs[i]).toFixed(1) + ',' + Y(y).toFixed(1);
      }
    });
    root.append(svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 1.5 }));
    series[n].forEach((v, i) => {
      const y = num(v);
      if (y === null) {
        return;
      }
      const sel = selected.has(ids[i]);
      root.append(svg('circle', {
        cx: X(xs[i]), cy: Y(y), r: sel ? 5 : 3.2, fill: sel ? '#fff' : color, stroke: color, 'stroke-width': 1.5,
        class: 'mv-point', 'data-id': ids[i], 'data-label': labels[i], onclick: () => onPick(ids[i])
      }, svg('title', {}, `${labels[i]}  ${n} = ${formatValue(y)}`)));
    });
  });
  box.append(root, h('div', { class: 'mv-legend' }, names.map((n, k) => h('label', { class: 'mv-legend-item' },
    h('input', { type: 'checkbox', checked: !hidden.has(n) || undefined, onchange: () => onToggle(n) }),
    h('span', { class: 'mv-swatch', style: `background:${COLORS[k % COLORS.length]}` }), n))));
  return box;
}
