// API keys: issue (the secret shown once, with a copy button), list by prefix, revoke. Owners and
// admins only, as the API's role rules say; keys are for servers, never for this browser.
import { useState } from 'preact/hooks';
import { request } from '../api.js';
import { Action, Empty, Field, fmt, Form, Loaded, Page, Secret, Table, useCan, useLoad } from '../ui.jsx';

export function Keys() {
  const can = useCan();
  const list = useLoad(() => (can.manage ? request('GET', '/v1/keys') : Promise.resolve({ keys: [] })), [can.manage]);
  const [issued, setIssued] = useState(null);
  if (!can.manage) {
    return <Page title="API keys"><Empty title="Only owners and admins manage API keys.">Ask one of them for a key for your server.</Empty></Page>;
  }
  const issue = async (form) => {
    const data = await request('POST', '/v1/keys', { name: form.name.value.trim() });
    form.reset();
    setIssued(data);
    list.reload();
  };
  return (
    <Page title="API keys">
      <p class="muted">Keys authenticate your servers (the <code>VF-ORG-ID</code> header). Never put one in a browser or an app.</p>
      {issued && <Secret label={`API key "${issued.key.name}"`} value={issued.secret} onDone={() => setIssued(null)} />}
      <Form onSubmit={issue} submit="Issue key" label="Issue an API key">
        <Field label="Key name"><input name="name" required maxLength={100} placeholder="Production LMS server" /></Field>
      </Form>
      <Loaded state={list} what="keys">{(d) => (
        <Table caption="API keys" head={['Name', 'Prefix', 'Created', 'State', '']}
          empty={<Empty title="No API keys.">Issue one above for your server.</Empty>}
          rows={d.keys.map((k) => (
            <tr key={k.id} data-key={k.prefix}><td>{k.name}</td><td class="mono">{k.prefix}</td><td>{fmt.date(k.createdAt)}</td>
              <td>{k.revokedAt ? `revoked ${fmt.date(k.revokedAt)}` : 'active'}</td>
              <td>{!k.revokedAt && <Action danger label={`Revoke ${k.name}`} confirm={`Revoke "${k.name}"? Requests with it fail at once.`}
                onDone={list.reload} run={() => request('DELETE', `/v1/keys/${encodeURIComponent(k.id)}`)}>Revoke</Action>}</td></tr>
          ))} />
      )}</Loaded>
    </Page>
  );
}
