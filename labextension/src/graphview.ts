// The sidebar's Table | Graph toggle (the branch graph: versions by their parents) and a variable's
// history (pick a variable or metric: the versions where it changed are marked in the table and the
// graph; ‹ › or Alt+←/→ step through them, selecting each; numbers get a chart). The views are the
// rendering layer's (render/graph.ts, render/varhistory.ts); this wires them into the panel.
import * as api from './api';
import { VersionsPanel } from './panel';
import { changeMap, el, IGraphNode, IVariableHistory, IVariableNames, keepGraphFocus, linkShown, parsePick, renderGraph, renderVariableHistory, renderVariablePicker, stepChange } from './render/index';

export class GraphViews {
  constructor(private readonly panel: VersionsPanel) {
    this._toggle = el('span', { class: 'jp-mv-view-toggle mv-group' });
    this._picker = el('span', { class: 'jp-mv-var-picker' });
    this._var = el('div', { class: 'jp-mv-var jupyter-mv-view' });
    panel.addTool(el('div', { class: 'jp-mv-views jupyter-mv-view' }, this._toggle, this._picker), this._var);
    panel.node.addEventListener('keydown', e => this.onKey(e));
    panel.changed.connect(() => this.onChanged());
    panel.setListHook((shown, table) => this.list(shown, table));
    this.drawToggle();
  }

  /** 'table' or 'graph'. */
  get mode(): string {
    return this._mode;
  }

  setMode(mode: 'table' | 'graph'): void {
    this._mode = mode;
    this.drawToggle();
    this.panel.redrawList();
  }

  private drawToggle(): void {
    const b = (mode: 'table' | 'graph', label: string, title: string) => el('button', {
      class: `mv-btn jp-mv-view-${mode}${this._mode === mode ? ' mv-active' : ''}`, type: 'button', title,
      onclick: () => this.setMode(mode)
    }, label);
    this._toggle.replaceChildren(b('table', 'Table', 'The versions as a table'),
      b('graph', 'Graph', 'The versions as a graph of their parents: restoring an older version and snapshotting starts a branch'));
  }

  /** The versions list: the table with the variable's changes marked, or the graph. */
  private list(shown: api.IVersion[], table: HTMLElement): HTMLElement {
    const changes = changeMap(this._hist);
    if (this._mode === 'table') {
      for (const tr of table.querySelectorAll<HTMLElement>('tr.mv-row')) {
        const c = changes.get(tr.dataset.version || '');
        if (c) {
          tr.classList.add('mv-var-hl', `mv-var-${c}`);
        }
        if (this._current && tr.dataset.version === this._current) {
          tr.classList.add('mv-var-current');
        }
      }
      return table;
    }
    const view = el('div', { class: 'jupyter-mv-view jp-mv-graph' });
    requestAnimationFrame(keepGraphFocus(this.panel.node)); // the panel puts the new graph in place right after this
    view.append(renderGraph(this.nodes(shown), {
      selected: new Set(this.panel.selected.map(v => v.id)),
      onSelect: (key, additive) => this.panel.pick(String(key), additive),
      highlight: changes, current: this._current, expanded: this._expanded,
      onToggleFold: id => {
        if (this._expanded.has(id)) {
          this._expanded.delete(id);
        } else {
          this._expanded.add(id);
        }
        this.panel.redrawList();
      }
    }));
    return view;
  }

  /** Graph nodes of the versions shown (oldest first); a parent hidden (by the filter or the automatic
   * versions setting) is skipped to its nearest shown ancestor. */
  private nodes(shown: api.IVersion[]): IGraphNode[] {
    const all = this.panel.allVersions.map(v => ({
      key: v.id, label: v.id, parent: v.parent ?? null, tags: v.tags, name: v.name, kind: v.kind, message: v.message, created: v.created
    }));
    return linkShown(all, new Set(shown.map(v => v.id)));
  }

