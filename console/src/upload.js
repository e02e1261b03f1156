// A browser upload per the API's plan (POST /v1/cdn/videos): one presigned PUT, or S3 multipart
// parts of `partSize` bytes (the last one shorter) joined with their ETags. Plain, testable in node.
import { putWithProgress, request } from './api.js';

/** From this size the Console asks for parts (`multipart: true`): a failed part is sent again alone. */
export const MULTIPART_FROM = 32 * 1024 * 1024;
const PART_TRIES = 3;

/** A part's PUT, again after a network failure or a 5xx (not after a refusal: that would fail again). */
async function withRetries(send) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await send();
    } catch (err) {
      const transient = !err.status || err.status >= 500;
      if (!transient || attempt >= PART_TRIES) throw err;
    }
  }
}

/** Sends `file` per `upload`; onProgress(bytesSent). Resolves once every byte is stored (and joined). */
export async function uploadFile(video, upload, file, onProgress, put = putWithProgress, call = request) {
  if (upload.type === 'put') {
    await put(upload.url, file, upload.headers, onProgress);
    return;
  }
  const sent = new Map();
  const report = () => onProgress([...sent.values()].reduce((a, b) => a + b, 0));
  const parts = [];
  for (const part of upload.parts) { // one part at a time: steady progress, no memory spikes
    const start = (part.partNumber - 1) * upload.partSize;
    const blob = file.slice(start, Math.min(file.size, start + upload.partSize));
    const etag = await withRetries(() => put(part.url, blob, {}, (n) => { sent.set(part.partNumber, n); report(); }));
    if (!etag) throw new Error('The uploads bucket did not expose the ETag header (CORS): the upload cannot be joined.');
    parts.push({ partNumber: part.partNumber, etag });
  }
  await call('POST', `/v1/cdn/videos/${encodeURIComponent(video.videoId)}/upload/complete`, { parts });
}
