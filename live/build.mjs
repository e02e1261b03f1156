// Builds the classroom page into dist/: `iframe/live` (the HTML, served as text/html under that
// exact key) and `iframe/assets/classroom-<hash>.{js,css}` (immutable, long-cached).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist', 'iframe');
rmSync(join(here, 'dist'), { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src', 'classroom.js'), join(here, 'src', 'classroom.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  sourcemap: false,
  entryNames: '[name]-[hash]',
  outdir: join(out, 'assets'),
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((n) => n.endsWith('.js'));
const css = outputs.find((n) => n.endsWith('.css'));
const html = readFileSync(join(here, 'src', 'live.html'), 'utf8').replace('__JS__', js).replace('__CSS__', css);
writeFileSync(join(out, 'live'), html);
console.log(JSON.stringify({ html: 'dist/iframe/live', js, css }));
