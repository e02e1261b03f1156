// AI playground: chat with the org's knowledge bases. The answer is drawn as the NDJSON stream
// arrives (text, then citations), with a voice question from the microphone, an attached image,
// the spoken answer, and the chat history (continue or delete a chat).
import { useEffect, useRef, useState } from 'preact/hooks';
import { readNdjson, request, send } from '../api.js';
import { Action, Empty, ErrorNote, Field, fileBase64, fmt, Loaded, Page, useCan, useLoad } from '../ui.jsx';

const enc = encodeURIComponent;

function blobBase64(blob) { return fileBase64(blob); }

/** Records from the microphone; stop() resolves to {base64, mimeType}. */
function useRecorder() {
  const [recording, setRecording] = useState(false);
  const state = useRef(null);
  const start = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream);
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.start();
    state.current = { recorder, stream, chunks };
    setRecording(true);
  };
  const stop = () => new Promise((resolve) => {
    const { recorder, stream, chunks } = state.current;
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      const blob = new Blob(chunks, { type: recorder.mimeType || 'audio/webm' });
      setRecording(false);
      resolve({ base64: await blobBase64(blob), mimeType: blob.type, size: blob.size });
    };
    recorder.stop();
  });
  return { recording, start, stop };
}

/** Plays audio chunks in order (as they arrive, or again later), one at a time. */
const queue = [];
let playing = false;
function playNext() {
  const item = queue.shift();
  if (!item) { playing = false; return; }
  playing = true;
  const audio = new Audio(`data:${item.mimeType};base64,${item.audio}`);
  audio.onended = playNext;
  audio.onerror = playNext;
  audio.play().catch(playNext);
}
function playAudio(...chunks) {
  queue.push(...chunks);
  if (!playing) playNext();
}

function Turn({ turn }) {
  return (
    <li class={`turn turn-${turn.role}`}>
      <span class="sr-only">{turn.role === 'user' ? 'You' : 'AI'}: </span>
      {turn.transcript && <p class="muted">Heard:</p>}
      <p class="prose" data-testid={turn.role === 'assistant' ? 'answer' : 'question'}>{turn.text}{turn.streaming && <span class="cursor" aria-hidden="true">▍</span>}</p>
      {turn.image && <img class="answer-image" src={`data:${turn.image.mimeType};base64,${turn.image.image}`} alt={turn.image.alt || ''} />}
      {turn.citations && turn.citations.length > 0 && (
        <details open><summary>Sources ({turn.citations.length})</summary>
          <ol class="citations">{turn.citations.map((c) => (
            <li data-testid="citation"><strong>{c.title || c.documentId}</strong> <span class="muted">(score {fmt.num(c.score)})</span>
              <div class="muted">{String(c.text || '').slice(0, 300)}</div></li>
          ))}</ol></details>
      )}
      {turn.audio && turn.audio.length > 0 && (
        <p><button type="button" class="ghost" data-testid="spoken" data-chunks={turn.audio.length}
          onClick={() => playAudio(...turn.audio)}>Play the spoken answer again</button></p>
      )}
      {turn.error && <p class="error" role="alert">{turn.error}</p>}
    </li>
  );
}

