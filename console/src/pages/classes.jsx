// Classes: the org's rooms (live now and past) and one room's detail: who is in it now (mute,
// remove, change role), its status and summary, the tutor's usage, class summary and top
// questions, and its recordings (download, and play the HLS version in the page).
import { useCallback, useState } from 'preact/hooks';
import { qs, request } from '../api.js';
import { HlsPlayer } from '../player.jsx';
import { Action, Badge, Empty, fmt, Loaded, Page, Table, useCan, useLoad, usePoll } from '../ui.jsx';

const ROLES = ['TEACHER', 'MODERATOR', 'STUDENT', 'ADMIN'];
const trackName = (t) => String(t.source || t.type || 'track').toLowerCase().replace(/_/g, ' ');
const enc = encodeURIComponent;

export function Classes() {
  const [status, setStatus] = useState('');
  const [pages, setPages] = useState([]); // rooms of "Load more"
  const first = useLoad(() => request('GET', `/v1/rooms${qs({ status, limit: 25 })}`), [status]);
  const [cursor, setCursor] = useState(undefined);
  const next = cursor === undefined ? first.data && first.data.nextCursor : cursor;
  const more = async () => {
    const data = await request('GET', `/v1/rooms${qs({ status, limit: 25, cursor: next })}`);
    setPages((p) => [...p, ...data.rooms]);
    setCursor(data.nextCursor);
  };
  const filter = (e) => { setStatus(e.target.value); setPages([]); setCursor(undefined); };
  return (
    <Page title="Classes" actions={
      <label class="inline">Show <select value={status} onChange={filter}>
        <option value="">all classes</option><option value="live">live now</option><option value="finished">finished</option>
      </select></label>}>
      <Loaded state={first} what="classes">{(data) => (
        <>
          <Table caption="Classes" head={['Class', 'Status', 'Started', 'Now', 'Participants', 'Credits', 'Recordings']}
            empty={<Empty title="No classes yet.">Create a room with <code>POST /v1/room/create</code> from your product; it shows here once it exists.</Empty>}
            rows={[...data.rooms, ...pages].map((r) => (
              <tr key={r.roomId}>
                <td><a href={`#/classes/${enc(r.roomId)}`}>{r.title || r.roomId}</a><div class="muted mono">{r.roomId}</div></td>
                <td><Badge value={r.status} /></td><td>{fmt.date(r.startedAt || r.createdAt)}</td>
                <td>{r.participantsNow}</td><td>{r.totalParticipants}</td><td>{fmt.num(r.totalCredits)}</td><td>{r.recordings}</td>
              </tr>
            ))} />
          {next && <Action run={more}>Load more</Action>}
        </>
      )}</Loaded>
    </Page>
  );
}

function Participants({ roomId, live }) {
  if (!live) {
    return (
      <section aria-labelledby="people"><h2 id="people">Participants now</h2>
        <Empty title="The class is not live.">Nobody is connected; the summary below says who came.</Empty>
      </section>
    );
  }
  return <LiveParticipants roomId={roomId} />;
}

function LiveParticipants({ roomId }) {
  const can = useCan();
  const list = useLoad(() => request('GET', `/v1/room/${enc(roomId)}/participants`), [roomId]);
  const refresh = useCallback(() => list.reload(), [list.reload]);
  const ended = list.error && list.error.status === 410; // the class ended while the page was open
  usePoll(refresh, 5000, !ended);
  const base = `/v1/room/${enc(roomId)}/participants`;
  return (
    <section aria-labelledby="people"><h2 id="people">Participants now</h2>
      {ended ? <Empty title="The class has ended.">Nobody is connected any more.</Empty> : <Loaded state={list} what="participants">{(data) => (
        <Table caption="Participants" head={['Name', 'Role', 'State', 'Tracks', ...(can.use ? ['Actions'] : [])]}
          empty={<Empty title="Nobody is in the class.">Participants appear here as they join.</Empty>}
          rows={data.participants.map((p) => (
            <tr key={p.uid}>
              <td>{p.name}<div class="muted mono">{p.uid}</div></td>
              <td>{can.use ? (
                <select aria-label={`Role of ${p.name}`} value={p.role || ''} onChange={async (e) => {
                  try { await request('PATCH', `${base}/${enc(p.uid)}`, { role: e.target.value }); } catch (err) { alert(err.message); }
                  list.reload();
                }}>{ROLES.map((r) => <option value={r}>{r}</option>)}</select>) : p.role}</td>
              <td>{p.state}</td>
              <td>{p.tracks.map((t) => <span class="chip">{trackName(t)}{t.muted ? ' (muted)' : ''}</span>)}</td>
              {can.use && <td class="row">
                {p.tracks.filter((t) => !t.muted).map((t) => (
                  <Action label={`Mute ${trackName(t)} of ${p.name}`} onDone={list.reload}
                    run={() => request('POST', `${base}/${enc(p.uid)}/mute`, { trackSid: t.sid, muted: true })}>Mute {trackName(t)}</Action>
                ))}
                <Action danger confirm={`Remove ${p.name} from the class?`} onDone={list.reload}
                  run={() => request('DELETE', `${base}/${enc(p.uid)}`)}>Remove</Action>
              </td>}
            </tr>
          ))} />
      )}</Loaded>}
    </section>
  );
}

