// Shared pieces of every page: loading an API answer, errors in the API's own words, empty states,
// secrets shown once, confirmations for destructive actions, and who may do what.
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';

export const Me = createContext(null);

const MEMBER_ROLES = ['owner', 'admin', 'member', 'developer']; // developer: the legacy name of member

/** What the signed-in user may do, from whoami.role (the API's rules decide; the UI only follows). */
export function useCan() {
  const me = useContext(Me);
  const role = (me && me.role) || 'viewer';
  return { use: MEMBER_ROLES.includes(role), manage: role === 'owner' || role === 'admin', role };
}

/** Runs `load` now and whenever `deps` change; {data, error, loading, reload}. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState({ data: null, error, loading: false });
    }
  }, deps); // eslint-disable-line
  useEffect(() => { reload(); }, [reload]);
  return { ...state, reload };
}

/** Calls `fn` every `ms` while `active`, stopping on unmount. */
export function usePoll(fn, ms, active) {
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(fn, ms);
    return () => clearInterval(id);
  }, [fn, ms, active]);
}

export function Page({ title, actions, children }) {
  useEffect(() => { document.title = `${title} · Verriflo Console`; }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1}>{title}</h1>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return <p class="error" role="alert">{error.message || String(error)}</p>;
}

export function Loading({ what }) {
  return <p class="muted" role="status">Loading {what}…</p>;
}

export function Empty({ title, children }) {
  return (
    <div class="empty">
      <p><strong>{title}</strong></p>
      <p class="muted">{children}</p>
    </div>
  );
}

/** A load's three states: loading, its error, or `children(data)`. */
export function Loaded({ state, what, children }) {
  if (state.error) return <ErrorNote error={state.error} />;
  if (state.data === null || state.data === undefined) return <Loading what={what} />;
  return children(state.data);
}

/** A secret shown once: read-only, selectable, with a copy button and a warning. */
export function Secret({ label, value, onDone }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(value); setCopied(true); } catch { setCopied(false); }
  };
  return (
    <div class="secret" role="region" aria-label={label}>
      <p><strong>{label}</strong>: shown once. Copy it now; it cannot be read again.</p>
      <div class="row">
        <input class="mono" readOnly value={value} aria-label={label} data-secret onFocus={(e) => e.target.select()} />
        <button type="button" onClick={copy}>{copied ? 'Copied' : 'Copy'}</button>
        {onDone && <button type="button" class="ghost" onClick={onDone}>Done</button>}
      </div>
    </div>
  );
}

/** A button that runs an async action, shows it is busy, and reports the API's message. */
export function Action({ run, children, danger, confirm, label, onDone, disabled, ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(null);
    try {
      const out = await run();
      if (onDone) onDone(out);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={danger ? 'danger' : ''} aria-label={label} disabled={busy || disabled}
        aria-busy={busy ? 'true' : 'false'} onClick={click} {...rest}>{children}</button>
      {error && <span class="error" role="alert">{error.message}</span>}
    </span>
  );
}

/** A form whose submit is async; its fields keep what was typed when the call fails. */
export function Form({ onSubmit, children, submit, label, readOnly }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const go = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const said = await onSubmit(e.currentTarget);
      if (typeof said === 'string') setDone(said); // what the submit achieved, when it says so
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form" onSubmit={go} aria-label={label}>
      {children}
      {!readOnly && (
        <div class="row">
          <button type="submit" disabled={busy} aria-busy={busy ? 'true' : 'false'}>{busy ? 'Working…' : submit}</button>
        </div>
      )}
      {done && <p class="ok" role="status">{done}</p>}
      <ErrorNote error={error} />
    </form>
  );
}

export function Field({ label, children, hint }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint && <small class="muted">{hint}</small>}
    </label>
  );
}

export function Badge({ value }) {
  const v = String(value || '').toLowerCase();
  return <span class={`badge badge-${v.replace(/[^a-z0-9]+/g, '-')}`}>{value}</span>;
}

export const fmt = {
  date: (v) => (v ? new Date(v).toLocaleString() : '—'),
  day: (v) => (v ? new Date(v).toLocaleDateString() : '—'),
  num: (v, digits = 2) => (v === null || v === undefined ? '—' : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits })),
  bytes: (v) => {
    if (v === null || v === undefined) return '—';
    const units = ['B', 'KB', 'MB', 'GB'];
    let n = Number(v);
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  },
  secs: (v) => (v === null || v === undefined ? '—' : `${Math.round(v)} s`),
};

export function Table({ caption, head, rows, empty }) {
  if (!rows.length) return empty;
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead><tr>{head.map((h) => <th scope="col">{h}</th>)}</tr></thead>
        <tbody>{rows}</tbody>
      </table>
    </div>
  );
}

/** Reads a File as base64 (no data: prefix). */
export function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
