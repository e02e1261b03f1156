// A stacked-free, per-service line chart of credits per day, drawn with uPlot (loaded lazily: only
// the overview needs it, and it stays out of the first load).
import { useEffect, useRef, useState } from 'preact/hooks';

const COLORS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

/** series: {name: [values per day]}, days: [epoch seconds]. */
export function CreditsChart({ days, series, label }) {
  const box = useRef(null);
  const [failed, setFailed] = useState(null);
  useEffect(() => {
    let plot = null;
    let observer = null;
    let cancelled = false;
    import('uplot').then(({ default: UPlot }) => {
      if (cancelled || !box.current) return;
      const names = Object.keys(series);
      const width = () => Math.max(260, box.current.clientWidth);
      plot = new UPlot({
        width: width(),
        height: 260,
        scales: { x: { time: true } },
        axes: [{}, { label: 'credits' }],
        series: [{}, ...names.map((name, i) => ({
          label: name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true },
        }))],
      }, [days, ...names.map((n) => series[n])], box.current);
      observer = new ResizeObserver(() => plot.setSize({ width: width(), height: 260 }));
      observer.observe(box.current);
    }).catch(setFailed);
    return () => {
      cancelled = true;
      if (observer) observer.disconnect();
      if (plot) plot.destroy();
    };
  }, [days, series]);
  return (
    <figure class="chart" data-series={Object.keys(series).join(',')}>
      <div ref={box} role="img" aria-label={label} />
      {failed && <p class="error">The chart could not be drawn: {String(failed.message || failed)}</p>}
      <figcaption class="muted">{label}</figcaption>
    </figure>
  );
}
