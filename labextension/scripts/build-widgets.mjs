// Bundles the notebook widgets' ES modules (anywidget `_esm`) from the rendering layer the lab extension
// uses: src/widgets/{history,diff}.ts -> ../jupyter_mv/widgets/static/{history,diff}.js (one self-contained
// ES module each, DOMPurify inside, no globals), plus style/render.css -> static/widgets.css.
// Run by `npm run build` / `build:prod` (and so by `pip install`): the output is not committed.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', 'jupyter_mv', 'widgets', 'static');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { history: join(here, '..', 'src', 'widgets', 'history.ts'), diff: join(here, '..', 'src', 'widgets', 'diff.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: false, // readable in the browser's devtools; tests look for the sanitizer by name
  legalComments: 'inline', // DOMPurify's license stays in the bundle
  logLevel: 'warning'
});
copyFileSync(join(here, '..', 'style', 'render.css'), join(out, 'widgets.css'));
console.log(`wrote ${out}/{history,diff}.js and widgets.css`);
