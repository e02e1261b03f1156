// HLS playback in the page: the browser's own player where it plays HLS (Safari), else hls.js,
// loaded only when a video is played so it stays out of the first load.
import { useEffect, useRef, useState } from 'preact/hooks';

export function HlsPlayer({ src, poster, label }) {
  const video = useRef(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let hls = null;
    let cancelled = false;
    const el = video.current;
    if (el.canPlayType('application/vnd.apple.mpegurl')) {
      el.src = src;
    } else {
      import('hls.js').then(({ default: Hls }) => {
        if (cancelled) return;
        if (!Hls.isSupported()) { setError('This browser cannot play HLS video.'); return; }
        hls = new Hls();
        hls.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) setError(`Playback failed: ${data.details}`); });
        hls.loadSource(src);
        hls.attachMedia(el);
      }).catch((err) => setError(String(err.message || err)));
    }
    return () => { cancelled = true; if (hls) hls.destroy(); };
  }, [src]);
  return (
    <div class="player">
      <video ref={video} controls muted playsInline poster={poster || undefined} aria-label={label} data-testid="player" />
      {error && <p class="error" role="alert">{error}</p>}
    </div>
  );
}
