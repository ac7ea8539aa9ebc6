// Remotes in the sidebar (issue 14): a ☁ mark on each version the store's default remote holds, the
// remote's name and URL (as the store's registry holds it: never credentials), and Push / Pull (panel
// buttons and the commands "Push version to remote", "Pull from remote"). The mark comes from GET remote,
// which reads the store only (the versions push and pull recorded), so it is re-read on every refresh;
// Push and Pull are REST POSTs the server runs in a worker thread (they touch the store, no live
// variables). While one runs the panel shows it busy (elapsed time); then the one-line summary.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import * as api from './api';
import { VersionsPanel } from './panel';
import { el, humanBytes } from './render/index';

export const PUSH = 'jupyter-mv:push';
export const PULL = 'jupyter-mv:pull';

export interface IRemoteOptions {
  current: () => NotebookPanel | null;
  /** The selected version, or one the user picks (index.ts). */
  pickVersion: (title: string) => Promise<string | null>;
  palette: ICommandPalette | null;
}

export class RemoteViews {
  constructor(private readonly app: JupyterFrontEnd, private readonly panel: VersionsPanel, private readonly opts: IRemoteOptions) {
    this._where = el('span', { class: 'jp-mv-remote-where' });
    this._state = el('span', { class: 'jp-mv-remote-state' });
    this._bar = el('div', { class: 'jp-mv-remote' }, this._where, this._state);
    panel.addTool(this._bar);
    this._push = panel.addAction('Push', 'jp-mv-action-push', () => void app.commands.execute(PUSH),
      'Push the selected version(s) to the store\'s default remote');
    this._pull = panel.addAction('Pull', 'jp-mv-action-pull', () => void app.commands.execute(PULL),
      'Pull this notebook\'s versions from the store\'s default remote (they are untrusted, like an imported bundle)');
    panel.addColumn({
      key: 'remote',
      label: '☁',
      // no `fit` (at least 3 characters wide): one mark needs less; style/remote.css sets its width
      text: r => (this._on.has(r.id) ? '☁' : ''),
      title: r => (this._on.has(r.id) ? `on ${this.remoteText()}` : `not on ${this.remoteText()}`),
      node: r => (this._on.has(r.id) ? el('span', { class: 'jp-mv-on-remote', 'data-remote': this._status?.remote?.name ?? '' }, '☁') : '')
    });
    panel.refreshed.connect(() => void this.refresh());
    panel.changed.connect(() => {
      if (this._path !== (panel.notebook?.context.path ?? null)) {
        if (!this._busy) {
          this._state.textContent = ''; // the last transfer's line was about another notebook
        }
        this.apply(null);
        void this.refresh();
      }
    });
    this.register();
    this.draw();
  }

  /** Re-read the remote status of the panel's notebook (the store only). */
  async refresh(): Promise<void> {
    const nb = this.panel.notebook;
    const path = nb?.context.path ?? null;
    if (!path) {
      this.apply(null);
      return;
    }
    try {
      const s = await api.remoteStatus(path);
      if (path === (this.panel.notebook?.context.path ?? null)) {
        this.apply(s, path);
      }
    } catch (e) {
      this._where.textContent = `Remote: ${(e as Error).message}`;
    }
  }

  private apply(s: api.IRemoteStatus | null, path: string | null = null): void {
    const before = [...this._on].join() + '|' + JSON.stringify(this._status?.remote ?? null);
    this._status = s;
    this._path = path;
    this._on = new Set(s?.on_remote ?? []);
    this.draw();
    if (before !== [...this._on].join() + '|' + JSON.stringify(s?.remote ?? null)) {
      this.panel.redrawList();
    }
    this.app.commands.notifyCommandChanged(PUSH);
    this.app.commands.notifyCommandChanged(PULL);
  }

  private remoteText(): string {
    const r = this._status?.remote;
    return r ? `${r.name || 'the remote'} (${r.url})` : 'a remote';
  }

  private get ready(): boolean {
    return !!this._status?.remote && !this._busy;
  }

  private draw(): void {
    const s = this._status;
    const r = s?.remote;
    if (r) {
      this._where.replaceChildren(el('span', { class: 'jp-mv-remote-icon' }, '☁ '), el('b', {}, r.name || 'remote'), ` ${r.url}`);
      this._where.title = `Default remote of this store: ${r.name} = ${r.url}. ☁ in the table: the versions it holds ` +
        '(as this store recorded them when pushing and pulling).';
    } else {
      this._where.textContent = s ? `No remote: ${s.problem ?? ''}` : '';
      this._where.title = '';
    }
    this._bar.classList.toggle('jp-mv-remote-none', !r);
    this._push.disabled = !this.ready;
    this._pull.disabled = !this.ready;
    const why = this._busy ? 'A transfer is in progress' : r ? '' : (s?.problem ?? 'No remote');
    this._push.title = why || `Push the selected version(s) to ${this.remoteText()}`;
    this._pull.title = why || `Pull this notebook's versions from ${this.remoteText()} (they are untrusted, like an imported bundle)`;
  }

