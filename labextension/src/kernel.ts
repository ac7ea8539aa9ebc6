// Talking to the notebook's kernel: tell it which notebook it runs, run jupyter_mv magics.
import { Notification } from '@jupyterlab/apputils';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';

/** A Python string literal (JSON strings are valid Python literals). */
export function pyString(s: string): string {
  return JSON.stringify(s);
}

/**
 * One argument of a jupyter_mv line magic that the magic reads back as exactly `s`, whatever it holds
 * (quotes, $, braces, #, backslashes, newlines, any unicode).
 *
 * The magics (jupyter_mv/magics.py) cut a trailing `#` comment, expand `$name` / `{expr}` with IPython's
 * DollarFormatter, then split the line with POSIX shell quoting. So `s` goes in single quotes (literal
 * there; `'` itself as `'"'"'`), and every character the expansion or IPython's line handling would
 * touch -- `$`, `{`, `}`, `\`, control characters and line breaks (a magic is one line: Python's
 * splitlines() also breaks at U+2028/9, U+0085, U+001C-1E) -- is written as the field `{'%c'%N}`, which
 * the expansion turns back into that one character inside the quotes. The field evaluates a literal (no
 * name the user could have shadowed), and its quotes pair up, so no `#` of `s` ever stands outside quotes.
 */
export function magicArg(s: string): string {
  let out = "'";
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (ch === "'") {
      out += `'"'"'`;
    } else if (needsField(ch, code)) {
      out += `{'%c'%${code}}`;
    } else {
      out += ch;
    }
  }
  return out + "'";
}

/** Characters magicArg writes as an expansion field: see there. */
function needsField(ch: string, code: number): boolean {
  return (
    '${}\\'.includes(ch) ||
    code < 0x20 || // control characters, \n and \r among them
    (code >= 0x7f && code <= 0x9f) || // DEL and C1 controls (U+0085 breaks lines)
    code === 0x2028 || code === 0x2029 || // line and paragraph separators
    (code >= 0xd800 && code <= 0xdfff) // a lone surrogate: no UTF-8 for the kernel's source
  );
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

/** Does `panel` have a kernel (running or starting)? If not, say what `action` needs and return false:
 * asked before any dialog, so the user is not walked through choices that end in "no kernel". */
export function haveKernel(panel: NotebookPanel, action: string): boolean {
  if (panel.sessionContext.session?.kernel) {
    return true;
  }
  Notification.warning(`${action} needs the notebook's kernel, and it has none running: start one (Kernel menu → Restart Kernel, or pick a kernel) and try again.`, { autoClose: 8000 });
  return false;
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

/**
 * What needs trust, when `errorText` (a failed %mv_restore) is the refusal to unpickle a version made
 * elsewhere (restore.check_trust: "... restoring x would unpickle T; pass --trust ..."); else null.
 */
export function untrustedReason(errorText: string): string | null {
  const m = /^(?:UsageError: )?(?:%mv_restore: )?(.*?); pass --trust\b/s.exec(errorText);
  return m ? m[1] : null;
}

/** The %mv_snapshot line for a message typed by the user. */
export function snapshotLine(message: string): string {
  return message ? `%mv_snapshot -m ${magicArg(message)}` : '%mv_snapshot';
}
