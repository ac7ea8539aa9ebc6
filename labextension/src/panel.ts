// The "Model versions" sidebar: the active notebook's versions, a metrics sparkline, a filter,
// and the details of the selected version. Reads through the server extension only, so it works
// without a kernel.
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import * as api from './api';
import { labOutput } from './labOutputs';
import { el, formatValue, historyColumns, IColumn, keyValues, renderDetails as renderVersionDetails, renderHistoryTable, sparkline } from './render/index';

export interface IPanelActions {
  snapshot(): void;
  restore(): void;
  restoreOutputs(): void;
  diff(): void;
}

/** The panel's user settings (schema/plugin.json; Settings Editor → Model versions). */
export interface IPanelOptions {
  /** List versions %mv_auto took (kind 'auto'); off: only manual ones, and auto ones given a tag or name. */
  showAutomaticVersions: boolean;
  /** Seconds between re-reads while the panel is visible; 0: only on kernel activity and ⟳. */
  refreshInterval: number;
}

export const DEFAULT_OPTIONS: IPanelOptions = { showAutomaticVersions: true, refreshInterval: 5 };

export class VersionsPanel extends Widget {
  constructor(private readonly actions: IPanelActions) {
    super();
    this.id = 'jupyter-mv-versions';
    this.addClass('jp-mv-panel');
    this.title.caption = 'Model versions';
    this.title.label = 'Model versions';
    this.buildShell();
  }

  /** Apply new settings: re-read the list, restart polling at the new interval. */
  setOptions(options: Partial<IPanelOptions>): void {
    this._options = { ...this._options, ...options };
    if (this.isVisible) {
      this.startPolling();
    }
    void this.refresh();
  }

  get options(): IPanelOptions {
    return this._options;
  }

  /** Emitted when the selection or the notebook changes (commands re-check if they are enabled). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get notebook(): NotebookPanel | null {
    return this._notebook;
  }

  get versions(): api.IVersion[] {
    return this._versions;
  }

  /** Selected versions, oldest first (at most two: the pair the Diff compares). */
  get selected(): api.IVersion[] {
    return this._versions.filter(v => this._selection.includes(v.id));
  }

  setNotebook(panel: NotebookPanel | null): void {
    if (panel === this._notebook) {
      return;
    }
    this.closeDiff();
    // each notebook keeps its own selection: coming back to a notebook shows what was picked there
    if (this._notebook) {
      this._selections.set(this._notebook, this._selection);
    }
    this._notebook = panel;
    this._versions = [];
    this._all = [];
    this._selection = [];
    this._pending = (panel && this._selections.get(panel)) || [];
    this._details.replaceChildren();
    this._changed.emit();
    void this.refresh();
  }

  select(ids: string[]): void {
    this._selection = ids.slice(-2);
    this.renderList();
    this._changed.emit();
    void this.showDetails();
  }

  async refresh(): Promise<void> {
    const nb = this._notebook;
    if (!nb) {
      this._heading.textContent = 'No notebook';
      this._status.textContent = 'Open a notebook to see its model versions.';
      this.renderList();
      return;
    }
    const path = nb.context.path;
    this._heading.textContent = path;
    this._heading.title = path;
    try {
      const { versions: all } = await api.listVersions(path);
      if (nb !== this._notebook || path !== nb.context.path) {
        return; // the user moved on while we were asking
      }
      const showAuto = this._options.showAutomaticVersions;
      // a tagged or named automatic version is one the user picked out: it stays listed
      const versions = all.filter(v => showAuto || v.kind !== 'auto' || v.tags.length > 0 || !!v.name);
      const before = this._versions.map(v => v.id + v.tags.join()).join('|');
      this._versions = versions;
      this._all = all;
      const restored = this._pending.length > 0 && !this._selection.length;
      if (restored) {
        this._selection = this._pending; // the selection this notebook had when the user left it
      }
      this._pending = [];
      this._selection = this._selection.filter(id => versions.some(v => v.id === id));
      if (restored && this._selection.length) {
        void this.showDetails();
        this.renderList();
        this._changed.emit();
      }
      this._status.textContent = versions.length
        ? ''
        : all.length
          ? `${all.length} automatic version(s) hidden (setting "Show automatic versions").`
          : this._moved.get(nb) ?? 'No versions yet. Take a snapshot (toolbar button, or %mv_snapshot in a cell).';
      if (before !== versions.map(v => v.id + v.tags.join()).join('|')) {
        this.renderList();
        this._changed.emit();
      }
      this._refreshed.emit();
    } catch (e) {
      if (nb !== this._notebook || path !== nb.context.path) {
        return; // an answer about a notebook no longer shown
      }
      this._status.textContent = `Cannot read the versions: ${(e as Error).message}`;
      if (e instanceof api.ApiError && this._versions.length) {
        // the server answered that the history cannot be read (a store deleted or damaged under it):
        // the rows shown would be stale and every action on them would fail, so they go
        this.closeDiff();
        this._versions = [];
        this._all = [];
        this._selection = [];
        this._details.replaceChildren();
        this.renderList();
        this._changed.emit();
      }
    }
  }

