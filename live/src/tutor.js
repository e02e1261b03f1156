// The AI tutor panel of the classroom page. Students ask by text or voice and watch the answer
// stream in with its sources; teachers see every exchange and the room's tutor switch and mode.
// It calls the tutor's classroom routes with the participant's join token (Authorization: Bearer),
// never an org key, and works whether or not the live media connected.

const $ = (id) => document.getElementById(id);
const TEACHING = ['TEACHER', 'MODERATOR', 'ADMIN'];
const MAX_RECORDING_MS = 30000;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

// Server-Sent Events from a fetch body: `data: <json>` blocks separated by blank lines, `[DONE]` last.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data === '[DONE]') return;
      if (data) onEvent(JSON.parse(data));
    }
    if (done) return;
  }
}

export function mountTutor({ token, role, apiUrl }) {
  const panel = $('tutor-panel');
  if (!panel || !apiUrl) return null;
  const base = apiUrl.replace(/\/$/, '');
  const teaching = TEACHING.includes(role);
  const headers = { Authorization: `Bearer ${token}` };
  panel.dataset.view = teaching ? 'teacher' : 'student';
  panel.hidden = false;

  const status = el('p', { id: 'tutor-status', className: 'tutor-status', role: 'status' });
  const list = el('ol', { id: 'tutor-exchanges', className: 'tutor-exchanges' });
  const body = el('div', { className: 'tutor-body' });
  panel.replaceChildren(el('h3', {}, 'AI tutor'), status, body, list);

  const say = (text, kind = '') => { status.textContent = text; status.dataset.kind = kind; };

  async function call(method, path, payload) {
    const reply = await fetch(`${base}${path}`, {
      method, headers: payload ? { ...headers, 'Content-Type': 'application/json' } : headers,
      body: payload ? JSON.stringify(payload) : undefined,
    });
    if (!reply.ok) {
      let message = `The tutor answered ${reply.status}.`;
      try { message = (await reply.json()).message || message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    return reply;
  }

  function exchangeItem(x) {
    const who = teaching ? `${x.studentUid}: ` : 'You: ';
    return el('li', { className: `tutor-exchange ${x.status}` },
      el('p', { className: 'q' }, el('strong', {}, who), x.question),
      el('p', { className: 'a' }, x.status === 'failed' ? '(the answer failed)' : x.answer));
  }

  let settings = { enabled: true, mode: 'explain' };
  async function refresh() {
    try {
      const state = (await (await call('GET', '/v1/ai-tutor/classroom/state')).json()).data;
      settings = state;
      panel.dataset.enabled = String(state.enabled);
      list.replaceChildren(...state.exchanges.map(exchangeItem));
      if (teaching) {
        $('tutor-enabled').checked = state.enabled;
        $('tutor-mode').value = state.mode;
        say(`${state.exchanges.length} exchange(s) in this class.`);
      } else if (!state.enabled) {
        say('The teacher has switched the tutor off for now.', 'off');
      }
      if (!teaching) $('tutor-ask').disabled = !state.enabled;
    } catch (err) {
      say(err.message, 'error');
    }
  }

  if (teaching) {
    const enabled = el('input', { type: 'checkbox', id: 'tutor-enabled', checked: true });
    const mode = el('select', { id: 'tutor-mode' },
      el('option', { value: 'explain' }, 'Explain fully'), el('option', { value: 'hints' }, 'Hints, step by step'));
    const save = async (change) => {
      try {
        const data = (await (await call('PUT', '/v1/ai-tutor/classroom/settings', change)).json()).data;
        panel.dataset.enabled = String(data.enabled);
        say(data.enabled ? `Tutor on (${data.mode === 'hints' ? 'hints' : 'full explanations'}).` : 'Tutor off.');
      } catch (err) {
        say(err.message, 'error');
        await refresh();
      }
    };
    enabled.onchange = () => save({ enabled: enabled.checked });
    mode.onchange = () => save({ mode: mode.value });
    const reload = el('button', { type: 'button', id: 'tutor-refresh' }, 'Refresh');
    reload.onclick = refresh;
    body.append(el('label', { className: 'tutor-switch' }, enabled, ' Tutor on for this room'),
      el('label', {}, 'Mode ', mode), reload);
  } else {
    const input = el('textarea', { id: 'tutor-input', rows: 2, maxLength: 2000, placeholder: 'Ask the tutor about this class' });
    const ask = el('button', { type: 'submit', id: 'tutor-ask', className: 'primary' }, 'Ask');
    const voice = el('button', { type: 'button', id: 'tutor-voice' }, 'Ask by voice');
    const answer = el('div', { id: 'tutor-answer', className: 'tutor-answer', 'aria-live': 'polite' });
    const sources = el('ol', { id: 'tutor-sources', className: 'tutor-sources' });
    const form = el('form', { id: 'tutor-form' }, input, el('div', { className: 'actions' }, ask, voice));
    body.append(form, answer, sources);

    async function send(payload) {
      ask.disabled = true;
      voice.disabled = true;
      answer.textContent = '';
      answer.dataset.state = 'waiting';
      sources.replaceChildren();
      say('The tutor is answering…');
      try {
        const reply = await call('POST', '/v1/ai-tutor/classroom/chat/stream', payload);
        answer.dataset.state = 'streaming';
        await readEvents(reply, (event) => {
          if (event.error) {
            answer.dataset.state = 'failed';
            say(event.message || 'The answer failed.', 'error');
          } else if (event.usage) {
            for (const s of event.sources || []) {
              const where = s.page ? `${s.title}, page ${s.page}` : s.title;
              // at the first hint levels the tutor shows where to look, not the passage itself
              sources.append(el('li', { className: `source ${s.kind}` }, el('strong', {}, where), s.text ? ` — ${s.text}` : ''));
            }
            if (!event.grounded) sources.append(el('li', { className: 'source none' }, 'Nothing in the class material matched.'));
          } else if (event.text) {
            answer.textContent += event.text;
          }
        });
        if (answer.dataset.state !== 'failed') {
          answer.dataset.state = 'done';
          say('');
        }
        input.value = '';
        await refresh();
      } catch (err) {
        answer.dataset.state = 'failed';
        say(err.message, 'error');
      } finally {
        ask.disabled = !settings.enabled;
        voice.disabled = false;
      }
    }

    form.onsubmit = (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text) send({ text });
    };

    let recorder = null;
    voice.onclick = async () => {
      if (recorder) { recorder.stop(); return; }
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        const chunks = [];
        recorder = new MediaRecorder(stream, { mimeType: 'audio/webm' });
        recorder.ondataavailable = (e) => chunks.push(e.data);
        recorder.onstop = async () => {
          stream.getTracks().forEach((t) => t.stop());
          recorder = null;
          voice.textContent = 'Ask by voice';
          const bytes = new Uint8Array(await new Blob(chunks, { type: 'audio/webm' }).arrayBuffer());
          let binary = '';
          for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          send({ audio: btoa(binary) });
        };
        recorder.start();
        voice.textContent = 'Stop and ask';
        setTimeout(() => recorder && recorder.stop(), MAX_RECORDING_MS);
      } catch (err) {
        say('The microphone is not available here; type your question instead.', 'error');
      }
    };
  }

  refresh();
  return { refresh };
}

// The page's entry point calls this once the join token is read: the API's URL comes from the
// page's config.json (`apiUrl`, written when the page is published), like LiveKit's URL.
export async function startTutor(current) {
  try {
    const reply = await fetch('config.json', { cache: 'no-store' });
    const config = reply.ok ? await reply.json() : {};
    return mountTutor({ token: current.token, role: current.role, apiUrl: config.apiUrl });
  } catch {
    return null;  // no configuration: the page works as before, without the tutor panel
  }
}
