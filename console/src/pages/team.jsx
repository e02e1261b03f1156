// Team: the org's users and their roles (owner, admin, member, viewer); owners and admins add,
// change and remove users; everyone changes their own password.
import { useContext } from 'preact/hooks';
import { request } from '../api.js';
import { Action, Empty, Field, fmt, Form, Loaded, Me, Page, Table, useCan, useLoad } from '../ui.jsx';

const ROLES = ['owner', 'admin', 'member', 'viewer'];
const shown = (role) => (role === 'developer' ? 'member' : role); // legacy name of member

function Password() {
  const change = async (form) => {
    if (form.newPassword.value !== form.repeat.value) throw new Error('The two new passwords differ.');
    await request('POST', '/v1/auth/password', { currentPassword: form.currentPassword.value, newPassword: form.newPassword.value });
    form.reset();
    return 'Password changed. Your other sessions have ended.';
  };
  return (
    <Form onSubmit={change} submit="Change password" label="Change your password">
      <h2>Your password</h2>
      <div class="row wrap">
        <Field label="Current password"><input name="currentPassword" type="password" autoComplete="current-password" required /></Field>
        <Field label="New password" hint="At least 12 characters"><input name="newPassword" type="password" autoComplete="new-password" minLength={12} required /></Field>
        <Field label="New password again"><input name="repeat" type="password" autoComplete="new-password" minLength={12} required /></Field>
      </div>
    </Form>
  );
}

export function Team() {
  const can = useCan();
  const me = useContext(Me);
  const users = useLoad(() => request('GET', '/v1/team/users'));
  const isOwner = me.role === 'owner';
  const create = async (form) => {
    await request('POST', '/v1/team/users', {
      email: form.email.value.trim(), name: form.name.value.trim(), role: form.role.value, password: form.password.value,
    });
    form.reset();
    users.reload();
  };
  const grantable = ROLES.filter((r) => isOwner || r !== 'owner');
  return (
    <Page title="Team">
      <Loaded state={users} what="the team">{(d) => (
        <Table caption="Team members" head={['Name', 'Email', 'Role', 'Last sign-in', 'Added', ...(can.manage ? [''] : [])]}
          empty={<Empty title="No users.">Add your colleagues below.</Empty>}
          rows={d.users.map((u) => {
            const self = u.userId === me.userId || u.email === me.email;
            const editable = can.manage && !self && (isOwner || shown(u.role) !== 'owner');
            return (
              <tr key={u.userId}><td>{u.name || '—'}{self && <span class="muted"> (you)</span>}</td><td>{u.email}</td>
                <td>{editable ? (
                  <select aria-label={`Role of ${u.email}`} value={shown(u.role)} onChange={async (e) => {
                    try { await request('PATCH', `/v1/team/users/${encodeURIComponent(u.userId)}`, { role: e.target.value }); } catch (err) { alert(err.message); }
                    users.reload();
                  }}>{grantable.map((r) => <option value={r}>{r}</option>)}</select>) : shown(u.role)}</td>
                <td>{fmt.date(u.lastLoginAt)}</td><td>{fmt.day(u.createdAt)}</td>
                {can.manage && <td>{editable && <Action danger label={`Remove ${u.email}`} confirm={`Remove ${u.email}? Their sessions end at once.`}
                  onDone={users.reload} run={() => request('DELETE', `/v1/team/users/${encodeURIComponent(u.userId)}`)}>Remove</Action>}</td>}
              </tr>
            );
          })} />
      )}</Loaded>
      {can.manage && (
        <Form onSubmit={create} submit="Add user" label="Add a user">
          <h2>Add a user</h2>
          <div class="row wrap">
            <Field label="Name"><input name="name" required maxLength={100} /></Field>
            <Field label="Email"><input name="email" type="email" required /></Field>
            <Field label="Role"><select name="role">{grantable.map((r) => <option value={r} selected={r === 'member'}>{r}</option>)}</select></Field>
            <Field label="First password" hint="At least 12 characters; tell them to change it"><input name="password" type="password" autoComplete="new-password" minLength={12} required /></Field>
          </div>
          <p class="muted">Owners and admins manage everything; members use the product but not keys, team or settings; viewers only read.</p>
        </Form>
      )}
      <Password />
    </Page>
  );
}