export function Playground() {
  const can = useCan();
  const kbs = useLoad(() => request('GET', '/v1/ai-agent/knowledge-bases'));
  const chats = useLoad(() => request('GET', '/v1/ai-agent/chats?limit=30'));
  const [chatId, setChatId] = useState(null);
  const [turns, setTurns] = useState([]);
  const [chosen, setChosen] = useState([]);
  const [image, setImage] = useState(null);
  const [voice, setVoice] = useState(null);
  const [speak, setSpeak] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const recorder = useRecorder();
  const log = useRef(null);
  useEffect(() => { if (log.current) log.current.scrollTop = log.current.scrollHeight; }, [turns]);

  const open = async (id) => {
    setError(null);
    try {
      const data = await request('GET', `/v1/ai-agent/chats/${enc(id)}`);
      setChatId(id);
      setTurns(data.messages.map((m) => ({ role: m.role, text: m.text })));
    } catch (err) { setError(err); }
  };
  const fresh = () => { setChatId(null); setTurns([]); };

  const ask = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const message = form.message.value.trim();
    if (!message && !voice && !image) { setError(new Error('Type a question, record one, or attach an image.')); return; }
    setError(null);
    setBusy(true);
    const body = {
      message: message || null, knowledgeBaseIds: chosen, chatId,
      responseModality: speak ? 'text+audio' : 'text',
      ...(image ? { image: image.base64, imageMimeType: image.mimeType } : {}),
      ...(voice ? { audio: voice.base64 } : {}),
    };
    const answer = { role: 'assistant', text: '', citations: [], streaming: true };
    setTurns((t) => [...t, { role: 'user', text: message || (voice ? '(voice question)' : '(image)') }, answer]);
    const update = (change) => setTurns((t) => {
      const copy = t.slice();
      copy[copy.length - 1] = { ...copy[copy.length - 1], ...change(copy[copy.length - 1]) };
      return copy;
    });
    try {
      const reply = await send('POST', '/v1/ai-agent/chat/stream', body);
      await readNdjson(reply, (ev) => {
        if (ev.type === 'chat') setChatId(ev.chatId);
        else if (ev.type === 'transcript') {
          // the spoken question, as the speech model heard it, replaces its placeholder
          setTurns((t) => { const c = t.slice(); c[c.length - 2] = { ...c[c.length - 2], transcript: true, text: ev.transcript }; return c; });
        }
        else if (ev.type === 'text') update((a) => ({ text: a.text + ev.text }));
        else if (ev.type === 'audio') { playAudio(ev); update((a) => ({ audio: [...(a.audio || []), ev] })); }
        else if (ev.type === 'citation') update((a) => ({ citations: [...a.citations, ev.citation] }));
        else if (ev.type === 'image') update(() => ({ image: ev }));
        else if (ev.type === 'error') update(() => ({ error: ev.message }));
      });
      form.message.value = ''; // only once the answer came: a failure leaves the question to retry
      setImage(null);
      setVoice(null);
      chats.reload();
    } catch (err) {
      update(() => ({ error: err.message }));
    } finally {
      update(() => ({ streaming: false }));
      setBusy(false);
    }
  };

  const toggleRecord = async () => {
    setError(null);
    try {
      if (recorder.recording) setVoice(await recorder.stop());
      else await recorder.start();
    } catch (err) { setError(new Error(`The microphone is not available: ${err.message}`)); }
  };

  if (!can.use) {
    return <Page title="AI playground"><Empty title="The playground asks the AI, which spends credits.">
      Your role is viewer: ask an owner or admin for the member role to try it.</Empty></Page>;
  }
  return (
    <Page title="AI playground" actions={<button type="button" class="ghost" onClick={fresh}>New chat</button>}>
      <div class="split">
        <aside aria-labelledby="history"><h2 id="history">Chat history</h2>
          <Loaded state={chats} what="chats">{(d) => (d.items.length ? (
            <ul class="plain">{d.items.map((c) => (
              <li class={c.chatId === chatId ? 'current' : ''}>
                <button type="button" class="link" onClick={() => open(c.chatId)}>{c.title || c.preview || c.chatId}</button>
                <Action danger label={`Delete chat ${c.title || c.chatId}`} confirm="Delete this chat's history?"
                  onDone={() => { if (c.chatId === chatId) fresh(); chats.reload(); }}
                  run={() => request('DELETE', `/v1/ai-agent/chats/${enc(c.chatId)}`)}>Delete</Action>
              </li>))}</ul>) : <p class="muted">No chats yet: ask something.</p>)}</Loaded>
        </aside>
        <div>
          <fieldset><legend>Knowledge bases to search</legend>
            <Loaded state={kbs} what="knowledge bases">{(d) => (d.knowledgeBases.length ? d.knowledgeBases.map((kb) => (
              <label class="inline"><input type="checkbox" checked={chosen.includes(kb.knowledgeBaseId)}
                onChange={(e) => setChosen(e.target.checked ? [...chosen, kb.knowledgeBaseId] : chosen.filter((x) => x !== kb.knowledgeBaseId))} />
                {kb.name}</label>))
              : <p class="muted">None yet: <a href="#/kbs">create a knowledge base</a> to ground answers in your material.</p>)}</Loaded>
          </fieldset>
          <ol class="chat" ref={log} aria-live="polite" aria-label="Conversation">
            {turns.length ? turns.map((t) => <Turn turn={t} />) : <li class="muted">Ask a question to start a chat.</li>}
          </ol>
          <form class="form" onSubmit={ask} aria-label="Ask the AI">
            <Field label="Your question"><textarea name="message" rows={3} placeholder="What does chapter 2 say about photosynthesis?" /></Field>
            <div class="row wrap">
              <label class="inline">Image <input type="file" accept="image/png,image/jpeg,image/webp,image/gif" onChange={async (e) => {
                const f = e.target.files[0];
                setImage(f ? { base64: await fileBase64(f), mimeType: f.type, name: f.name } : null);
              }} /></label>
              <button type="button" class="ghost" aria-pressed={recorder.recording ? 'true' : 'false'} onClick={toggleRecord}>
                {recorder.recording ? 'Stop recording' : voice ? 'Record again' : 'Ask by voice'}</button>
              {voice && <span class="chip">voice question ready ({fmt.bytes(voice.size)})</span>}
              {image && <span class="chip" data-testid="image-ready">image ready: {image.name}</span>}
              <label class="inline"><input type="checkbox" checked={speak} onChange={(e) => setSpeak(e.target.checked)} /> Speak the answer</label>
              <button type="submit" disabled={busy}>{busy ? 'Answering…' : 'Ask'}</button>
            </div>
            <ErrorNote error={error} />
          </form>
        </div>
      </div>
    </Page>
  );
}
