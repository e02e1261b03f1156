// Drives the tutor panel of the classroom page in real headless Chromium, embedded in an iframe.
// Usage: node live/test/tutor.mjs '<json>' with {url, ask, screenshot, toggle, timeoutMs}.
// Prints one JSON line: how the answer text grew while streaming, the sources, the exchanges shown.
import { chromium } from 'playwright-core';

const opts = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const browser = await chromium.launch({ executablePath: opts.chromium || '/usr/bin/chromium', args: FLAGS });
const result = { growth: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
  await page.setContent(`<!doctype html><html><body style="margin:0">
    <iframe id="classroom" allow="camera; microphone; fullscreen" style="border:0;width:100%;height:740px"
      src=${JSON.stringify(opts.url)}></iframe></body></html>`);
  const frame = await (await page.waitForSelector('#classroom')).contentFrame();
  const timeout = opts.timeoutMs || 30000;
  await frame.waitForSelector('#tutor-panel:not([hidden]) h3', { timeout });
  result.view = await frame.evaluate(() => document.getElementById('tutor-panel').dataset.view);
  if (opts.ask) {
    await frame.waitForFunction(() => !document.getElementById('tutor-ask').disabled, null, { timeout });
    await frame.fill('#tutor-input', opts.ask);
    const started = Date.now();
    await frame.click('#tutor-ask');
    // Sample the answer as it renders: each distinct text, with when it was seen.
    for (;;) {
      const seen = await frame.evaluate(() => {
        const a = document.getElementById('tutor-answer');
        return { text: a.textContent, state: a.dataset.state || '' };
      });
      const last = result.growth[result.growth.length - 1];
      if (!last || last.text !== seen.text) result.growth.push({ ms: Date.now() - started, ...seen });
      if (seen.state === 'done' || seen.state === 'failed') { result.final = seen; break; }
      if (Date.now() - started > timeout) throw new Error('the answer did not finish');
      await page.waitForTimeout(40);  // bounded by the deadline above
    }
    result.sources = await frame.$$eval('#tutor-sources li', (items) => items.map((i) => i.textContent));
    await frame.waitForFunction(() => document.querySelectorAll('#tutor-exchanges li').length > 0, null, { timeout });
  }
  if (opts.toggle) {
    await frame.waitForFunction(() => document.querySelectorAll('#tutor-exchanges li').length > 0, null, { timeout });
    await frame.click('#tutor-enabled');
    await frame.waitForFunction(() => document.getElementById('tutor-status').textContent.startsWith('Tutor off'), null, { timeout });
  }
  result.exchanges = await frame.$$eval('#tutor-exchanges li', (items) => items.map((i) => i.textContent));
  result.status = await frame.evaluate(() => document.getElementById('tutor-status').textContent);
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
