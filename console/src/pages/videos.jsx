// Videos: upload from the browser straight to the uploads bucket (one presigned PUT, or S3
// multipart parts for large files) with a progress bar, transcoding progress polled live, play
// (HLS in the page), poster, delete.
import { useCallback, useState } from 'preact/hooks';
import { request } from '../api.js';
import { HlsPlayer } from '../player.jsx';
import { MULTIPART_FROM, uploadFile } from '../upload.js';
import { Action, Badge, Empty, ErrorNote, Field, fmt, Loaded, Page, Table, useCan, useLoad, usePoll } from '../ui.jsx';

const enc = encodeURIComponent;

function Upload({ onUploaded }) {
  const [progress, setProgress] = useState(null); // {sent, total}
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const file = form.file.files[0];
    if (!file) { setError(new Error('Choose a video file first.')); return; }
    setError(null);
    setProgress({ sent: 0, total: file.size });
    try {
      const { video, upload } = await request('POST', '/v1/cdn/videos', {
        title: form.title.value.trim() || file.name, sizeBytes: file.size, contentType: file.type || 'video/mp4',
        multipart: file.size >= MULTIPART_FROM,
      });
      await uploadFile(video, upload, file, (sent) => setProgress({ sent, total: file.size }));
      form.reset();
      onUploaded(video);
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };
  return (
    <form class="form" onSubmit={submit} aria-label="Upload a video">
      <h2>Upload a video</h2>
      <div class="row wrap">
        <Field label="Title"><input name="title" maxLength={200} placeholder="Lesson 1: fractions" /></Field>
        <Field label="Video file"><input name="file" type="file" accept="video/*" required /></Field>
        <button type="submit" disabled={Boolean(progress)}>Upload</button>
      </div>
      {progress && (
        <div>
          <label for="upload-progress">Uploading {fmt.bytes(progress.sent)} of {fmt.bytes(progress.total)}</label>
          <progress id="upload-progress" data-testid="upload-progress" max={progress.total || 1} value={progress.sent} />
        </div>
      )}
      <ErrorNote error={error} />
    </form>
  );
}

export function Videos() {
  const can = useCan();
  const list = useLoad(() => request('GET', '/v1/cdn/videos?limit=50'));
  const [playing, setPlaying] = useState(null);
  const busy = Boolean(list.data && list.data.videos.some((v) => v.status === 'pending' || v.status === 'processing'));
  const refresh = useCallback(() => list.reload(), [list.reload]);
  usePoll(refresh, 3000, busy); // live transcoding progress while anything is still working
  const play = async (v) => setPlaying({ title: v.title, videoId: v.videoId, ...(await request('GET', `/v1/cdn/videos/${enc(v.videoId)}/url`)) });
  return (
    <Page title="Videos">
      {can.use && <Upload onUploaded={() => list.reload()} />}
      {playing && playing.url && (
        <section aria-label={`Playing ${playing.title}`}>
          <h2>{playing.title}</h2>
          <HlsPlayer src={playing.url} poster={playing.posterUrl} label={playing.title} />
          {playing.posterUrl && <p><a href={playing.posterUrl} target="_blank" rel="noopener">Poster image</a></p>}
        </section>
      )}
      <h2>Library</h2>
      <Loaded state={list} what="videos">{(data) => (
        <Table caption="Videos" head={['Poster', 'Title', 'Status', 'Duration', 'Size', 'Created', 'Actions']}
          empty={<Empty title="No videos yet.">{can.use ? 'Upload one above: it comes back as adaptive HLS.' : 'Videos your team uploads show here.'}</Empty>}
          rows={data.videos.map((v) => (
            <tr key={v.videoId} data-video={v.videoId}>
              <td><Poster video={v} /></td>
              <td>{v.title}<div class="muted mono">{v.videoId}</div></td>
              <td><Badge value={v.status} />{(v.status === 'processing' || v.status === 'pending') &&
                <progress max="100" value={v.progress} aria-label={`Transcoding ${v.title}`}>{v.progress}%</progress>}
                {v.status === 'failed' && <div class="error">{v.message}</div>}</td>
              <td>{fmt.secs(v.durationS)}</td><td>{fmt.bytes(v.sizeBytes)}</td><td>{fmt.date(v.createdAt)}</td>
              <td class="row">
                {v.playable && <Action label={`Play ${v.title}`} run={() => play(v)}>Play</Action>}
                {can.use && <Action danger label={`Delete ${v.title}`} confirm={`Delete "${v.title}" and all its media?`}
                  onDone={() => { if (playing && playing.videoId === v.videoId) setPlaying(null); list.reload(); }}
                  run={() => request('DELETE', `/v1/cdn/videos/${enc(v.videoId)}`)}>Delete</Action>}
              </td>
            </tr>
          ))} />
      )}</Loaded>
    </Page>
  );
}

function Poster({ video }) {
  const poster = useLoad(async () => (video.status === 'completed'
    ? (await request('GET', `/v1/cdn/videos/${enc(video.videoId)}/url`)).posterUrl : null), [video.videoId, video.status]);
  return poster.data ? <img class="poster" src={poster.data} alt={`Poster of ${video.title}`} loading="lazy" /> : <span class="poster none" aria-hidden="true" />;
}