  /** Say why `nb` (renamed or moved while open) shows no versions: its history did not follow it
   * (`why`, the server's reason). Shown instead of "No versions yet" until it gets versions of its own;
   * null forgets it (a later rename that the history followed). */
  setMovedNote(nb: NotebookPanel, oldPath: string, why: string | null): void {
    if (why === null) {
      this._moved.delete(nb);
    } else {
      this._moved.set(nb, `No versions under this name: the history of ${oldPath} did not follow the notebook (${why}).`);
    }
    if (nb === this._notebook) {
      void this.refresh();
    }
  }

  /** Every version of the notebook, automatic ones too (the setting hides some from `versions`). */
  get allVersions(): api.IVersion[] {
    return this._all;
  }

  /** Click on a version (the table's rule): picks it; `additive` (Ctrl/Shift) adds or removes it. */
  pick(key: string, additive: boolean): void {
    if (additive) {
      const rest = this._selection.filter(x => x !== key);
      this.select(rest.length === this._selection.length ? [...rest, key] : rest);
    } else {
      this.select([key]);
    }
  }

  /** Let a view module (graphview.ts: the branch graph, a variable's history) show the versions list:
   * `hook(shown newest first, the table)` returns what the list shows. */
  setListHook(hook: ((shown: api.IVersion[], table: HTMLElement) => HTMLElement) | null): void {
    this._listHook = hook;
    this.renderList();
  }

  /** Re-draw the versions list (a view module's state changed). */
  redrawList(): void {
    this.renderList();
  }

  /** Add a column to the versions table after the column `after` (a feature module's: remote.ts's
   * "on the remote" mark). Like every column it is left out while no row fills it. */
  addColumn(column: IColumn, after = 'version'): void {
    this._columns.push([column, after]);
    this.renderList();
  }

  /** Emitted after each successful re-read of the versions (feature modules re-read their own state). */
  get refreshed(): ISignal<this, void> {
    return this._refreshed;
  }

  /** Add controls under the filter (a view module's toggles). */
  addTool(...nodes: HTMLElement[]): void {
    this._tools.append(...nodes);
  }

  /** Add a button to the panel's action row (features living in their own modules: checkout). */
  addAction(label: string, cls: string, fn: () => void, title: string): HTMLButtonElement {
    const b = el('button', { class: `jp-mv-button ${cls}`, title, type: 'button' }, label) as HTMLButtonElement;
    b.addEventListener('click', fn);
    this._actions.insertBefore(b, this._actions.lastElementChild); // before ⟳
    return b;
  }

  /** Show `node` (an offer such as "Resume from vN") under the action row; null removes it. */
  setOffer(node: HTMLElement | null): void {
    this._offer.replaceChildren(...(node ? [node] : []));
  }

  /** Show `view` (a diff) in place of the details, with a Close button: for shells whose main area
   * takes no second widget. The panel must be attached (shown) first. */
  showDiff(view: Widget): void {
    this.closeDiff();
    const host = el('div', { class: 'jp-mv-inline-diff' });
    const close = el('button', { class: 'jp-mv-button jp-mv-action-close-diff', type: 'button', title: 'Close the diff' }, `Close ${view.title.label}`);
    close.addEventListener('click', () => {
      this.closeDiff();
      void this.showDetails();
    });
    this._details.replaceChildren(close, host);
    Widget.attach(view, host);
    this._diff = view;
  }

