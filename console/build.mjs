// Builds the Console into dist/console/: `index.html` (served at <page base>/console/) and
// content-hashed `assets/` (the entry, lazily loaded chunks for uPlot and hls.js, one stylesheet).
// Prints what the first paint loads: the entry's JS and its static imports, raw and gzipped.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist', 'console');
rmSync(join(here, 'dist'), { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: [join(here, 'src', 'main.jsx'), join(here, 'src', 'console.css')],
  bundle: true,
  splitting: true, // uPlot and hls.js become chunks loaded only by the pages that use them
  minify: true,
  format: 'esm',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: false,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  outdir: join(out, 'assets'),
  metafile: true,
  absWorkingDir: here, // metafile paths relative to console/, wherever npm runs from
  logLevel: 'warning',
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = result.metafile.outputs;
const entry = Object.keys(outputs).find((p) => outputs[p].entryPoint && outputs[p].entryPoint.endsWith('main.jsx'));
const css = Object.keys(outputs).find((p) => outputs[p].entryPoint && outputs[p].entryPoint.endsWith('console.css'));
// the first paint loads the entry and what it imports statically (chunks shared with lazy pages)
const firstLoad = new Set();
const walk = (path) => {
  if (firstLoad.has(path)) return;
  firstLoad.add(path);
  for (const imp of outputs[path].imports) if (imp.kind === 'import-statement' && !imp.external) walk(imp.path);
};
walk(entry);
const sizes = [...firstLoad].map((p) => {
  const bytes = readFileSync(join(here, p));
  return { file: basename(p), bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
});
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('__JS__', basename(entry)).replace('__CSS__', basename(css));
writeFileSync(join(out, 'index.html'), html);
const report = {
  html: 'dist/console/index.html', js: basename(entry), css: basename(css), firstLoad: sizes,
  firstLoadGzipBytes: sizes.reduce((a, s) => a + s.gzip, 0),
  lazy: Object.keys(outputs).filter((p) => p.endsWith('.js') && !firstLoad.has(p)).map((p) => basename(p)),
};
writeFileSync(join(here, 'dist', 'build.json'), JSON.stringify(report, null, 2));
console.log(JSON.stringify(report));
