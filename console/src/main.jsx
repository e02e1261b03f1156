// The Verriflo Console: sign-in, the shell (navigation, the signed-in user), a hash router, and
// the re-login dialog that any API call answered 401 opens over the page.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from './api.js';
import { ErrorNote, Field, Me } from './ui.jsx';
import { Overview } from './pages/overview.jsx';
import { Classes, Room } from './pages/classes.jsx';
import { Videos } from './pages/videos.jsx';
import { Playground } from './pages/playground.jsx';
import { KnowledgeBase, KnowledgeBases } from './pages/kbs.jsx';
import { Webhook, Webhooks } from './pages/webhooks.jsx';
import { Keys } from './pages/keys.jsx';
import { Team } from './pages/team.jsx';
import { Settings } from './pages/settings.jsx';

const NAV = [
  ['overview', 'Overview'], ['classes', 'Classes'], ['videos', 'Videos'], ['playground', 'AI playground'],
  ['kbs', 'Knowledge bases'], ['webhooks', 'Webhooks'], ['keys', 'API keys', 'manage'], ['team', 'Team'],
  ['settings', 'Settings'],
];

function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function page(route) {
  const [name, id] = route;
  switch (name) {
    case 'overview': return <Overview />;
    case 'classes': return id ? <Room roomId={id} /> : <Classes />;
    case 'videos': return <Videos />;
    case 'playground': return <Playground />;
    case 'kbs': return id ? <KnowledgeBase kbId={id} /> : <KnowledgeBases />;
    case 'webhooks': return id ? <Webhook endpointId={id} /> : <Webhooks />;
    case 'keys': return <Keys />;
    case 'team': return <Team />;
    case 'settings': return <Settings />;
    default: return <p>No such page. <a href="#/overview">Go to the overview</a>.</p>;
  }
}

function SignIn({ onSignedIn, email: knownEmail, title = 'Sign in to the Verriflo Console', dialog }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    setBusy(true);
    setError(null);
    try {
      await api.login(form.email.value.trim(), form.password.value);
      onSignedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="form signin" onSubmit={submit} aria-labelledby={dialog ? 'relogin-title' : 'signin-title'}>
      <h1 id={dialog ? 'relogin-title' : 'signin-title'}>{title}</h1>
      {dialog && <p>Your session has ended. Sign in again to carry on: what you typed on the page is kept.</p>}
      <Field label="Email"><input name="email" type="email" autoComplete="username" required defaultValue={knownEmail || ''} /></Field>
      <Field label="Password"><input name="password" type="password" autoComplete="current-password" required /></Field>
      <div class="row"><button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button></div>
      <ErrorNote error={error} />
    </form>
  );
}

function ReloginDialog({ email, onDone }) {
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (el && !el.open) el.showModal();
    // the user cannot dismiss it without signing in (the request waiting behind it needs a session)
    const keep = (e) => e.preventDefault();
    el.addEventListener('cancel', keep);
    return () => el.removeEventListener('cancel', keep);
  }, []);
  return (
    <dialog ref={ref} class="relogin" aria-labelledby="relogin-title">
      <SignIn dialog email={email} title="Sign in again" onSignedIn={onDone} />
    </dialog>
  );
}

function Shell({ me, onSignOut }) {
  const route = useRoute();
  const [menuOpen, setMenuOpen] = useState(false);
  const main = useRef(null);
  useEffect(() => {
    setMenuOpen(false);
    const heading = main.current && main.current.querySelector('h1');
    if (heading) heading.focus({ preventScroll: false }); // a route change moves focus to the new page
  }, [route.join('/')]);
  const manage = me.role === 'owner' || me.role === 'admin';
  return (
    <Me.Provider value={me}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); main.current.focus(); }}>Skip to content</a>
      <header class="top" role="banner">
        <button type="button" class="menu ghost" aria-expanded={menuOpen ? 'true' : 'false'} aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <span class="brand">Verriflo Console</span>
        <span class="who">
          <span data-testid="whoami">{me.email || me.principal} · {me.orgName} · <span class="role">{me.role}</span></span>
          <button type="button" class="ghost" onClick={onSignOut}>Sign out</button>
        </span>
      </header>
      <div class="layout">
        <nav id="nav" aria-label="Console" class={menuOpen ? 'open' : ''}>
          <ul>
            {NAV.filter(([, , need]) => need !== 'manage' || manage).map(([id, label]) => (
              <li><a href={`#/${id}`} aria-current={route[0] === id ? 'page' : undefined}>{label}</a></li>
            ))}
          </ul>
        </nav>
        <main id="main" ref={main} tabIndex={-1}>{page(route)}</main>
      </div>
    </Me.Provider>
  );
}

function App() {
  const [me, setMe] = useState(null);
  const [state, setState] = useState(api.getSession() ? 'loading' : 'signedOut');
  const [relogin, setRelogin] = useState(null); // {resolve}
  const [error, setError] = useState(null);

  const loadMe = async () => {
    try {
      // a stored session that has ended goes back to the sign-in page (no dialog: nothing to keep)
      const who = await api.request('GET', '/v1/auth/whoami', undefined, { noRelogin: true });
      const session = api.getSession();
      setMe({ ...who, email: who.email || (session && session.email) });
      setState('signedIn');
    } catch (err) {
      if (err.status === 401) api.forgetSession();
      setError(err);
      setState('signedOut');
    }
  };

  useEffect(() => {
    api.onRelogin(() => new Promise((resolve) => setRelogin({ resolve })));
    if (state === 'loading') loadMe();
  }, []);

  const signOut = async () => {
    await api.logout();
    setMe(null);
    setState('signedOut');
    location.hash = '#/overview';
  };

  if (state === 'loading') return <p role="status" class="center">Loading the Console…</p>;
  if (state === 'signedOut') {
    return (
      <main id="main" class="center">
        <SignIn onSignedIn={() => { setError(null); setState('loading'); loadMe(); }} />
        {error && error.status !== 401 && <ErrorNote error={error} />}
      </main>
    );
  }
  return (
    <>
      <Shell me={me} onSignOut={signOut} />
      {relogin && (
        <ReloginDialog email={me.email} onDone={() => { const { resolve } = relogin; setRelogin(null); resolve(); }} />
      )}
    </>
  );
}

const root = document.getElementById('app');
root.textContent = ''; // the static "Loading" line of index.html
render(<App />, root);
