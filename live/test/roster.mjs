// Renders the classroom page's participant list (src/roster.js, bundled as the page bundles it) in
// real headless Chromium with the participants given, as livekit-client would hand them over.
// Usage: node live/test/roster.mjs '<json>' with {participants: [{identity, name, metadata,
// attributes, mic}], raised: [identity], showNames, showMic}. Prints one JSON line: each row's text,
// the elements inside the list (an injected one would show), and the page's errors.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const opts = JSON.parse(process.argv[2]);
const here = dirname(fileURLToPath(import.meta.url));
const bundle = await build({
  entryPoints: [join(here, '..', 'src', 'roster.js')],
  bundle: true,
  write: false,
  format: 'iife',
  globalName: 'roster',
  target: ['es2020'],
  logLevel: 'error',
});
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const browser = await chromium.launch({ executablePath: opts.chromium || '/usr/bin/chromium', args: FLAGS });
const result = { errors: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (err) => result.errors.push(String(err.message || err)));
  await page.setContent('<!doctype html><html><body><ul id="participants"></ul></body></html>');
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  Object.assign(result, await page.evaluate((o) => {
    // What livekit-client hands the page: plain fields plus getTrackPublication.
    const people = o.participants.map((p) => ({
      ...p,
      getTrackPublication: () => (p.mic ? { isMuted: false } : undefined),
    }));
    const list = document.getElementById('participants');
    const count = window.roster.renderRoster(list, people, {
      showNames: o.showNames !== false, showMic: o.showMic !== false, raised: new Set(o.raised || []), tools: null,
    });
    return {
      count,
      rows: [...list.children].map((li) => li.textContent),
      identities: [...list.children].map((li) => li.dataset.identity),
      elements: [...list.querySelectorAll('*')].map((el) => el.tagName.toLowerCase()),
      pwned: window.__pwned || null,
    };
  }, opts));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
