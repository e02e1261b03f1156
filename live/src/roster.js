// The participant list. Every field of a participant (identity, name, metadata, attributes) reaches
// this page from other people's clients through LiveKit, so each is untrusted text: shown with
// textContent only, a role only if it is one of ours, and one odd participant can never break the
// list for everyone. Hand raises are the data messages the page collected (LiveKit names their sender).
import { Track } from 'livekit-client';

const ROLES = ['TEACHER', 'MODERATOR', 'STUDENT', 'ADMIN'];

// A value as short plain text: '' unless it is a string.
export function plain(value, max = 100) {
  return typeof value === 'string' ? value.slice(0, max) : '';
}

// The role our API wrote into the participant's metadata, lower-cased for display; '' otherwise.
export function roleOf(participant) {
  let meta = null;
  try { meta = JSON.parse(plain(participant.metadata, 10000) || '{}'); } catch { meta = null; }
  const role = meta && typeof meta === 'object' ? meta.role : undefined;
  return ROLES.includes(role) ? role.toLowerCase() : '';
}

function micOn(participant) {
  try {
    const mic = participant.getTrackPublication(Track.Source.Microphone);
    return Boolean(mic && !mic.isMuted);
  } catch {
    return false;
  }
}

// One row: name and role, hand and mic marks, and the moderation tools (built by the caller).
export function participantRow(participant, { showNames, showMic, handRaised, tools }) {
  const li = document.createElement('li');
  li.dataset.identity = plain(participant.identity, 200);
  const name = showNames ? plain(participant.name) || plain(participant.identity) || 'Participant' : 'Participant';
  const role = roleOf(participant);
  const label = document.createElement('span');
  label.textContent = role ? `${name} · ${role}` : name;
  const marks = document.createElement('span');
  if (handRaised) marks.textContent += '✋';
  if (showMic) marks.textContent += micOn(participant) ? ' 🎤' : ' 🔇';
  li.append(label, marks);
  const extra = tools ? tools(participant) : null;
  if (extra) li.append(extra);
  return li;
}

// The whole list; a participant whose row cannot be built still gets a plain one.
export function renderRoster(list, participants, options) {
  const rows = participants.map((participant) => {
    try {
      return participantRow(participant, { ...options, handRaised: options.raised.has(participant.identity) });
    } catch {
      const li = document.createElement('li');
      li.textContent = 'Participant';
      return li;
    }
  });
  list.replaceChildren(...rows);
  return rows.length;
}