  private register(): void {
    const { commands } = this.app;
    commands.addCommand(PUSH, {
      label: 'Push version to remote',
      caption: 'Model versions: send the selected version(s) to the store\'s default remote (%mv_push)',
      isEnabled: () => !this._busy,
      execute: () => this.push()
    });
    commands.addCommand(PULL, {
      label: 'Pull from remote',
      caption: 'Model versions: bring in this notebook\'s versions from the store\'s default remote (%mv_pull)',
      isEnabled: () => !this._busy,
      execute: () => this.pull()
    });
    for (const command of [PUSH, PULL]) {
      this.opts.palette?.addItem({ command, category: 'Model versions' });
    }
  }

  private async notebookPath(): Promise<string | null> {
    const nb = this.opts.current();
    if (this.panel.notebook !== nb) {
      this.panel.setNotebook(nb);
      await this.panel.refresh();
    }
    if (!nb) {
      Notification.warning('Open a notebook first: Push and Pull work on its versions.', { autoClose: 4000 });
      return null;
    }
    return nb.context.path;
  }

  async push(): Promise<void> {
    const path = await this.notebookPath();
    if (!path) {
      return;
    }
    let refs = this.panel.selected.map(v => v.id);
    if (!refs.length) {
      const one = await this.opts.pickVersion('Push which version to the remote?');
      refs = one ? [one] : [];
    }
    if (!refs.length) {
      return;
    }
    await this.transfer(path, `Pushing ${refs.join(', ')} to ${this._status?.remote?.name || 'the remote'}`, id => api.push(path, refs, id));
  }

  async pull(): Promise<void> {
    const path = await this.notebookPath();
    if (path) {
      await this.transfer(path, `Pulling from ${this._status?.remote?.name || 'the remote'}`, id => api.pull(path, id));
    }
  }

  /** Run one transfer: busy while it runs (elapsed time; bytes, rate and ETA as the server reports them),
   * then its summary line or its error line. */
  private async transfer(path: string, what: string, run: (id: string) => Promise<api.IRemoteTransfer>): Promise<void> {
    if (this._busy) {
      return;
    }
    this._busy = true;
    this.draw();
    this.app.commands.notifyCommandChanged(PUSH);
    this.app.commands.notifyCommandChanged(PULL);
    const t0 = Date.now();
    const id = `lab-${t0.toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    let progress = '';
    let asking = false;
    const tick = () => {
      this._state.className = 'jp-mv-remote-state jp-mv-busy';
      this._state.textContent = `${what}… ${Math.round((Date.now() - t0) / 1000)} s${progress}`;
      if (asking) {
        return;
      }
      asking = true;
      api.remoteStatus(path, id)
        .then(s => {
          progress = s.transfer ? progressText(s.transfer) : progress;
        })
        .catch(() => undefined)
        .finally(() => {
          asking = false;
        });
    };
    tick();
    const timer = window.setInterval(tick, 1000);
    try {
      const r = await run(id);
      this._state.className = 'jp-mv-remote-state jp-mv-remote-done';
      this._state.textContent = r.summary;
      this._state.title = [...r.lines, ...r.notes].join('\n');
      Notification.success(r.summary, { autoClose: 6000 });
      for (const note of r.notes) {
        Notification.warning(note, { autoClose: 10000 });
      }
      if (r.op === 'pull' && r.versions.length) {
        Notification.info(`Pulled versions are untrusted, like an imported bundle: restoring pickled variables asks for trust.`, { autoClose: 8000 });
      }
      if (this._status && r.remote) {
        this.apply({ ...this._status, remote: r.remote, on_remote: r.on_remote }, this._path);
      }
    } catch (e) {
      const message = (e as Error).message;
      this._state.className = 'jp-mv-remote-state jp-mv-error';
      this._state.textContent = message;
      this._state.title = message;
      Notification.error(`Model versions: ${message}`, { autoClose: 10000 });
    } finally {
      clearInterval(timer);
      this._busy = false;
      this.draw();
      this.app.commands.notifyCommandChanged(PUSH);
      this.app.commands.notifyCommandChanged(PULL);
      void this.panel.refresh();
    }
  }

  private _status: api.IRemoteStatus | null = null;
  private _path: string | null = null;
  private _on = new Set<string>();
  private _busy = false;
  private readonly _bar: HTMLElement;
  private readonly _where: HTMLElement;
  private readonly _state: HTMLElement;
  private readonly _push: HTMLButtonElement;
  private readonly _pull: HTMLButtonElement;
}

/** " · 12.3 MB of 1.07 GB · 45.1 MB/s · ETA 20 s": a transfer's progress as the server reports it. */
export function progressText(p: { done: number; total: number; rate: number; eta?: number | null }): string {
  const parts = [`${humanBytes(p.done)}${p.total ? ` of ${humanBytes(p.total)}` : ''}`];
  if (p.rate > 0) {
    parts.push(`${humanBytes(p.rate)}/s`);
  }
  if (typeof p.eta === 'number' && p.done < p.total) {
    parts.push(`ETA ${p.eta < 90 ? `${Math.ceil(p.eta)} s` : `${Math.round(p.eta / 60)} min`}`);
  }
  return ' · ' + parts.join(' · ');
}
