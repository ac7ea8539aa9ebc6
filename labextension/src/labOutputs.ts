// The lab's output renderer for the rendering layer (./render): recorded outputs through JupyterLab's
// rendermime registry as untrusted models. The widgets use render/sanitize.ts (DOMPurify) instead.
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { el, IOutputLike, joinText as text, OutputRenderer, stripAnsi } from './render/index';

let registry: IRenderMimeRegistry | null = null;

/** The app's rendermime registry, given once by the plugin when it activates. Without it (never in
 * JupyterLab) outputs are shown as text and images only. */
export function setRenderMime(r: IRenderMimeRegistry | null): void {
  registry = r;
}

/**
 * One nbformat output as a DOM node.
 *
 * Recorded outputs are untrusted content (a version may come from a bundle someone sent), so the
 * sidebar and the diff tab always render them as *untrusted* models: the registry picks only a safe
 * renderer ('ensure': never application/javascript), and JupyterLab's sanitizer cleans HTML and
 * Markdown, as for an untrusted notebook. SVG, which JupyterLab refuses to show untrusted, is shown
 * as an <img> data URL, as JupyterLab itself shows a trusted SVG: an image runs no script.
 */
const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

export const labOutput: OutputRenderer = (o: IOutputLike): HTMLElement => {
  const t = o.output_type;
  if (t === 'stream') {
    return el('pre', { class: `jp-mv-output jp-mv-stream-${String(o.name)}` }, text(o.text));
  }
  if (t === 'error') {
    const tb = Array.isArray(o.traceback) ? stripAnsi((o.traceback as string[]).join('\n')) : '';
    return el('pre', { class: 'jp-mv-output jp-mv-error' }, tb || `${o.ename}: ${o.evalue}`);
  }
  const data = (o.data ?? {}) as Record<string, unknown>;
  if (registry) {
    const bundle: Record<string, unknown> = {};
    for (const [mime, value] of Object.entries(data)) {
      if (mime === WIDGET_VIEW) {
        continue; // a recorded widget view names a model in a kernel that no longer holds it: its text stands in
      }
      bundle[mime] = mime.endsWith('json') ? value : text(value);
    }
    const mime = registry.preferredMimeType(bundle as ReadonlyPartialJSONObject, 'ensure');
    if (mime && !(mime === 'text/plain' && data['image/svg+xml'])) {
      const host = el('div', { class: 'jp-mv-output jp-mv-rendered', 'data-mime-type': mime });
      const renderer = registry.createRenderer(mime);
      host.append(renderer.node);
      const model = new MimeModel({
        data: bundle as ReadonlyPartialJSONObject,
        metadata: (o.metadata ?? {}) as ReadonlyPartialJSONObject,
        trusted: false
      });
      renderer.renderModel(model).catch(e => {
        host.replaceChildren(el('pre', { class: 'jp-mv-output jp-mv-muted' }, `[${mime}: ${(e as Error).message}]`));
      });
      return host;
    }
  }
  for (const mime of ['image/png', 'image/jpeg']) {
    if (data[mime]) {
      return el('img', { class: 'jp-mv-output', src: `data:${mime};base64,${text(data[mime]).trim()}` });
    }
  }
  if (data['image/svg+xml']) {
    const svg = encodeURIComponent(text(data['image/svg+xml']));
    return el('img', { class: 'jp-mv-output', src: `data:image/svg+xml,${svg}` });
  }
  if (data['text/plain'] !== undefined) {
    return el('pre', { class: 'jp-mv-output' }, text(data['text/plain']));
  }
  const mimes = Object.keys(data).join(', ');
  return el('pre', { class: 'jp-mv-output jp-mv-muted' }, mimes ? `[${mimes}]` : `[${t}]`);
};