  private onChanged(): void {
    const nb = this.panel.notebook;
    const all = this.panel.allVersions;
    const names: IVariableNames = {
      variables: [...new Set(all.flatMap(v => v.variables))].sort(),
      metrics: [...new Set(all.flatMap(v => Object.keys(v.metrics)))].sort()
    };
    const namesSig = JSON.stringify(names);
    if (namesSig !== this._namesSig) {
      this._namesSig = namesSig;
      this._picker.replaceChildren(all.length ? renderVariablePicker(names, this._picked, p => this.pickVariable(p)) : '');
    }
    const sig = `${nb?.context.path ?? ''}|${all.map(v => v.id).join(',')}`;
    if (sig !== this._sig) {
      const notebookChanged = this._sig.split('|')[0] !== sig.split('|')[0];
      this._sig = sig;
      if (notebookChanged) {
        this._picked = '';
        this._hist = null;
        this._current = null;
        this._expanded.clear();
        this._namesSig = '';
        this.onChanged();
        this.drawVar();
        return;
      }
      void this.load();
    }
  }

  private pickVariable(picked: string): void {
    this._picked = picked;
    this._current = null;
    this._hist = null;
    this._error = '';
    void this.load();
  }

  /** Fetch the picked variable's history (again: new versions arrived). */
  private async load(): Promise<void> {
    const nb = this.panel.notebook;
    const picked = this._picked;
    if (!nb || !picked) {
      this._hist = null;
      this.drawVar();
      this.panel.redrawList();
      return;
    }
    const { name, kind } = parsePick(picked);
    try {
      const hist = await api.variableHistory(nb.context.path, name, kind);
      if (picked !== this._picked || nb !== this.panel.notebook) {
        return;
      }
      this._hist = hist;
      this._error = '';
    } catch (e) {
      this._hist = null;
      this._error = (e as Error).message;
    }
    this.drawVar();
    this.panel.redrawList();
  }

  private drawVar(): void {
    if (!this._picked) {
      this._var.replaceChildren();
      return;
    }
    if (this._error) {
      this._var.replaceChildren(el('div', { class: 'jp-mv-error' }, this._error));
      return;
    }
    const focused = ['mv-var-prev', 'mv-var-next'].find(c => (document.activeElement as HTMLElement | null)?.classList.contains(c));
    this._var.replaceChildren(this._hist ? renderVariableHistory(this._hist, { current: this._current, onStep: id => this.step(id) }) : '');
    if (focused) { // re-drawn under the user's click: the button keeps the focus (the keyboard keeps stepping)
      const again = this._var.querySelector<HTMLButtonElement>(`.${focused}`);
      (again && !again.disabled ? again : this._var.querySelector<HTMLButtonElement>('.mv-var-prev:not([disabled]), .mv-var-next:not([disabled])'))?.focus();
    }
  }

  /** Go to a version of the variable's history: select it (its details show). */
  private step(label: string): void {
    this._current = label;
    this.drawVar();
    this.panel.select([label]); // re-draws the list
    if (!this.panel.versions.some(v => v.id === label)) {
      this._var.append(el('div', { class: 'jp-mv-muted jp-mv-var-hidden' },
        `${label} is not listed: an automatic version (setting "Show automatic versions")`));
    }
  }

  private onKey(e: KeyboardEvent): void {
    if (!this._hist || !e.altKey || (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')) {
      return;
    }
    const to = stepChange(this._hist, this._current, e.key === 'ArrowRight' ? 1 : -1);
    if (to) {
      e.preventDefault();
      this.step(to);
    }
  }

  private _mode: 'table' | 'graph' = 'table';
  private _picked = '';
  private _hist: IVariableHistory | null = null;
  private _error = '';
  private _current: string | null = null;
  private _expanded = new Set<string>();
  private _sig = '';
  private _namesSig = '';
  private readonly _toggle: HTMLElement;
  private readonly _picker: HTMLElement;
  private readonly _var: HTMLElement;
}
