// What the page knows before connecting: the join token's claims (read, never verified here: the
// LiveKit server verifies it) and the customization flags with their defaults.

const ROLES = ['TEACHER', 'MODERATOR', 'STUDENT', 'ADMIN'];
const SHOWN_BY_DEFAULT = [
  'showLobby', 'showClassTitle', 'showLogo', 'showHeader', 'showParticipantName', 'showMicIndicator',
  'needChat', 'needControlbar', 'allowScreenShare', 'allowHandRaise', 'allowRecording',
];

export function decodeToken(token) {
  const part = (token || '').split('.')[1];
  if (!part) throw new Error('missing');
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
  const claims = JSON.parse(decodeURIComponent(escape(json)));
  let meta = {};
  try { meta = JSON.parse(claims.metadata || '{}'); } catch { meta = {}; }
  if (!meta || typeof meta !== 'object') meta = {};
  return { claims, meta };
}

export function flagsFrom(customization) {
  const given = customization || {};
  const flags = {};
  for (const name of SHOWN_BY_DEFAULT) flags[name] = given[name] !== false;
  flags.allowIngress = given.allowIngress === true;
  flags.validateDomain = given.validateDomain === true;
  flags.theme = ['light', 'dark', 'system'].includes(given.theme) ? given.theme : 'system';
  return flags;
}

export function session(search, nowSeconds) {
  const token = new URLSearchParams(search).get('token');
  if (!token) return { error: 'missing' };
  let decoded;
  try { decoded = decodeToken(token); } catch { return { error: 'invalid' }; }
  const { claims, meta } = decoded;
  if (claims.exp && claims.exp < nowSeconds) return { error: 'expired' };
  const video = claims.video || {};
  const role = ROLES.includes(meta.role) ? meta.role : 'STUDENT';
  const flags = flagsFrom(meta.customization);
  const sources = video.canPublishSources || [];
  return {
    token,
    identity: claims.sub,
    name: claims.name || claims.sub,
    role,
    title: meta.title || meta.roomId || 'Class',
    flags,
    can: {
      publish: video.canPublish === true,
      screenShare: video.canPublish === true && flags.allowScreenShare && sources.includes('screen_share'),
      data: video.canPublishData === true,
      // Hand raises are data messages (classroom.js), so they need the data channel only.
      handRaise: flags.allowHandRaise && role === 'STUDENT' && video.canPublishData === true,
      chat: flags.needChat,
      // Teachers, moderators and admins may mute and remove others (LiveKit checks roomAdmin too).
      manage: video.roomAdmin === true,
    },
    room: video.room,
  };
}
