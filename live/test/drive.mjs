// Drives the classroom page in real headless Chromium, embedded in an iframe like a host app does.
// Usage: node live/test/drive.mjs '<json>' with {url, screenshot, join, fullscreen, close, timeoutMs}.
// Prints one JSON line: what the page showed and every message it posted to its parent.
import { chromium } from 'playwright-core';

const opts = JSON.parse(process.argv[2]);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
const browser = await chromium.launch({ executablePath: opts.chromium || '/usr/bin/chromium', args: FLAGS });
const result = { states: [], messages: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
  await page.setContent(`<!doctype html><html><body style="margin:0">
    <script>window.__messages = []; addEventListener('message', (e) => window.__messages.push(e.data));</script>
    <iframe id="classroom" allow="camera; microphone; display-capture; fullscreen" style="border:0;width:100%;height:740px"
      src=${JSON.stringify(opts.url)}></iframe></body></html>`);
  let frame;
  if (opts.top) {  // opened as a page of its own, not embedded by a host app
    await page.goto(opts.url);
    frame = page.mainFrame();
  } else {
    frame = await (await page.waitForSelector('#classroom')).contentFrame();
  }
  const timeout = opts.timeoutMs || 20000;
  const settled = async (states) => {
    await frame.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
    result.states.push(await frame.evaluate(() => document.body.dataset.state));
  };
  await settled(['lobby', 'error', 'connected']);
  const snapshot = () => frame.evaluate(() => {
    const visible = (id) => { const el = document.getElementById(id); return Boolean(el && !el.hidden && el.offsetParent !== null); };
    const ids = ['header', 'logo', 'title', 'lobby', 'notice', 'stage', 'controls', 'chat-panel', 'mic', 'camera',
      'screen', 'hand', 'me', 'role', 'retry', 'close'];
    return {
      visible: Object.fromEntries(ids.map((id) => [id, visible(id)])),
      enabled: Object.fromEntries(ids.map((id) => [id, !document.getElementById(id).hidden])),
      text: { title: document.getElementById('title').textContent, me: document.getElementById('me').textContent,
        role: document.getElementById('role').textContent, lobbyTitle: document.getElementById('lobby-title').textContent,
        noticeTitle: document.getElementById('notice-title').textContent,
        noticeText: document.getElementById('notice-text').textContent },
      data: { ...document.body.dataset }, theme: document.documentElement.dataset.theme,
      location: window.location.href,
    };
  });
  result.first = await snapshot();
  if (opts.join && result.first.visible.lobby) {
    await frame.click('#join');
    await settled(['error', 'connected']);
  }
  result.after = await snapshot();
  if (opts.evaluate) {
    result.evaluated = await frame.evaluate(async (code) => {
      try { return { ok: await (0, eval)(code) }; } catch (err) { return { error: String(err.message || err) }; }
    }, opts.evaluate);
  }
  let expected = 0;
  if (opts.fullscreen) {
    expected += 2;
    await frame.evaluate(() => document.documentElement.requestFullscreen());
    await page.waitForFunction(() => window.__messages.some((m) => m.action === 'enter'), null, { timeout: 5000 });
    await frame.evaluate(() => document.exitFullscreen());
    await frame.waitForFunction(() => !document.fullscreenElement, null, { timeout: 5000 });
  }
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
  if (opts.close && result.after.visible.close) {
    expected += 1;
    await frame.click('#close');
  }
  if (!opts.top) await page.waitForFunction((n) => window.__messages.length >= n, expected, { timeout: 5000 });
  result.messages = opts.top ? [] : await page.evaluate(() => window.__messages);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
