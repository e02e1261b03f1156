// Webhooks: endpoints and the event types they receive, the delivery log with every attempt,
// replay and test (members too), and for owners and admins: add, enable/disable, delete, and
// secret rotation (the new secret shown once).
import { useState } from 'preact/hooks';
import { qs, request } from '../api.js';
import { Action, Badge, Empty, Field, fmt, Form, Loaded, Page, Secret, Table, useCan, useLoad } from '../ui.jsx';

const enc = encodeURIComponent;

/** The event catalogue: the descriptions when the API has them (/v1/webhooks/event-types), else the names. */
async function eventTypes(names) {
  try {
    const data = await request('GET', '/v1/webhooks/event-types', undefined, { noRelogin: false });
    return data.eventTypes;
  } catch (err) {
    if (err.status === 404 || err.status === 403) return names.map((type) => ({ type, description: '' }));
    throw err;
  }
}

export function Webhooks() {
  const can = useCan();
  const list = useLoad(async () => {
    const data = await request('GET', '/v1/webhooks');
    return { ...data, catalogue: await eventTypes(data.eventTypes || []) };
  });
  const [created, setCreated] = useState(null);
  const create = async (form) => {
    const chosen = [...form.querySelectorAll('input[name=eventType]:checked')].map((el) => el.value);
    const data = await request('POST', '/v1/webhooks', {
      url: form.url.value.trim(), description: form.description.value.trim(), eventTypes: chosen,
    });
    form.reset();
    setCreated(data);
    list.reload();
  };
  return (
    <Page title="Webhooks">
      {created && <Secret label={`Signing secret of ${created.endpoint.url}`} value={created.secret} onDone={() => setCreated(null)} />}
      <Loaded state={list} what="webhook endpoints">{(d) => (
        <>
          {can.manage && (
            <Form onSubmit={create} submit="Add endpoint" label="Add a webhook endpoint">
              <h2>New endpoint</h2>
              <div class="row wrap">
                <Field label="URL (https)"><input name="url" type="url" required placeholder="https://example.edu/verriflo/webhooks" /></Field>
                <Field label="Description"><input name="description" maxLength={200} /></Field>
              </div>
              <fieldset><legend>Event types (none chosen: every event)</legend>
                {d.catalogue.map((t) => <label class="inline" title={t.description}><input type="checkbox" name="eventType" value={t.type} /> {t.type}</label>)}
              </fieldset>
            </Form>
          )}
          <h2>Endpoints</h2>
          <Table caption="Webhook endpoints" head={['URL', 'Events', 'State', 'Created']}
            empty={<Empty title="No webhook endpoints yet.">{can.manage ? 'Add one above to be told when classes end, videos are ready or credits run low.' : 'Endpoints your team adds show here.'}</Empty>}
            rows={d.endpoints.map((ep) => (
              <tr key={ep.id}><td><a href={`#/webhooks/${enc(ep.id)}`}>{ep.url}</a><div class="muted">{ep.description}</div></td>
                <td>{ep.eventTypes.length ? ep.eventTypes.join(', ') : 'all events'}</td>
                <td><Badge value={ep.enabled ? 'enabled' : 'disabled'} />{ep.disabledReason && <div class="muted">{ep.disabledReason}</div>}</td>
                <td>{fmt.date(ep.createdAt)}</td></tr>
            ))} />
          <h2>Event types</h2>
          <dl class="catalogue">{d.catalogue.map((t) => <><dt class="mono">{t.type}</dt><dd>{t.description || '—'}</dd></>)}</dl>
        </>
      )}</Loaded>
    </Page>
  );
}