  closeDiff(): void {
    const view = this._diff;
    this._diff = null;
    if (view && !view.isDisposed) {
      view.dispose(); // detaches it too
    }
  }

  /** Refresh soon (several triggers in a burst make one request). */
  scheduleRefresh(delay = 300): void {
    if (this._timer) {
      clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = 0;
      void this.refresh();
    }, delay);
  }

  protected onAfterShow(): void {
    void this.refresh();
    this.startPolling();
  }

  private startPolling(): void {
    clearInterval(this._poll);
    this._poll = 0;
    const seconds = this._options.refreshInterval;
    if (!(seconds > 0)) {
      return;
    }
    this._poll = window.setInterval(() => {
      if (this.isVisible && !document.hidden) {
        void this.refresh();
      }
    }, seconds * 1000);
  }

  protected onAfterHide(): void {
    clearInterval(this._poll);
  }

  dispose(): void {
    this.closeDiff();
    clearInterval(this._poll);
    clearTimeout(this._timer);
    super.dispose();
  }

  private buildShell(): void {
    this._heading = el('div', { class: 'jp-mv-heading' }, 'No notebook');
    const button = (label: string, cls: string, fn: () => void, title: string) => {
      const b = el('button', { class: `jp-mv-button ${cls}`, title, type: 'button' }, label);
      b.addEventListener('click', fn);
      return b;
    };
    const actions = (this._actions = el(
      'div',
      { class: 'jp-mv-actions' },
      button('Snapshot', 'jp-mv-action-snapshot', () => this.actions.snapshot(), 'Snapshot the notebook\'s variables'),
      button('Restore', 'jp-mv-action-restore', () => this.actions.restore(), 'Restore the selected version\'s variables in the kernel'),
      button('Restore outputs', 'jp-mv-action-restore-outputs', () => this.actions.restoreOutputs(), 'Put the selected version\'s outputs back into the notebook'),
      button('Diff', 'jp-mv-action-diff', () => this.actions.diff(), 'Compare two versions (select two with Ctrl/Shift-click)'),
      button('⟳', 'jp-mv-action-refresh', () => void this.refresh(), 'Refresh')
    ));
    this._offer = el('div', { class: 'jp-mv-offer' });
    this._filter = el('input', { class: 'jp-mv-filter', type: 'search', placeholder: 'Filter: version, message, tag, param…' });
    this._filter.addEventListener('input', () => this.renderList());
    this._metric = el('select', { class: 'jp-mv-metric', title: 'Metric shown in the sparkline' });
    this._metric.addEventListener('change', () => this.renderChart());
    this._chart = el('div', { class: 'jp-mv-chart' });
    this._status = el('div', { class: 'jp-mv-status' });
    this._tools = el('div', { class: 'jp-mv-tools' });
    this._list = el('div', { class: 'jp-mv-list' });
    this._details = el('div', { class: 'jp-mv-details jupyter-mv-view' });
    // the list and the details share the rest of the panel: the list keeps at least a few rows in
    // view and at most half the height while details are shown; each scrolls on its own
    this._split = el('div', { class: 'jp-mv-split' }, this._list, this._details);
    this.node.append(
      this._heading,
      actions,
      this._offer,
      this._filter,
      el('div', { class: 'jp-mv-chart-row' }, this._metric, this._chart),
      this._tools,
      this._status,
      this._split
    );
  }

  private matches(v: api.IVersion, q: string): boolean {
    if (!q) {
      return true;
    }
    const hay = [v.id, v.name, v.message, v.created, v.tags.join(' '), keyValues(v.params, 99), keyValues(v.metrics, 99), v.variables.join(' ')]
      .join(' ')
      .toLowerCase();
    return q
      .toLowerCase()
      .split(/\s+/)
      .every(word => hay.includes(word));
  }

  private renderList(): void {
    const q = this._filter.value.trim();
    const shown = this._versions.filter(v => this.matches(v, q)).reverse(); // newest first
    const columns = historyColumns(shown);
    for (const [col, after] of this._columns.filter(([c]) => c.always || shown.some(r => c.text(r) !== ''))) {
      const i = columns.findIndex(c => c.key === after);
      columns.splice(i < 0 ? columns.length : i + 1, 0, col);
    }
    const t = renderHistoryTable(shown, columns, {
      selected: new Set(this._selection),
      cls: 'jp-mv-table jp-mv-versions',
      onSelect: (id, additive) => this.pick(String(id), additive)
    });
    // a re-draw (a refresh, a selection) replaces the rows: the row that had the keyboard focus keeps it
    const active = document.activeElement as HTMLElement | null;
    const keyOf = (n: Element | null | undefined) => n?.getAttribute('data-id') ?? n?.getAttribute('data-key') ?? null;
    const focusable = 'tr.mv-row[data-id], [data-key][tabindex]'; // table rows, graph rows
    const focused = active && this._list.contains(active) ? keyOf(active.closest(focusable)) : null;
    const scroll = this._list.scrollTop;
    this._list.replaceChildren(this._listHook ? this._listHook(shown, t) : t);
    this._list.scrollTop = scroll;
    if (focused) {
      const row = [...this._list.querySelectorAll<HTMLElement>(focusable)].find(r => keyOf(r) === focused);
      row?.focus({ preventScroll: true });
    }
    this.renderMetricChoice();
    this.renderChart();
  }

  private renderMetricChoice(): void {
    const names = [...new Set(this._versions.flatMap(v => Object.keys(v.metrics)))].sort();
    const current = this._metric.value;
    const opts = names.map(n => el('option', { value: n }, n));
    this._metric.replaceChildren(...opts);
    this._metric.value = names.includes(current) ? current : names[0] ?? '';
    this._metric.style.display = names.length ? '' : 'none';
  }

  private renderChart(): void {
    const m = this._metric.value;
    if (!m) {
      this._chart.replaceChildren();
      return;
    }
    const vs = this._versions.filter(v => this.matches(v, this._filter.value.trim()));
    const values = vs.map(v => v.metrics[m]);
    const last = [...values].reverse().find(x => typeof x === 'number');
    this._chart.replaceChildren(
      sparkline(values, vs.map(v => v.id)),
      el('span', { class: 'jp-mv-chart-last' }, last === undefined ? '' : formatValue(last))
    );
  }

  private async showDetails(): Promise<void> {
    this.closeDiff();
    const sel = this.selected;
    const nb = this._notebook;
    if (sel.length !== 1 || !nb) {
      this._details.replaceChildren(sel.length === 2 ? el('div', { class: 'jp-mv-muted' }, `${sel[0].id} and ${sel[1].id} selected: Diff compares them.`) : '');
      return;
    }
    const id = sel[0].id;
    this._details.replaceChildren(el('div', { class: 'jp-mv-muted' }, `Loading ${id}…`));
    try {
      const d = await api.versionDetails(nb.context.path, id);
      if (this.selected.length !== 1 || this.selected[0].id !== id) {
        return;
      }
      this._details.replaceChildren(renderVersionDetails(d, { renderOutput: labOutput, openCells: true }));
    } catch (e) {
      this._details.replaceChildren(el('div', { class: 'jp-mv-error' }, (e as Error).message));
    }
  }

  private _notebook: NotebookPanel | null = null;
  private _moved = new WeakMap<NotebookPanel, string>();
  private _selections = new WeakMap<NotebookPanel, string[]>();
  private _pending: string[] = [];
  private _diff: Widget | null = null;
  private _versions: api.IVersion[] = [];
  private _all: api.IVersion[] = [];
  private _listHook: ((shown: api.IVersion[], table: HTMLElement) => HTMLElement) | null = null;
  private _tools!: HTMLElement;
  private _selection: string[] = [];
  private _changed = new Signal<this, void>(this);
  private _refreshed = new Signal<this, void>(this);
  private _columns: [IColumn, string][] = [];
  private _timer = 0;
  private _poll = 0;
  private _options: IPanelOptions = { ...DEFAULT_OPTIONS };
  private _heading!: HTMLElement;
  private _actions!: HTMLElement;
  private _offer!: HTMLElement;
  private _filter!: HTMLInputElement;
  private _metric!: HTMLSelectElement;
  private _chart!: HTMLElement;
  private _status!: HTMLElement;
  private _list!: HTMLElement;
  private _details!: HTMLElement;
  private _split!: HTMLElement;
}
