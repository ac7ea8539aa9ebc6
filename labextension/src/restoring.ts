// Putting a version's variables back into the notebook's kernel (%mv_restore), with the trust choice
// for a version made elsewhere: used by the Restore command, the code+data checkout and Resume.
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { magicArg, runMagic, tellNotebook, untrustedReason } from './kernel';

/** What a restore came to: 'restored' (maybe partly: see the notification), 'declined' (the user did
 * not trust the version), 'failed'. */
export type RestoreOutcome = 'restored' | 'declined' | 'failed';

/**
 * Run `%mv_restore <id>` in the notebook's kernel. A version made elsewhere whose variables need
 * unpickling is refused by the kernel; the user is then asked, naming what would be unpickled, and only
 * an explicit "Restore anyway" runs it again with --trust. The result is shown as a notification.
 */
export async function restoreVariables(nb: NotebookPanel, id: string): Promise<RestoreOutcome> {
  await nb.sessionContext.ready;
  await tellNotebook(nb);
  let result = await runMagic(nb, [`%mv_restore ${magicArg(id)}`]);
  const untrusted = result.ok ? null : untrustedReason(result.text);
  if (untrusted !== null) {
    // made elsewhere and needs unpickling: never trusted silently, the user decides here
    const trust = await showDialog({
      title: `Trust ${id}?`,
      body: `${untrusted}. Unpickling runs code its author chose, so nothing was restored. ` +
        'Restore anyway only if you trust its author.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Restore anyway (trust this version)' })]
    });
    if (!trust.button.accept) {
      Notification.info(`${id}: nothing restored.`, { autoClose: 4000 });
      return 'declined';
    }
    result = await runMagic(nb, [`%mv_restore ${magicArg(id)} --trust`]);
  }
  if (result.ok && result.text.includes('could not restore')) {
    // a partial restore: the others are back, each failure is a line with its reason
    Notification.warning(result.text, { autoClose: 8000 });
    return 'restored';
  }
  if (result.ok) {
    Notification.success(result.text || `Restored ${id}`, { autoClose: 4000 });
    return 'restored';
  }
  Notification.error(`Restore failed: ${result.text}`, { autoClose: 8000 });
  return 'failed';
}
