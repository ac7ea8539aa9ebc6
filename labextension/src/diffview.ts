// The main-area "Diff" tab: the server's diff (GET diff: Diff.to_dict()) rendered by the rendering
// layer, with each side's recorded outputs (GET versions/ID) through JupyterLab's rendermime, untrusted.
import { Widget } from '@lumino/widgets';
import * as api from './api';
import { labOutput } from './labOutputs';
import { el, renderDiff } from './render/index';

export class DiffView extends Widget {
  constructor(readonly notebook: string, readonly a: string, readonly b: string) {
    super();
    this.addClass('jp-mv-diff');
    this.addClass('jupyter-mv-view');
    this.id = `jupyter-mv-diff-${Private.counter++}`;
    this.title.label = `Diff ${a} → ${b}`;
    this.title.caption = `${notebook}: ${a} → ${b}`;
    this.title.closable = true;
    this.node.append(el('div', { class: 'mv-muted' }, `Loading the diff of ${a} and ${b}…`));
    void this.load();
  }

  async load(): Promise<void> {
    try {
      const [d, va, vb] = await Promise.all([
        api.diff(this.notebook, this.a, this.b),
        api.versionDetails(this.notebook, this.a),
        api.versionDetails(this.notebook, this.b)
      ]);
      this._diff = d;
      this._cells = [va.cells, vb.cells];
      this.draw();
    } catch (e) {
      this.node.replaceChildren(el('div', { class: 'jp-mv-error mv-error-text' }, `Cannot compare ${this.a} and ${this.b}: ${(e as Error).message}`));
    }
  }

  private draw(): void {
    if (!this._diff) {
      return;
    }
    this.node.replaceChildren(el('div', { class: 'jp-mv-diff-body' }, renderDiff(this._diff, {
      cellsA: this._cells[0],
      cellsB: this._cells[1],
      renderOutput: labOutput,
      showAll: this._showAll,
      onShowAll: on => {
        this._showAll = on;
        this.draw();
      }
    })));
  }

  private _diff: api.IDiff | null = null;
  private _cells: [api.IStoredCell[], api.IStoredCell[]] = [[], []];
  private _showAll = false;
}

namespace Private {
  export let counter = 0;
}