function Delivery({ base, id, canUse, onReplayed }) {
  const one = useLoad(() => request('GET', `${base}/deliveries/${enc(id)}`), [id]);
  return (
    <Loaded state={one} what="the delivery">{(d) => (
      <div class="delivery" data-testid="delivery-detail">
        <p><Badge value={d.status} /> {d.eventType} · {d.attempts} attempts · last status {d.lastStatusCode || '—'}
          {canUse && <> <Action label={`Replay delivery ${d.id}`} onDone={() => { one.reload(); onReplayed(); }}
            run={() => request('POST', `${base}/deliveries/${enc(d.id)}/replay`)}>Replay</Action></>}</p>
        <Table caption="Attempts" head={['#', 'At', 'Status', 'Took', 'Error', 'Answer']}
          empty={<p class="muted">Not attempted yet.</p>}
          rows={(d.attemptLog || []).map((a) => (
            <tr key={a.n}><td>{a.n}</td><td>{fmt.date(a.at)}</td><td>{a.statusCode || '—'}</td><td>{a.durationMs} ms</td>
              <td>{a.error || ''}</td><td class="mono clip">{a.response || ''}</td></tr>
          ))} />
        <details><summary>Payload</summary><pre class="mono">{JSON.stringify(d.payload, null, 2)}</pre></details>
      </div>
    )}</Loaded>
  );
}

export function Webhook({ endpointId }) {
  const can = useCan();
  const base = `/v1/webhooks/${enc(endpointId)}`;
  const ep = useLoad(() => request('GET', base), [endpointId]);
  const [status, setStatus] = useState('');
  const log = useLoad(() => request('GET', `${base}/deliveries${qs({ status, limit: 50 })}`), [endpointId, status]);
  const [open, setOpen] = useState(null);
  const [secret, setSecret] = useState(null);
  const e = ep.data;
  return (
    <Page title="Webhook endpoint" actions={<a href="#/webhooks">All endpoints</a>}>
      {secret && <Secret label="New signing secret" value={secret} onDone={() => setSecret(null)} />}
      {!e && <Loaded state={ep} what="the endpoint">{() => null}</Loaded>}
      {e && (
        <div class="card">
          <p class="mono">{e.url}</p>
          <p>{e.description} · <Badge value={e.enabled ? 'enabled' : 'disabled'} /> · events: {e.eventTypes.length ? e.eventTypes.join(', ') : 'all'}</p>
          {e.previousSecretValidUntil && <p class="muted">The previous secret still verifies until {fmt.date(e.previousSecretValidUntil)}.</p>}
          {can.use && (
            <div class="row wrap">
              <Action onDone={() => log.reload()} run={() => request('POST', `${base}/test`)}>Send test event</Action>
              {can.manage && <>
                <Action onDone={ep.reload} run={() => request('PATCH', base, { enabled: !e.enabled })}>{e.enabled ? 'Disable' : 'Enable'}</Action>
                <Action danger confirm="Rotate the signing secret? The old one keeps verifying for a while." onDone={(d) => { setSecret(d.secret); ep.reload(); }}
                  run={() => request('POST', `${base}/rotate-secret`)}>Rotate secret</Action>
                <Action danger confirm="Delete this endpoint and its delivery log?" onDone={() => { location.hash = '#/webhooks'; }}
                  run={() => request('DELETE', base)}>Delete endpoint</Action>
              </>}
            </div>
          )}
        </div>
      )}
      <h2>Delivery log</h2>
      <div class="row">
        <label class="inline">Show <select value={status} onChange={(ev) => setStatus(ev.target.value)}>
          <option value="">all</option><option value="pending">pending</option><option value="succeeded">succeeded</option><option value="failed">failed</option>
        </select></label>
        <button type="button" class="ghost" onClick={log.reload}>Refresh</button>
      </div>
      <Loaded state={log} what="deliveries">{(d) => (
        <Table caption="Deliveries" head={['Event', 'Status', 'Attempts', 'Last attempt', 'Last answer', '']}
          empty={<Empty title="No deliveries yet.">{can.use ? 'Send a test event above to see one.' : 'Deliveries appear as events happen.'}</Empty>}
          rows={d.items.map((x) => (
            <tr key={x.id} data-delivery={x.id}><td>{x.eventType}<div class="muted mono">{x.eventId}</div></td><td><Badge value={x.status} /></td>
              <td>{x.attempts}</td><td>{fmt.date(x.lastAttemptAt)}</td><td>{x.lastStatusCode || x.lastError || '—'}</td>
              <td><button type="button" class="ghost" aria-expanded={open === x.id ? 'true' : 'false'}
                onClick={() => setOpen(open === x.id ? null : x.id)}>{open === x.id ? 'Hide' : 'Attempts'}</button></td></tr>
          ))} />
      )}</Loaded>
      {open && <Delivery base={base} id={open} canUse={can.use} onReplayed={log.reload} />}
    </Page>
  );
}
