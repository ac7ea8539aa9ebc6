// The history widget's ES module (anywidget `_esm`, bundled to jupyter_mv/widgets/static/history.js).
// State lives in the Python model (widgets/history.py); this draws it with the rendering layer and
// turns clicks into traitlet changes.
import { changeMap, h, historyColumns, IHistoryRow, keepGraphFocus, renderCells, renderChart, renderDetails, renderDiff, renderGraph, renderHistoryTable, renderVariableHistory, renderVariablePicker, stepChange } from '../render';
import { sanitizedOutput } from '../render/sanitize';
import type { Diff, HistoryChart, HistoryWidgetRow, HistoryWidgetState, Replay, VariableHistory, VariableNames, VersionDetails, WidgetMessage } from '../schema.generated';
import { filled, IModel } from './model';

type Model = IModel<HistoryWidgetState>;

function asRow(r: HistoryWidgetRow): IHistoryRow {
  return { ...r, id: r.label, key: r.id };
}

function render({ model, el }: { model: Model; el: HTMLElement }): () => void {
  el.classList.add('jupyter-mv-widget', 'mv-history');
  const ui = { hidden: new Set<string>(), showAll: false, typing: 0 as any, expanded: new Set<string>(), current: null as string | null };
  const commit = (changes: Partial<HistoryWidgetState>) => {
    for (const [k, v] of Object.entries(changes)) {
      model.set(k as keyof HistoryWidgetState, v as never);
    }
    model.save_changes();
  };
  const send = (action: string, extra: Record<string, unknown> = {}) => {
    showMessage({ kind: 'info', text: 'working…' });
    commit({ request: { action, seq: Date.now() + Math.random(), ...extra } });
  };

  // -- static parts (built once so inputs keep focus) ------------------------------------------
  const title = h('div', { class: 'mv-title' });
  const filter = h('input', { class: 'mv-filter', type: 'search', placeholder: 'filter: text, tag, acc>0.9, lr=0.01', value: model.get('filter') || '' });
  filter.addEventListener('input', () => {
    clearTimeout(ui.typing);
    ui.typing = setTimeout(() => commit({ filter: filter.value }), 250);
  });
  const prefix = h('input', { class: 'mv-prefix', type: 'text', placeholder: 'prefix (optional)', size: 12 });
  const tagInput = h('input', { class: 'mv-tag-input', type: 'text', placeholder: 'tag', size: 10 });
  const exportPath = h('input', { class: 'mv-export-path', type: 'text', placeholder: 'bundle.mvz', size: 12 });
  const picked = () => [...el.querySelectorAll<HTMLInputElement>('input.mv-var-pick')];
  const btn = (label: string, cls: string, fn: () => void, tip = '') => h('button', { class: `mv-btn ${cls}`.trim(), type: 'button', title: tip || undefined, onclick: fn }, label);
  const restoreBtn = btn('Restore', 'mv-restore', () => {
    const boxes = picked();
    const names = boxes.filter(b => b.checked).map(b => b.dataset.name);
    if (boxes.length && !names.length) {
      showMessage({ kind: 'error', text: 'pick at least one variable to restore' });
      return;
    }
    send('restore', { names: names.length === boxes.length ? [] : names, prefix: prefix.value.trim() });
  }, "put the selected version's variables (the ticked ones) back into the kernel");
  const outputsBtn = btn('Restore outputs', 'mv-restore-outputs', () => send('restore_outputs'), "re-display the selected version's cell outputs");
  const diffBtn = btn('Diff', 'mv-diff', () => send('diff'), 'two rows selected: diff them; one: diff it against the current state');
  const tagBtn = btn('Tag', 'mv-tag', () => send('tag', { tag: tagInput.value.trim() }), 'tag the selected version');
  const exportBtn = btn('Export', 'mv-export', () => send('export', { path: exportPath.value.trim() }), 'write the selected version as a bundle');
  const exportGroup = h('span', { class: 'mv-group mv-export-group' }, exportPath, exportBtn);
  const refreshBtn = btn('↻', 'mv-refresh', () => send('refresh'), 'reload the history from the store');
  const toolbar = h('div', { class: 'mv-toolbar' }, filter,
    h('span', { class: 'mv-group' }, prefix, restoreBtn), outputsBtn, diffBtn,
    h('span', { class: 'mv-group' }, tagInput, tagBtn), exportGroup, refreshBtn);
  const message = h('div', { class: 'mv-message' });
  const chartBox = h('div', { class: 'mv-chart-box' });
  // the versions as a table or as the graph of their parents; a variable's history beside either
  const viewBtns = h('span', { class: 'mv-group mv-view-toggle' });
  const varPick = h('span', { class: 'mv-var-pick-box' });
  const varBox = h('div', { class: 'mv-var-box' });
  const graphBox = h('div', { class: 'mv-graph-box' });
  const tableBox = h('div', { class: 'mv-table-box' });
  const pager = h('div', { class: 'mv-pager' });
  const detailsBox = h('div', { class: 'mv-details' });
  const diffBox = h('div', { class: 'mv-diff-panel' });
  const replayBox = h('div', { class: 'mv-replay' });
  toolbar.append(viewBtns, varPick);
  el.replaceChildren(title, toolbar, message, chartBox, varBox, graphBox, tableBox, pager, diffBox, detailsBox, replayBox);

  function showMessage(msg: WidgetMessage) {
    message.className = `mv-message mv-msg-${msg.kind || 'info'}`;
    message.textContent = msg.text || '';
    // a choice the kernel asks the user to make (restoring an untrusted version): only a click sends
    // the request it carries; Cancel sends nothing
    const choices = (msg.choices || []).map(c => btn(c.label, c.class || '', () => {
      if (c.request) {
        send(String(c.request.action), c.request);
      } else {
        showMessage({ kind: 'info', text: c.cancel || 'cancelled' });
      }
    }));
    if (choices.length) {
      message.append(h('div', { class: 'mv-choices' }, choices));
    }
  }

  function select(id: string | number, additive: boolean) {
    const key = Number(id);
    let sel = (model.get('selected') || []).slice();
    sel = additive ? (sel.includes(key) ? sel.filter(x => x !== key) : [...sel, key].slice(-2)) : [key];
    commit({ selected: sel });
  }

  function drawTable() {
    const rows = (model.get('rows') || []).map(asRow);
    const sortBy = model.get('sort_by');
    const desc = model.get('sort_desc');
    const cols = historyColumns(rows, { wide: true, params: model.get('key_params') || [], metrics: model.get('metric_names') || [], notebook: model.get('all_notebooks'), relative: true });
    const total = model.get('total');
    const count = model.get('count');
    tableBox.replaceChildren(count
      ? renderHistoryTable(rows, cols, {
        selected: new Set(model.get('selected') || []), pick: true, cls: 'mv-log',
        onSelect: select,
        sort: {
          by: sortBy, desc,
          onSort: key => commit(sortBy === key ? { sort_desc: !desc } : { sort_by: key, sort_desc: ['version', 'created', 'size'].includes(key) || key.startsWith('metric:') })
        }
      })
      : h('p', { class: 'mv-none' }, 'No versions yet: take one with %mv_snapshot.'));
    const page = model.get('page');
    const size = model.get('page_size');
    const pages = Math.max(1, Math.ceil(total / size));
    pager.replaceChildren(
      h('button', { class: 'mv-btn mv-prev', type: 'button', disabled: page <= 0 || undefined, onclick: () => commit({ page: page - 1 }) }, '‹ Prev'),
      h('span', { class: 'mv-pageinfo' }, ` page ${page + 1} of ${pages} · ${total} of ${count} versions `),
      h('button', { class: 'mv-btn mv-next', type: 'button', disabled: page >= pages - 1 || undefined, onclick: () => commit({ page: page + 1 }) }, 'Next ›'));
    title.replaceChildren(h('b', {}, 'Model versions'), ' ', h('small', {}, model.get('notebook') || ''));
    exportGroup.style.display = model.get('can_export') ? '' : 'none';
    markRows();
  }

  function drawView() {
    const view = model.get('view') === 'graph' ? 'graph' : 'table';
    viewBtns.replaceChildren(...(['table', 'graph'] as const).map(v => btn(v === 'table' ? 'Table' : 'Graph', `mv-view-${v}${view === v ? ' mv-active' : ''}`,
      () => commit({ view: v }), v === 'table' ? 'the versions as a table' : 'the versions as a graph of their parents (branches)')));
    tableBox.style.display = pager.style.display = view === 'table' ? '' : 'none';
    graphBox.style.display = view === 'graph' ? '' : 'none';
    drawGraph();
  }

  function varHistory(): VariableHistory | null {
    return filled<VariableHistory>(model.get('var_history'), 'changes');
  }

  /** Go to a version of the variable's history: it becomes the selection (its details show). */
  function step(label: string) {
    ui.current = label;
    send('goto', { label }); // the kernel side selects it (the table shows one page, the graph may be off)
    drawVar();
    drawGraph();
    markRows();
  }

  function drawVar() {
    const names = filled<VariableNames>(model.get('var_names'), 'variables') ?? { variables: [], metrics: [] };
    const picked = model.get('variable') || '';
    varPick.replaceChildren(model.get('all_notebooks') ? '' : renderVariablePicker(names, picked, v => {
      ui.current = null;
      commit({ variable: v });
    }));
    const hist = varHistory();
    if (hist && ui.current && !hist.changes.some(c => c.id === ui.current)) {
      ui.current = null;
    }
    const focused = ['mv-var-prev', 'mv-var-next'].find(c => (document.activeElement as HTMLElement | null)?.classList.contains(c));
    varBox.replaceChildren(hist && picked ? renderVariableHistory(hist, { current: ui.current, onStep: step }) : '');
    if (focused) { // re-drawn under the user's click: the button keeps the focus (Alt+←/→ keep stepping)
      const again = varBox.querySelector<HTMLButtonElement>(`.${focused}`);
      (again && !again.disabled ? again : varBox.querySelector<HTMLButtonElement>('.mv-var-prev:not([disabled]), .mv-var-next:not([disabled])'))?.focus();
    }
  }

  function drawGraph() {
    if (model.get('view') !== 'graph') {
      graphBox.replaceChildren();
      return;
    }
    const hist = model.get('variable') ? varHistory() : null;
    const refocus = keepGraphFocus(graphBox);
    graphBox.replaceChildren(renderGraph(model.get('graph') || [], {
      selected: new Set(model.get('selected') || []), onSelect: select, pick: true, notebooks: model.get('all_notebooks'),
      highlight: changeMap(hist), current: ui.current, expanded: ui.expanded,
      onToggleFold: id => {
        if (ui.expanded.has(id)) {
          ui.expanded.delete(id);
        } else {
          ui.expanded.add(id);
        }
        drawGraph();
      }
    }));
    refocus();
  }

  /** The table's rows of versions where the picked variable changed: marked as in the graph. */
  function markRows() {
    const changes = changeMap(model.get('variable') ? varHistory() : null);
    for (const tr of tableBox.querySelectorAll<HTMLElement>('tr.mv-row')) {
      const c = changes.get(tr.dataset.version || '');
      tr.classList.remove('mv-var-hl', 'mv-var-added', 'mv-var-changed', 'mv-var-removed', 'mv-var-current');
      if (c) {
        tr.classList.add('mv-var-hl', `mv-var-${c}`);
      }
      if (ui.current && tr.dataset.version === ui.current) {
        tr.classList.add('mv-var-current');
      }
    }
  }

  function onKey(e: KeyboardEvent) {
    // Alt+← / Alt+→ step through the variable's changes while the widget has focus
    const hist = varHistory();
    if (!hist || !e.altKey || (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')) {
      return;
    }
    const to = stepChange(hist, ui.current, e.key === 'ArrowRight' ? 1 : -1);
    if (to) {
      e.preventDefault();
      step(to);
    }
  }
  el.addEventListener('keydown', onKey);

  function drawChart() {
    const chart = filled<HistoryChart>(model.get('chart'), 'ids') ?? {};
    chartBox.replaceChildren(renderChart(chart, ui.hidden, id => select(id, false), name => {
      if (ui.hidden.has(name)) {
        ui.hidden.delete(name);
      } else {
        ui.hidden.add(name);
      }
      drawChart();
    }, new Set(model.get('selected') || [])));
  }

  function drawDetails() {
    const d = filled<VersionDetails>(model.get('details'), 'id');
    detailsBox.replaceChildren(d ? renderDetails(d, { renderOutput: sanitizedOutput, pickVariables: true }) : '');
  }

  function drawDiff() {
    const d = filled<Diff>(model.get('diff'), 'a');
    diffBox.replaceChildren(...(d ? [
      h('button', { class: 'mv-btn mv-close-diff', type: 'button', onclick: () => diffBox.replaceChildren() }, '× close diff'),
      renderDiff(d, { renderOutput: sanitizedOutput, showAll: ui.showAll, onShowAll: on => { ui.showAll = on; drawDiff(); } })
    ] : []));
  }

  function drawReplay() {
    const r = filled<Replay>(model.get('replay'), 'version');
    replayBox.replaceChildren(...(r ? [h('h4', {}, `Outputs of ${r.version}`), renderCells(r.cells, sanitizedOutput, true)] : []));
  }

  const handlers: [string, () => void][] = [
    ...'rows total count page sort_by sort_desc key_params metric_names can_export notebook all_notebooks'.split(' ').map(k => [`change:${k}`, drawTable] as [string, () => void]),
    ['change:selected', () => { drawTable(); drawChart(); drawGraph(); markRows(); }],
    ['change:view', drawView],
    ['change:graph', drawGraph],
    ['change:var_names', drawVar],
    ['change:variable', () => { drawVar(); drawGraph(); markRows(); }],
    ['change:var_history', () => { drawVar(); drawGraph(); markRows(); }],
    ['change:chart', drawChart],
    ['change:details', drawDetails],
    ['change:diff', drawDiff],
    ['change:replay', drawReplay],
    ['change:message', () => showMessage(model.get('message') || {})]
  ];
  for (const [ev, fn] of handlers) {
    model.on(ev, fn);
  }
  drawTable();
  drawChart();
  drawView();
  drawVar();
  markRows();
  drawDetails();
  drawDiff();
  drawReplay();
  showMessage(model.get('message') || {});
  return () => {
    for (const [ev, fn] of handlers) {
      model.off(ev, fn);
    }
    clearTimeout(ui.typing);
    el.removeEventListener('keydown', onKey);
  };
}

export default { render };
