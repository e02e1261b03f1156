// Drives the Console in real headless Chromium against a deployed stack, as a school's staff would.
// Usage: node console/test/drive.mjs '<json>' with
//   {url, owner: {email, password}, viewer: {email, password}, artifacts, video: {path, title},
//    bigVideo: {path, title}, kbName, question, voiceWav, imagePng, webhookId, roomId, studentUid, keyName, teamUser, timeoutMs}
// Prints one JSON line: what each step saw (the pytest side asserts on it). Every page is screenshot
// into `artifacts` and checked with axe-core (serious and critical violations are reported).
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const opts = JSON.parse(process.argv[2]);
const T = opts.timeoutMs || 30000;
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream', '--autoplay-policy=no-user-gesture-required'];
const OWNER_PAGES = ['overview', 'classes', 'videos', 'playground', 'kbs', 'webhooks', 'keys', 'team', 'settings'];
const result = { pages: {}, viewer: {}, axe: {}, console: [], failedRequests: [], firstLoadScripts: [] };

// the fake microphone says what this WAV says, once (a voice question)
if (opts.voiceWav) FLAGS.push(`--use-file-for-fake-audio-capture=${opts.voiceWav}%noloop`);
const browser = await chromium.launch({ executablePath: opts.chromium || '/usr/bin/chromium', args: FLAGS });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.on('dialog', (d) => d.accept()); // the Console's confirmations of destructive actions
  page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text().slice(0, 300)); });
  page.on('response', (r) => { if (r.status() >= 500) result.failedRequests.push(`${r.status()} ${r.url()}`); });
  const scripts = [];
  page.on('request', (r) => { if (r.resourceType() === 'script') scripts.push(new URL(r.url()).pathname.split('/').pop()); });

  const settle = async () => {
    // every load of the page has ended: no "Loading …" status left
    await page.waitForFunction(() => ![...document.querySelectorAll('[role=status]')].some((e) => /Loading/.test(e.textContent)), null, { timeout: T });
    // and every chart is drawn (uPlot arrives in a chunk of its own)
    await page.waitForFunction(() => [...document.querySelectorAll('figure.chart')].every((f) => f.querySelector('canvas')), null, { timeout: T });
  };
  const axe = async (name) => {
    await page.addScriptTag({ path: AXE });
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    result.axe[name] = found;
  };
  // secrets shown once stay out of the artifacts: masked in every screenshot
  const shot = (name) => page.screenshot({
    path: join(opts.artifacts, `console-${name}.png`), fullPage: true, mask: [page.locator('[data-secret]')],
  });
  const go = async (hash) => {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForFunction((h) => location.hash === h, hash);
    await page.waitForSelector('main h1', { timeout: T });
    await settle();
  };
  const signIn = async (who) => {
    await page.fill('input[name=email]', who.email);
    await page.fill('input[name=password]', who.password);
    await page.click('form.signin button[type=submit]');
    await page.waitForSelector('[data-testid=whoami]', { timeout: T });
  };
  const visit = async (name, hash, prefix = '') => {
    await go(hash);
    const seen = await page.evaluate(() => ({
      title: document.querySelector('main h1').textContent,
      errors: [...document.querySelectorAll('main .error')].map((e) => e.textContent).filter(Boolean),
      destructive: [...document.querySelectorAll('main button.danger')].map((b) => b.textContent),
      buttons: [...document.querySelectorAll('main button')].map((b) => b.textContent),
      forms: [...document.querySelectorAll('main form')].filter((f) => f.querySelector('button[type=submit]'))
        .map((f) => f.getAttribute('aria-label')), // forms that can write
      empty: [...document.querySelectorAll('main .empty')].map((e) => e.textContent),
      chart: [...document.querySelectorAll('main figure.chart')].map((f) => ({
        series: f.dataset.series.split(','), drawn: Boolean(f.querySelector('canvas')) })),
    }));
    await shot(prefix + name);
    await axe(prefix + name);
    return seen;
  };

  // sign-in page: what the first paint loads
  await page.goto(opts.url);
  await page.waitForSelector('form.signin', { timeout: T });
  result.firstLoadScripts = [...new Set(scripts)];
  await shot('signin');
  await axe('signin');
  await signIn(opts.owner);
  result.whoami = await page.textContent('[data-testid=whoami]');

  for (const name of OWNER_PAGES) result.pages[name] = await visit(name, `#/${name}`);
  if (opts.roomId) result.pages.room = await visit('room', `#/classes/${encodeURIComponent(opts.roomId)}`);
  if (opts.webhookId) result.pages.webhook = await visit('webhook', `#/webhooks/${encodeURIComponent(opts.webhookId)}`);

  // a live class: mute a student's microphone, make them a moderator, remove them
  if (opts.roomId && opts.studentUid) {
    await go(`#/classes/${encodeURIComponent(opts.roomId)}`);
    const row = `tr:has(.mono:text-is("${opts.studentUid}"))`;
    await page.waitForSelector(row, { timeout: 60000 }); // the room's status turns live, then the list loads
    await page.click(`${row} button:has-text("Mute")`);
    await page.waitForSelector(`${row} .chip:has-text("(muted)")`, { timeout: T });
    const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/participants/'), { timeout: T });
    await page.selectOption(`${row} select`, 'MODERATOR');
    result.participant = { muted: true, patchStatus: (await patched).status() };
    await shot('room-live');
    await axe('room-live');
    await page.click(`${row} button:has-text("Remove")`);
    await page.waitForSelector(row, { state: 'detached', timeout: T });
    result.participant.removed = true;
  }

  // phone width: the navigation folds behind a menu button that opens it
  await page.setViewportSize({ width: 390, height: 844 });
  await go('#/overview');
  const menu = await page.isVisible('button.menu');
  await page.click('button.menu');
  result.phone = { menu, navOpens: await page.isVisible('nav a[href="#/videos"]') };
  await shot('phone-overview');
  await axe('phone-overview');
  await page.setViewportSize({ width: 1280, height: 860 });

  // videos: upload a real file with a progress bar, watch it transcode, play it in the page
  if (opts.video) {
    await go('#/videos');
    await page.fill('input[name=title]', opts.video.title);
    await page.setInputFiles('input[name=file]', opts.video.path);
    await page.click('form[aria-label="Upload a video"] button[type=submit]');
    const sawProgress = await page.waitForSelector('[data-testid=upload-progress]', { timeout: 5000 }).then(() => true, () => false);
    await page.waitForSelector('[data-testid=upload-progress]', { state: 'detached', timeout: T * 2 });
    const uploadErrors = await page.$$eval('form[aria-label="Upload a video"] .error', (els) => els.map((e) => e.textContent));
    const row = `tr:has-text("${opts.video.title}")`;
    await page.waitForSelector(`${row} button:has-text("Play")`, { timeout: 240000 });
    await page.click(`${row} button:has-text("Play")`);
    await page.waitForSelector('[data-testid=player]', { timeout: T });
    await page.evaluate(() => document.querySelector('[data-testid=player]').play().catch(() => {}));
    const advanced = await page.waitForFunction(() => document.querySelector('[data-testid=player]').currentTime > 0.5, null, { timeout: 60000 })
      .then(() => true, () => false);
    result.video = {
      sawProgress, uploadErrors, advanced,
      currentTime: await page.evaluate(() => document.querySelector('[data-testid=player]').currentTime),
      status: await page.textContent(`${row} .badge`),
    };
    await shot('videos-playing');
  }

  // a large file goes up in multipart parts (each its own PUT), joined, transcoded and playable
  if (opts.bigVideo) {
    await go('#/videos');
    const puts = [];
    const onPut = (r) => { if (r.method() === 'PUT') puts.push(r.url()); };
    page.on('request', onPut);
    await page.fill('input[name=title]', opts.bigVideo.title);
    await page.setInputFiles('input[name=file]', opts.bigVideo.path);
    await page.click('form[aria-label="Upload a video"] button[type=submit]');
    const sawProgress = await page.waitForSelector('[data-testid=upload-progress]', { timeout: 5000 }).then(() => true, () => false);
    await page.waitForSelector('[data-testid=upload-progress]', { state: 'detached', timeout: 120000 });
    page.off('request', onPut);
    const row = `tr:has-text("${opts.bigVideo.title}")`;
    const playable = await page.waitForSelector(`${row} button:has-text("Play")`, { timeout: 240000 }).then(() => true, () => false);
    result.bigVideo = {
      sawProgress, playable, puts: puts.length, partNumbers: puts.map((u) => new URL(u).searchParams.get('partNumber')),
      uploadErrors: await page.$$eval('form[aria-label="Upload a video"] .error', (els) => els.map((e) => e.textContent)),
    };
  }

  // AI playground: chat with a knowledge base, the answer drawn from the NDJSON stream
  if (opts.kbName) {
    await go('#/playground');
    await page.check(`label:has-text("${opts.kbName}") input[type=checkbox]`);
    await page.fill('textarea[name=message]', opts.question);
    await page.click('form[aria-label="Ask the AI"] button[type=submit]');
    await page.waitForFunction(() => {
      const a = [...document.querySelectorAll('[data-testid=answer]')].pop();
      return a && a.textContent.length > 0 && !a.querySelector('.cursor');
    }, null, { timeout: 120000 });
    // the new chat joins the history list once its answer is kept
    await page.waitForSelector('aside li', { timeout: T }).catch(() => {});
    result.chat = await page.evaluate(() => ({
      answer: [...document.querySelectorAll('[data-testid=answer]')].pop().textContent,
      citations: document.querySelectorAll('[data-testid=citation]').length,
      errors: [...document.querySelectorAll('.turn .error')].map((e) => e.textContent),
      history: document.querySelectorAll('aside li').length,
    }));
    await shot('playground-answer');
  }

  // a voice question from the microphone with the answer spoken, then an image alone
  const lastAnswer = () => page.waitForFunction((n) => {
    const answers = [...document.querySelectorAll('[data-testid=answer]')];
    const a = answers[answers.length - 1];
    return answers.length > n && a.textContent.length > 0 && !a.querySelector('.cursor');
  }, 0, { timeout: 120000 });
  if (opts.voiceWav && opts.kbName) {
    await go('#/playground');
    await page.check(`label:has-text("${opts.kbName}") input[type=checkbox]`);
    await page.check('label:has-text("Speak the answer") input');
    await page.click('button:has-text("Ask by voice")');
    await page.waitForSelector('button:has-text("Stop recording")', { timeout: T });
    await page.waitForTimeout(3500); // the length of the recording: the WAV plays into it
    await page.click('button:has-text("Stop recording")');
    await page.waitForSelector('text=voice question ready', { timeout: T });
    await page.click('form[aria-label="Ask the AI"] button[type=submit]');
    await lastAnswer();
    await page.waitForSelector('[data-testid=spoken]', { timeout: T }).catch(() => {});
    result.voice = await page.evaluate(() => ({
      heard: [...document.querySelectorAll('.turn-user [data-testid=question]')].pop().textContent,
      answer: [...document.querySelectorAll('[data-testid=answer]')].pop().textContent,
      spokenChunks: Number(document.querySelector('[data-testid=spoken]')?.dataset.chunks || 0),
      errors: [...document.querySelectorAll('.turn .error, form .error')].map((e) => e.textContent),
    }));
    await shot('playground-voice');
  }
  if (opts.imagePng && opts.kbName) {
    await go('#/playground');
    await page.check(`label:has-text("${opts.kbName}") input[type=checkbox]`);
    await page.setInputFiles('form[aria-label="Ask the AI"] input[type=file]', opts.imagePng);
    await page.waitForSelector('[data-testid=image-ready]', { timeout: T });
    await page.click('form[aria-label="Ask the AI"] button[type=submit]');
    await lastAnswer();
    result.image = await page.evaluate(() => ({
      answer: [...document.querySelectorAll('[data-testid=answer]')].pop().textContent,
      errors: [...document.querySelectorAll('.turn .error, form .error')].map((e) => e.textContent),
    }));
  }

  // webhooks: send a test event, open its attempts, replay it
  if (opts.webhookId) {
    await go(`#/webhooks/${encodeURIComponent(opts.webhookId)}`);
    await page.click('button:has-text("Send test event")');
    await page.waitForSelector('tr[data-delivery]', { timeout: T });
    // the dispatcher delivers asynchronously (a pending delivery cannot be replayed): refresh until it finished
    const deadline = Date.now() + 90000;
    let status = '';
    while (Date.now() < deadline) {
      await page.click('button:has-text("Refresh")');
      await settle();
      status = (await page.textContent('tr[data-delivery] td:nth-child(2)')).trim();
      if (status === 'succeeded' || status === 'failed') break;
      await page.waitForTimeout(1000);
    }
    result.webhook = {
      deliveryId: await page.getAttribute('tr[data-delivery]', 'data-delivery'), status,
      attemptsBefore: Number(await page.textContent('tr[data-delivery] td:nth-child(3)')),
    };
    await page.click('tr[data-delivery] button:has-text("Attempts")');
    await page.waitForSelector('[data-testid=delivery-detail]', { timeout: T });
    await page.click('[data-testid=delivery-detail] button:has-text("Replay")');
    await page.waitForFunction(() => !document.querySelector('[data-testid=delivery-detail] button[aria-busy=true]'), null, { timeout: T });
    result.webhook.replayErrors = await page.$$eval('[data-testid=delivery-detail] .error', (els) => els.map((e) => e.textContent));
    await shot('webhook-delivery');
  }

  // API keys: issue (secret shown once), then the session expires mid-way: the re-login dialog
  // keeps what was typed and the retried request succeeds; revoke
  if (opts.keyName) {
    await go('#/keys');
    await page.fill('input[name=name]', opts.keyName);
    await page.click('form[aria-label="Issue an API key"] button[type=submit]');
    await page.waitForSelector('[data-secret]', { timeout: T });
    result.key = { secret: await page.inputValue('[data-secret]') };
    await shot('keys-issued');
    await page.click('.secret button:has-text("Done")');
    // a session that ended: the stored token no longer verifies
    await page.evaluate(() => {
      const k = 'verriflo.console.session';
      const s = JSON.parse(sessionStorage.getItem(k));
      sessionStorage.setItem(k, JSON.stringify({ ...s, token: `${s.token}x` }));
    });
    await page.fill('input[name=name]', `${opts.keyName} 2`);
    await page.click('form[aria-label="Issue an API key"] button[type=submit]');
    await page.waitForSelector('dialog.relogin[open]', { timeout: T });
    result.relogin = { dialog: true, typedKept: await page.inputValue('form[aria-label="Issue an API key"] input[name=name]') };
    await shot('relogin');
    await page.fill('dialog input[name=password]', opts.owner.password);
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('dialog.relogin', { state: 'detached', timeout: T });
    await page.waitForSelector('[data-secret]', { timeout: T });
    result.relogin.retried = (await page.inputValue('[data-secret]')).startsWith('vfk_');
    await page.click('.secret button:has-text("Done")');
    // the first key (its name exactly; the second one's name starts alike), once the list shows both
    await page.waitForSelector(`tr:has(td:text-is("${opts.keyName} 2"))`, { timeout: T });
    await page.click(`tr:has(td:text-is("${opts.keyName}")) button:has-text("Revoke")`);
    await page.waitForSelector(`tr:has(td:text-is("${opts.keyName}")):has-text("revoked")`, { timeout: T });
    result.key.revokedShown = true;
  }

  // settings: the low-credit mark and the tutor's defaults are saved and read back
  if (opts.settings) {
    await go('#/settings');
    await page.fill('form[aria-label="Billing limits"] input[name=lowCredits]', String(opts.settings.lowCredits));
    await page.click('form[aria-label="Billing limits"] button[type=submit]');
    await page.waitForSelector('form[aria-label="Billing limits"] .ok', { timeout: T });
    await page.selectOption('form[aria-label="AI tutor defaults"] select[name=mode]', 'hints');
    await page.fill('form[aria-label="AI tutor defaults"] input[name=topic]', opts.settings.topic);
    await page.click('form[aria-label="AI tutor defaults"] button[type=submit]');
    await page.waitForSelector('form[aria-label="AI tutor defaults"] .ok', { timeout: T });
    await go('#/overview');
    await go('#/settings');
    result.settings = {
      lowCredits: Number(await page.inputValue('form[aria-label="Billing limits"] input[name=lowCredits]')),
      mode: await page.inputValue('form[aria-label="AI tutor defaults"] select[name=mode]'),
      topic: await page.inputValue('form[aria-label="AI tutor defaults"] input[name=topic]'),
      errors: await page.$$eval('main .error', (els) => els.map((e) => e.textContent)),
    };
  }

  // team: add a member, make them a viewer, remove them
  if (opts.teamUser) {
    await go('#/team');
    const form = 'form[aria-label="Add a user"]';
    await page.fill(`${form} input[name=name]`, 'Morgan Member');
    await page.fill(`${form} input[name=email]`, opts.teamUser.email);
    await page.selectOption(`${form} select[name=role]`, 'member');
    await page.fill(`${form} input[name=password]`, opts.teamUser.password);
    await page.click(`${form} button[type=submit]`);
    const row = `tr:has(td:text-is("${opts.teamUser.email}"))`;
    await page.waitForSelector(row, { timeout: T });
    result.team = { added: true, role: await page.inputValue(`${row} select`) };
    const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/v1/team/users/'), { timeout: T });
    await page.selectOption(`${row} select`, 'viewer');
    result.team.patchStatus = (await patched).status();
    await go('#/overview');
    await go('#/team'); // read back from the API, not from the select just changed
    result.team.changedTo = await page.inputValue(`${row} select`);
    await shot('team-added');
    await page.click(`${row} button:has-text("Remove")`);
    await page.waitForSelector(row, { state: 'detached', timeout: T });
    result.team.removed = true;
  }

  // sign out (the session's token stops working), then a viewer: every page read-only (no
  // destructive control, no write forms)
  result.signedOutToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem('verriflo.console.session')).token);
  await page.click('header button:has-text("Sign out")');
  await page.waitForSelector('form.signin', { timeout: T });
  result.signedOut = true;
  if (opts.viewer) {
    await signIn(opts.viewer);
    result.viewer.whoami = await page.textContent('[data-testid=whoami]');
    result.viewer.nav = await page.$$eval('nav a', (els) => els.map((a) => a.textContent));
    for (const name of OWNER_PAGES.filter((n) => n !== 'keys')) result.viewer[name] = await visit(name, `#/${name}`, 'viewer-');
    if (opts.webhookId) result.viewer.webhook = await visit('webhook', `#/webhooks/${encodeURIComponent(opts.webhookId)}`, 'viewer-');
  }
} catch (err) {
  result.error = String(err.stack || err).slice(0, 3000);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
