// The classroom page: lobby, title, participants, chat, hand raise and controls as the join token
// and its customization allow, on livekit-client; tells the parent window what happens.
import { ConnectionErrorReason, DisconnectReason, Room, RoomEvent, Track } from 'livekit-client';
import { plain, renderRoster } from './roster.js';
import { session } from './session.js';
import { startTutor } from './tutor.js';

const $ = (id) => document.getElementById(id);
const CONNECT_TIMEOUT_MS = 15000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let room = null;
let current = null;
let handRaised = false;
const raisedHands = new Set();  // identities whose last 'hand' message said raised

function tellParent(message) {
  // The host app decides what to do; the page never learns the host's origin, so '*' is the target.
  if (window.parent && window.parent !== window) window.parent.postMessage(message, '*');
  window.dispatchEvent(new CustomEvent('verriflo:posted', { detail: message }));
}

const classroom = (action) => tellParent({ type: 'verriflo_classroom', action });

function show(id, visible) { $(id).hidden = !visible; }

function notice(kind, title, text, detail = '', retry = false) {
  document.body.dataset.state = kind;
  for (const id of ['lobby', 'stage', 'controls']) show(id, false);
  $('notice-title').textContent = title;
  $('notice-text').textContent = text;
  $('notice-detail').textContent = detail;
  show('retry', retry);
  show('notice', true);
}

const PROBLEMS = {
  missing: ['No classroom token', 'This classroom link is incomplete. Ask your school for a new link.'],
  invalid: ['Invalid classroom link', 'This classroom link is damaged. Ask your school for a new link.'],
  expired: ['This link has expired', 'Classroom links are valid for a limited time. Ask your school for a new link.'],
  domain: ['Open this class from your school', 'This classroom can only be opened inside the application that invited you.'],
};

function applyFlags(s) {
  const f = s.flags;
  document.documentElement.dataset.theme = f.theme;
  for (const [name, value] of Object.entries(f)) document.body.dataset[name] = String(value);
  document.body.dataset.role = s.role;
  show('header', f.showHeader);
  show('logo', f.showLogo);
  show('title', f.showClassTitle);
  $('title').textContent = s.title;
  $('me').textContent = f.showParticipantName ? s.name : '';
  $('role').textContent = s.role;
  $('lobby-title').textContent = f.showClassTitle ? s.title : 'Your class';
  $('lobby-name').textContent = s.name;
  $('lobby-role').textContent = s.role.toLowerCase();
  show('chat-panel', s.can.chat);
  show('mic', s.can.publish);
  show('camera', s.can.publish);
  show('screen', s.can.screenShare);
  show('hand', s.can.handRaise);
}

async function liveKitUrl() {
  const reply = await fetch('config.json', { cache: 'no-store' });
  if (!reply.ok) throw new Error(`classroom configuration missing (${reply.status})`);
  const config = await reply.json();
  if (!config.livekitUrl) throw new Error('classroom configuration has no livekitUrl');
  return config.livekitUrl;
}

