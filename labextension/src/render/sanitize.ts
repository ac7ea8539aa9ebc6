// The widgets' output renderer: recorded HTML (and Markdown, which Python renders to HTML) and SVG go
// through DOMPurify (the npm package `dompurify`, bundled privately into the widgets' ES module: it
// touches no global); SVG is then shown as an <img>, where browsers run no script and load nothing;
// application/javascript and other mime types are never rendered (Python sends only the types below).
// No <style>, style="", id or name: an output must not restyle, cover or clobber the page. Links open
// in a new tab without an opener.
import DOMPurify from 'dompurify';
import { h } from './dom';
import { IOutputLike, joinText, OutputRenderer, textOutput } from './outputs';

const HTML_POLICY = {
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'id', 'name'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true as const
};
const SVG_POLICY = { USE_PROFILES: { svg: true, svgFilters: true }, FORBID_TAGS: ['a'] };

let hooked = false;
function purifier(): typeof DOMPurify {
  if (!hooked) {
    hooked = true;
    DOMPurify.addHook('afterSanitizeAttributes', node => {
      if (node.tagName === 'A' && node.hasAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer');
      }
    });
  }
  return DOMPurify;
}

export function safeHTML(html: string): DocumentFragment {
  return purifier().sanitize(String(html), HTML_POLICY);
}

/** A sanitized SVG document as an <img> data URL. The HTML parser DOMPurify uses drops the XML
 * prolog and may drop namespace declarations, which an SVG image needs, so they are put back. */
export function safeSVGImage(svgText: string): HTMLImageElement | null {
  let clean = String(purifier().sanitize(String(svgText), SVG_POLICY)).trim();
  if (!clean.startsWith('<svg')) {
    return null;
  }
  const head = clean.slice(0, clean.indexOf('>'));
  if (!/\sxmlns=/.test(head)) {
    clean = clean.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
  }
  if (clean.includes('xlink:') && !/\sxmlns:xlink=/.test(head)) {
    clean = clean.replace('<svg', '<svg xmlns:xlink="http://www.w3.org/1999/xlink"');
  }
  return h('img', { class: 'mv-out mv-img', src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(clean) });
}

/** One recorded output as the notebook rendered it: image, sanitized HTML/SVG, text, stream, error. */
export const sanitizedOutput: OutputRenderer = (o: IOutputLike) => {
  const t = o.output_type ?? o.type;
  if (t === 'stream' || t === 'error') {
    return textOutput(o);
  }
  const d = (o.data ?? {}) as Record<string, unknown>;
  for (const mime of ['image/png', 'image/jpeg', 'image/gif', 'image/webp']) {
    if (d[mime]) {
      return textOutput(o);
    }
  }
  if (d['image/svg+xml']) {
    const img = safeSVGImage(joinText(d['image/svg+xml']));
    if (img) {
      return img;
    }
  }
  if (d['text/html']) {
    return h('div', { class: 'mv-out mv-html' }, safeHTML(joinText(d['text/html'])));
  }
  return h('pre', { class: 'mv-out' }, joinText(d['text/markdown'] ?? d['text/plain'] ?? ''));
};