function Recordings({ roomId }) {
  const recs = useLoad(() => request('GET', `/v1/room/${enc(roomId)}/recording/list`), [roomId]);
  // the HLS versions of the recordings are the org's videos of kind "recording" made from this room
  const videos = useLoad(() => request('GET', '/v1/cdn/videos?limit=100'), []);
  const [playing, setPlaying] = useState(null);
  const play = async (videoId) => setPlaying({ videoId, ...(await request('GET', `/v1/cdn/videos/${enc(videoId)}/url`)) });
  const download = async (egressId) => {
    const link = await request('GET', `/v1/room/${enc(roomId)}/recording/${enc(egressId)}/download`);
    window.open(link.url, '_blank', 'noopener');
  };
  // recordings that name their video (videoId, videoStatus) are played from their own row; the
  // room's other videos (an API that lists recordings without them) from the list below the table
  const named = new Set((recs.data ? recs.data.recordings : []).map((r) => r.videoId).filter(Boolean));
  const hls = (videos.data ? videos.data.videos : []).filter((v) => v.roomId === roomId && !named.has(v.videoId));
  return (
    <section aria-labelledby="recs"><h2 id="recs">Recordings</h2>
      <Loaded state={recs} what="recordings">{(data) => (
        <Table caption="Recordings" head={['Started', 'Duration', 'Size', 'Status', 'Available until', 'Download', 'Play']}
          empty={<Empty title="No recordings.">Start one with <code>POST /v1/room/{'{roomId}'}/recording/start</code> during the class.</Empty>}
          rows={data.recordings.map((r) => (
            <tr key={r.egressId}><td>{fmt.date(r.startedAt)}</td><td>{fmt.secs(r.duration)}</td><td>{fmt.bytes(r.size)}</td>
              <td><Badge value={r.status} /></td><td>{fmt.date(r.availableUntil)}</td>
              <td>{r.downloadable ? <Action run={() => download(r.egressId)}>Download</Action> : <span class="muted">not yet</span>}</td>
              <td>{r.videoId && r.videoStatus === 'completed'
                ? <Action label={`Play the recording started ${fmt.date(r.startedAt)}`} run={() => play(r.videoId)}>Play</Action>
                : <span class="muted">{r.videoStatus ? `video ${r.videoStatus}` : '—'}</span>}</td></tr>
          ))} />
      )}</Loaded>
      {hls.length > 0 && (
        <>
          <h3>Play in the page</h3>
          <ul class="plain">{hls.map((v) => (
            <li>{v.title} <Badge value={v.status} /> {v.playable && <Action run={() => play(v.videoId)}>Play</Action>}</li>
          ))}</ul>
        </>
      )}
      {playing && playing.url && <HlsPlayer src={playing.url} poster={playing.posterUrl} label="Recording" />}
    </section>
  );
}

export function Room({ roomId }) {
  const status = useLoad(() => request('GET', `/v1/room/${enc(roomId)}/status`), [roomId]);
  const summary = useLoad(() => request('GET', `/v1/room/${enc(roomId)}/summary`), [roomId]);
  const tutor = useLoad(() => request('GET', `/v1/ai-tutor/usage/${enc(roomId)}`), [roomId]);
  const classSummary = useLoad(() => request('GET', `/v1/ai-tutor/summary/${enc(roomId)}`), [roomId]);
  const s = status.data;
  const live = Boolean(s && s.isActive);
  const refreshStatus = useCallback(() => status.reload(), [status.reload]);
  usePoll(refreshStatus, 10000, true); // a class that starts or ends while the page is open
  return (
    <Page title={(s && s.title) || (summary.data && summary.data.roomName) || roomId}
      actions={<a href="#/classes">All classes</a>}>
      {!s && <Loaded state={status} what="the class">{() => null}</Loaded>}
      {s && (
        <div class="cards">
          <div class="card"><h2>Status</h2><p>{s.exists ? <Badge value={live ? 'live' : 'finished'} /> : 'Not found'}
            {s.isRecording && <> <Badge value="recording" /></>}</p>
            <p class="muted">{s.participantCount} connected · teacher {s.hasTeacher ? 'present' : 'absent'} · started {fmt.date(s.startedAt)}</p></div>
          {summary.data && <div class="card"><h2>Summary</h2>
            <p>{fmt.num(summary.data.totalCredits)} credits · {summary.data.totalParticipants} participants · average stay {fmt.secs(summary.data.avgStay)}</p>
            <p class="muted">{Object.entries(summary.data.creditsByService || {}).map(([k, v]) => `${k}: ${fmt.num(v)}`).join(' · ') || 'No credits used.'}</p></div>}
          {tutor.data && <div class="card"><h2>AI tutor usage</h2>
            <p>{tutor.data.interactions} questions from {tutor.data.students} students · {fmt.num(tutor.data.cost)} credits</p>
            <p class="muted">{tutor.data.totalTokens} tokens ({tutor.data.failedInteractions} failed)</p></div>}
        </div>
      )}
      {s && <Participants roomId={roomId} live={live} />}
      <section aria-labelledby="tutor-summary"><h2 id="tutor-summary">Class summary and top questions</h2>
        <Loaded state={classSummary} what="the class summary">{(d) => (
          d.state !== 'ready' ? <Empty title={d.state === 'class_in_progress' ? 'The class is still going.' : 'The summary is being written.'}>
            {d.message || 'It is written when the class ends; come back then.'}</Empty> : (
            <>
              <p class="prose">{d.summary}</p>
              {d.topQueries.length ? <ol>{d.topQueries.map((q) => <li><strong>{q.question}</strong> ({q.frequency}×)<div class="muted">{q.answer}</div></li>)}</ol>
                : <p class="muted">No questions were asked.</p>}
            </>)
        )}</Loaded>
      </section>
      <Recordings roomId={roomId} />
    </Page>
  );
}
