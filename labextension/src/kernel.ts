// Talking to the notebook's kernel: tell it which notebook it runs, run jupyter_mv magics.
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';

/** A Python string literal (JSON strings are valid Python literals). */
export function pyString(s: string): string {
  return JSON.stringify(s);
}

/** One argument of a line magic: IPython expands $name and {expr} first, then shlex splits. */
export function magicArg(s: string): string {
  const plain = s.replace(/\s*[\r\n]+\s*/g, ' ').replace(/\$/g, '$$$$').replace(/\{/g, '{{').replace(/\}/g, '}}');
  return "'" + plain.replace(/'/g, `'"'"'`) + "'";
}

/** The path the kernel should record versions under: absolute when the server root is known. */
export function kernelNotebookPath(serverPath: string): string {
  const root = PageConfig.getOption('serverRoot');
  if (root && (root.startsWith('/') || /^[A-Za-z]:/.test(root))) {
    return root.replace(/[\\/]+$/, '') + '/' + serverPath;
  }
  // JupyterLab starts the kernel in the notebook's directory
  return PathExt.basename(serverPath);
}

// makes the magics available (loads the extension in the kernel) without touching the user's names
const ENSURE_LOADED = "__import__('jupyter_mv.api').api.session()";

/** Silently tell the kernel its notebook; never bothers the user (no jupyter_mv there: nothing happens). */
export async function tellNotebook(panel: NotebookPanel): Promise<void> {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    return;
  }
  const path = kernelNotebookPath(panel.context.path);
  const code =
    'try:\n' +
    '    import jupyter_mv.api as _mv_api\n' +
    `    _mv_api.set_notebook(${pyString(path)})\n` +
    '    del _mv_api\n' +
    'except Exception:\n' +
    '    pass\n';
  try {
    const future = kernel.requestExecute({ code, silent: true, store_history: false, allow_stdin: false });
    await future.done;
  } catch {
    // a kernel that is not Python, or went away: not our business
  }
}

export interface IRunResult {
  ok: boolean;
  text: string; // what the magic printed (or the error line)
}

/** Run jupyter_mv magic lines in the notebook's kernel without recording them as a cell. */
export async function runMagic(panel: NotebookPanel, lines: string[]): Promise<IRunResult> {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    return { ok: false, text: 'The notebook has no running kernel.' };
  }
  const code = [ENSURE_LOADED, ...lines].join('\n');
  const future = kernel.requestExecute({ code, silent: true, store_history: false, allow_stdin: false });
  const parts: string[] = [];
  let error = '';
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const t = msg.header.msg_type;
    const c = msg.content as any;
    if (t === 'stream') {
      parts.push(c.text);
    } else if (t === 'error') {
      error = `${c.ename}: ${c.evalue}`;
    } else if ((t === 'display_data' || t === 'execute_result') && c.data?.['text/plain']) {
      parts.push(String(c.data['text/plain']) + '\n');
    }
  };
  const reply = await future.done;
  const content = reply?.content as any;
  if (content?.status === 'error') {
    return { ok: false, text: error || `${content.ename}: ${content.evalue}` };
  }
  return { ok: true, text: parts.join('').trim() };
}

/** The %mv_snapshot line for a message typed by the user. */
export function snapshotLine(message: string): string {
  return message ? `%mv_snapshot -m ${magicArg(message)}` : '%mv_snapshot';
}