// Moderation calls LiveKit's RoomService directly with the participant's own join token: LiveKit
// allows it only for a room admin of this very room, so the page needs no other credential.
async function moderate(action, identity, trackSid) {
  const base = (await liveKitUrl()).replace(/^ws/, 'http').replace(/\/$/, '');
  const method = action === 'remove' ? 'RemoveParticipant' : 'MutePublishedTrack';
  const body = { room: current.room, identity };
  if (action !== 'remove') Object.assign(body, { trackSid, muted: action === 'mute' });
  const reply = await fetch(`${base}/twirp/livekit.RoomService/${method}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${current.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(answer.msg || `LiveKit refused (${reply.status})`);
  return answer;
}

function moderationButtons(p) {
  const tools = document.createElement('span');
  tools.className = 'tools';
  const mic = p.getTrackPublication(Track.Source.Microphone);
  if (mic && !mic.isMuted) {
    const mute = document.createElement('button');
    mute.textContent = 'Mute';
    mute.onclick = () => moderate('mute', p.identity, mic.trackSid).catch((err) => addMessage('Class', err.message));
    tools.append(mute);
  }
  const remove = document.createElement('button');
  remove.textContent = 'Remove';
  remove.onclick = () => moderate('remove', p.identity).catch((err) => addMessage('Class', err.message));
  tools.append(remove);
  return tools;
}

function renderParticipants() {
  if (!room) return;
  const everyone = [room.localParticipant, ...room.remoteParticipants.values()];
  const count = renderRoster($('participants'), everyone, {
    showNames: current.flags.showParticipantName,
    showMic: current.flags.showMicIndicator,
    raised: current.flags.allowHandRaise ? raisedHands : new Set(),
    tools: current.can.manage ? (p) => (p === room.localParticipant ? null : moderationButtons(p)) : null,
  });
  $('count').textContent = String(count);
}

// Hand raises are data messages (topic 'hand', "1" or "0"): LiveKit sets their sender, and no one
// needs the right to rewrite their own metadata or attributes for them.
function announceHand(to) {
  const options = { reliable: true, topic: 'hand' };
  if (to) options.destinationIdentities = [to];
  return room.localParticipant.publishData(encoder.encode(handRaised ? '1' : '0'), options);
}

function onHand(participant, payload) {
  if (!participant) return;
  if (decoder.decode(payload) === '1') raisedHands.add(participant.identity);
  else raisedHands.delete(participant.identity);
  renderParticipants();
}

function addMessage(from, text) {
  const li = document.createElement('li');
  const who = document.createElement('strong');
  who.textContent = `${from}: `;
  li.append(who, document.createTextNode(text));
  $('messages').append(li);
  $('messages').scrollTop = $('messages').scrollHeight;
}

function onDisconnected(reason) {
  if (reason === DisconnectReason.ROOM_DELETED) {
    classroom('class_ended');
    notice('ended', 'The class has ended', 'Thank you for joining.');
  } else if (reason === DisconnectReason.PARTICIPANT_REMOVED) {
    classroom('participant_removed');
    notice('removed', 'You were removed from the class', 'A teacher removed you from this class.');
  } else if (reason === DisconnectReason.CLIENT_INITIATED) {
    classroom('participant_left');
    notice('left', 'You left the class', 'You can close this window.');
  } else {
    notice('disconnected', 'Connection lost', 'The connection to the class was lost.', '', true);
  }
}

async function connect() {
  document.body.dataset.state = 'connecting';
  show('lobby', false);
  show('notice', false);
  try {
    const url = await liveKitUrl();
    room = new Room({ adaptiveStream: true, dynacast: true });
    room
      .on(RoomEvent.ParticipantConnected, (p) => {
        if (handRaised) announceHand(p.identity).catch(() => {});
        renderParticipants();
      })
      .on(RoomEvent.ParticipantDisconnected, (p) => {
        raisedHands.delete(p.identity);
        renderParticipants();
      })
      .on(RoomEvent.TrackMuted, renderParticipants)
      .on(RoomEvent.TrackUnmuted, renderParticipants)
      .on(RoomEvent.TrackSubscribed, (track) => {
        if (track.kind === Track.Kind.Video || track.kind === Track.Kind.Audio) $('videos').append(track.attach());
        renderParticipants();
      })
      .on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()))
      .on(RoomEvent.RecordingStatusChanged, (on) => show('recording', on))
      .on(RoomEvent.DataReceived, (payload, participant, _kind, topic) => {
        if (topic === 'hand') onHand(participant, payload);
        const from = participant ? plain(participant.name) || plain(participant.identity) : 'Class';
        if (topic === 'chat' && current.can.chat) addMessage(from || 'Participant', decoder.decode(payload));
      })
      .on(RoomEvent.Disconnected, onDisconnected);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), CONNECT_TIMEOUT_MS));
    await Promise.race([room.connect(url, current.token), timeout]);
    document.body.dataset.state = 'connected';
    show('stage', true);
    show('controls', current.flags.needControlbar);
    show('recording', room.isRecording);
    renderParticipants();
  } catch (err) {
    if (room) {
      // A failed attempt is not the user leaving: drop the listeners before closing it.
      room.removeAllListeners();
      room.disconnect();
    }
    room = null;
    const detail = String(err && err.message ? err.message : err);
    if (err && err.reason === ConnectionErrorReason.NotAllowed) {
      notice('error', 'This classroom link was not accepted',
        'The class server refused this link (it may have expired or the class has ended). Ask your school for a new link.',
        detail, false);
    } else {
      notice('error', 'Cannot connect to the class',
        'The live class server could not be reached. Check your internet connection and try again.', detail, true);
    }
  }
}

function wireControls() {
  $('join').onclick = connect;
  $('retry').onclick = connect;
  $('close').onclick = () => classroom('close');
  $('leave').onclick = () => room && room.disconnect();
  $('fullscreen').onclick = () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen());
  document.addEventListener('fullscreenchange', () => {
    const on = Boolean(document.fullscreenElement);
    $('fullscreen').setAttribute('aria-pressed', String(on));
    tellParent({ type: 'verriflo_fullscreen', action: on ? 'enter' : 'exit', isFullscreen: on });
  });
  const toggle = (id, get, set) => {
    $(id).onclick = async () => {
      const on = !get();
      await set(on);
      $(id).setAttribute('aria-pressed', String(on));
    };
  };
  toggle('mic', () => room.localParticipant.isMicrophoneEnabled, (on) => room.localParticipant.setMicrophoneEnabled(on));
  toggle('camera', () => room.localParticipant.isCameraEnabled, (on) => room.localParticipant.setCameraEnabled(on));
  toggle('screen', () => room.localParticipant.isScreenShareEnabled, (on) => room.localParticipant.setScreenShareEnabled(on));
  $('hand').onclick = async () => {
    handRaised = !handRaised;
    await announceHand();
    if (handRaised) raisedHands.add(room.localParticipant.identity);
    else raisedHands.delete(room.localParticipant.identity);
    $('hand').textContent = handRaised ? 'Lower hand' : 'Raise hand';
    $('hand').setAttribute('aria-pressed', String(handRaised));
    renderParticipants();
  };
  $('chat-form').onsubmit = async (event) => {
    event.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text || !room) return;
    await room.localParticipant.publishData(encoder.encode(text), { reliable: true, topic: 'chat' });
    addMessage(current.name, text);
    $('chat-input').value = '';
  };
}

// The host page (and tests) can reach the same moderation the buttons use.
window.verrifloClassroom = { moderate: (...args) => moderate(...args) };

function start() {
  wireControls();
  current = session(window.location.search, Date.now() / 1000);
  // Keep the token out of the address bar (and so out of screenshots and history) once read.
  if (window.history.replaceState) window.history.replaceState(null, '', window.location.pathname);
  if (current.error) {
    notice('error', ...PROBLEMS[current.error]);
    return;
  }
  applyFlags(current);
  if (current.flags.validateDomain && window.parent === window) {
    notice('error', ...PROBLEMS.domain);
    return;
  }
  startTutor(current);  // the AI tutor panel (its own HTTP API: works even if media cannot connect)
  if (current.flags.showLobby) {
    document.body.dataset.state = 'lobby';
    show('lobby', true);
  } else {
    connect();
  }
}

start();
