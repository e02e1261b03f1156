// A browser upload per the API's plan (POST /v1/cdn/videos): one presigned PUT, or S3 multipart
// parts of `partSize` bytes (the last one shorter) joined with their ETags. Plain, testable in node.
import { putWithProgress, request } from './api.js';

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
    const etag = await put(part.url, blob, {}, (n) => { sent.set(part.partNumber, n); report(); });
    if (!etag) throw new Error('The uploads bucket did not expose the ETag header (CORS): the upload cannot be joined.');
    parts.push({ partNumber: part.partNumber, etag });
  }
  await call('POST', `/v1/cdn/videos/${encodeURIComponent(video.videoId)}/upload/complete`, { parts });
}
