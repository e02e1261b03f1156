// The Console's plain logic, in node (`npm --prefix console test`): the NDJSON reader keeps lines
// split across network chunks whole, query strings skip empty values, the chart's series follow the
// API's window and per-service rows, uploads send exact parts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qs, readNdjson } from '../src/api.js';
import { uploadFile } from '../src/upload.js';
import { dailySeries } from '../src/usage.js';

function streamed(chunks) {
  const body = new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
}

test('NDJSON events arrive one by one, whole, however the bytes were cut', async () => {
  const seen = [];
  await readNdjson(streamed(['{"type":"te', 'xt","text":"Mito"}\n{"type":"text","text":"chon', 'dria"}\n', '{"type":"done"}']),
    (e) => seen.push(e));
  assert.deepEqual(seen, [{ type: 'text', text: 'Mito' }, { type: 'text', text: 'chondria' }, { type: 'done' }]);
});

test('an error answer instead of a stream raises the envelope message', async () => {
  const reply = new Response(JSON.stringify({ success: false, message: 'Not enough credits.', error: 'INSUFFICIENT_CREDITS' }), { status: 402 });
  await assert.rejects(readNdjson(reply, () => {}), (err) => err.status === 402 && err.message === 'Not enough credits.');
});

test('query strings leave out empty values', () => {
  assert.equal(qs({ status: '', limit: 25, cursor: null, to: undefined }), '?limit=25');
  assert.equal(qs({}), '');
});

test('the chart covers the API window, one series per service when rows name one', () => {
  const window = { from: '2030-01-01T00:00:00Z', to: '2030-01-04T00:00:00Z' };
  const perService = dailySeries({ ...window, rows: [
    { key: '2030-01-02', services: { live: 2, ai_agent: 1.5 } },
    { key: '2030-01-03', byService: [{ service: 'live', credits: 4 }] },
    { key: '2029-12-31', services: { live: 99 } }, // outside the window
  ] });
  assert.deepEqual(perService.days, [1893456000, 1893542400, 1893628800]);
  assert.deepEqual(perService.series, { live: [0, 2, 4], ai_agent: [0, 1.5, 0] });
  const totals = dailySeries({ ...window, rows: [{ key: '2030-01-01', credits: 3 }] });
  assert.deepEqual(totals.series, { 'all services': [3, 0, 0] });
});

test('a multipart upload sends each part its exact bytes and joins them by ETag', async () => {
  const file = new Blob([new Uint8Array(20).map((_, i) => i)]);
  const sent = [];
  const put = async (url, blob, headers, onProgress) => {
    sent.push([url, [...new Uint8Array(await blob.arrayBuffer())]]);
    onProgress(blob.size);
    return `"etag-${url}"`;
  };
  const calls = [];
  const progress = [];
  const upload = { type: 'multipart', partSize: 8, parts: [1, 2, 3].map((n) => ({ partNumber: n, url: `p${n}` })) };
  await uploadFile({ videoId: 'vid_1' }, upload, file, (n) => progress.push(n), put, async (...args) => calls.push(args));
  assert.deepEqual(sent.map(([u, b]) => [u, b.length, b[0]]), [['p1', 8, 0], ['p2', 8, 8], ['p3', 4, 16]]);
  assert.deepEqual(progress, [8, 16, 20]);
  assert.deepEqual(calls, [['POST', '/v1/cdn/videos/vid_1/upload/complete',
    { parts: [{ partNumber: 1, etag: '"etag-p1"' }, { partNumber: 2, etag: '"etag-p2"' }, { partNumber: 3, etag: '"etag-p3"' }] }]]);
});

test('a single PUT upload sends the file with the signed headers', async () => {
  const file = new Blob(['abc']);
  const seen = [];
  await uploadFile({ videoId: 'v' }, { type: 'put', url: 'u', headers: { 'Content-Type': 'video/mp4' } }, file, () => {},
    async (...args) => { seen.push(args.slice(0, 3)); return ''; }, async () => { throw new Error('no complete call'); });
  assert.deepEqual(seen, [['u', file, { 'Content-Type': 'video/mp4' }]]);
});

test('a part that failed on the way is sent again; a refused one is not', async () => {
  const file = new Blob([new Uint8Array(4)]);
  const upload = { type: 'multipart', partSize: 8, parts: [{ partNumber: 1, url: 'p1' }] };
  let tries = 0;
  const flaky = async () => { tries += 1; if (tries < 3) throw Object.assign(new Error('network'), { status: 0 }); return '"e"'; };
  await uploadFile({ videoId: 'v' }, upload, file, () => {}, flaky, async () => {});
  assert.equal(tries, 3);
  let refusals = 0;
  const refused = async () => { refusals += 1; throw Object.assign(new Error('refused'), { status: 403 }); };
  await assert.rejects(uploadFile({ videoId: 'v' }, upload, file, () => {}, refused, async () => {}), /refused/);
  assert.equal(refusals, 1);
});

test('every table row made from a list is keyed by its item, so a refresh cannot move a button to another row', async () => {
  const { readdir, readFile } = await import('node:fs/promises');
  const dir = new URL('../src/pages/', import.meta.url);
  const unkeyed = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.jsx'))) {
    const source = await readFile(new URL(name, dir), 'utf8');
    // a row mapped from a list: `.map((x) => (` or `.map((x) => {` … `return (` followed by its <tr
    for (const m of source.matchAll(/\.map\(\([^)]*\) => [({][^]*?<tr\b([^>]*)>/g)) {
      if (!/\bkey=\{/.test(m[1])) unkeyed.push(`${name}: <tr${m[1]}>`);
    }
  }
  assert.deepEqual(unkeyed, []);
});
