// "Resume from vN (time ago)": when a notebook's kernel starts or restarts and the notebook has versions,
// the Model versions sidebar offers to put the newest version's variables back (as %mv_restore vN; a
// version made elsewhere asks for trust first, as Restore does). One click; the offer stays until used,
// dismissed, or the kernel starts again.
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import * as api from './api';
import { VersionsPanel } from './panel';
import { el, relTime } from './render/index';
import { restoreVariables } from './restoring';

const STARTING: Kernel.Status[] = ['starting', 'restarting', 'autorestarting'];

/** Does the notebook's kernel hold no variables of the user's yet (a fresh start: nothing to lose by
 * resuming)? False for a kernel that is not IPython or does not answer. */
async function holdsNoVariables(nb: NotebookPanel): Promise<boolean> {
  const kernel = nb.sessionContext.session?.kernel;
  if (!kernel) {
    return false;
  }
  let text = '';
  const future = kernel.requestExecute({
    code: "print(len([k for k in get_ipython().user_ns if not k.startswith('_') and k not in get_ipython().user_ns_hidden]))",
    silent: true, store_history: false, allow_stdin: false
  });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    if (msg.header.msg_type === 'stream') {
      text += (msg.content as any).text;
    }
  };
  try {
    await future.done;
  } catch {
    return false;
  }
  const n = parseInt(text.trim(), 10);
  return n === 0;
}

/** The offers of the open notebooks, shown for the one the sidebar follows. */
export class ResumeOffers {
  constructor(private readonly panel: VersionsPanel) {
    panel.changed.connect(() => this.render());
  }

  /** Follow one notebook's kernel: after each start or restart, offer its newest version. */
  watch(nb: NotebookPanel): void {
    const session = nb.sessionContext;
    let started = false;
    session.statusChanged.connect((_, status) => {
      if (STARTING.includes(status)) {
        started = true;
        this.offers.delete(nb);
        this.render();
      } else if (status === 'idle' && started) {
        started = false;
        void this.offer(nb);
      }
    });
    session.kernelChanged.connect((_, change) => {
      if (change.newValue) {
        started = true; // a new kernel: it starts with no variables
      }
    });
    nb.disposed.connect(() => {
      this.offers.delete(nb);
      this.render();
    });
  }

  private async offer(nb: NotebookPanel): Promise<void> {
    try {
      if (!(await holdsNoVariables(nb))) {
        return; // a kernel with variables (the page reloaded, already resumed): nothing to resume
      }
      const { versions } = await api.listVersions(nb.context.path);
      const newest = versions[versions.length - 1];
      if (!newest || nb.isDisposed) {
        return;
      }
      this.offers.set(nb, newest);
      this.render();
    } catch {
      // no server extension or no store: nothing to offer
    }
  }

  render(): void {
    const nb = this.panel.notebook;
    const v = nb ? this.offers.get(nb) : undefined;
    if (!nb || !v) {
      this.panel.setOffer(null);
      return;
    }
    const label = `Resume from ${v.id} (${relTime(v.created)})`;
    const go = el('button', {
      class: 'jp-mv-button jp-mv-action-resume',
      type: 'button',
      title: `The kernel started with no variables: put back ${v.id}'s (as %mv_restore ${v.id})` + (v.message ? ` — ${v.message}` : '')
    }, label);
    const dismiss = el('button', { class: 'jp-mv-button jp-mv-action-dismiss-resume', type: 'button', title: 'Dismiss' }, '×');
    go.addEventListener('click', async () => {
      go.setAttribute('disabled', '');
      const outcome = await restoreVariables(nb, v.id);
      go.removeAttribute('disabled');
      if (outcome === 'restored' && this.offers.get(nb) === v) {
        this.offers.delete(nb);
        this.render();
      }
    });
    dismiss.addEventListener('click', () => {
      this.offers.delete(nb);
      this.render();
    });
    this.panel.setOffer(el('div', { class: 'jp-mv-resume' }, go, dismiss));
  }

  private offers = new Map<NotebookPanel, api.IVersion>();
}
