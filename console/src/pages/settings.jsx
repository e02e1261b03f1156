// Settings: the billing limits and caps, and the AI tutor's defaults for new classes. Owners and
// admins change them; others see them read-only.
import { request } from '../api.js';
import { Field, Form, Loaded, Page, useCan, useLoad } from '../ui.jsx';

const LIMITS = [
  ['lowCredits', 'Low-credit warning mark', 'Webhook and overview warning below this balance'],
  ['orgMonthlyCredits', 'Organisation cap per month', 'Credits the whole org may spend in a month'],
  ['roomCredits', 'Cap per class', 'Credits one class may spend'],
  ['studentMonthlyCredits', 'Cap per student per month', 'AI tutor credits per student'],
];

const number = (v) => (v.trim() === '' ? null : Number(v));

export function Settings() {
  const can = useCan();
  const limits = useLoad(() => request('GET', '/v1/billing/limits'));
  const tutor = useLoad(() => request('GET', '/v1/ai-tutor/settings'));
  const saveLimits = async (form) => {
    const body = Object.fromEntries(LIMITS.map(([k]) => [k, number(form[k].value)]));
    await request('PUT', '/v1/billing/limits', body);
    limits.reload();
    return 'Limits saved.';
  };
  const saveTutor = async (form) => {
    await request('PUT', '/v1/ai-tutor/settings', {
      enabled: form.enabled.checked, mode: form.mode.value, topic: form.topic.value.trim() || null,
    });
    tutor.reload();
    return 'Tutor defaults saved.';
  };
  const ro = !can.manage;
  return (
    <Page title="Settings">
      {ro && <p class="muted">Only owners and admins change settings; you see them read-only.</p>}
      <h2>Billing limits and caps</h2>
      <Loaded state={limits} what="limits">{(d) => (
        <Form onSubmit={saveLimits} readOnly={ro} submit="Save limits" label="Billing limits">
          <p class="muted">Leave a cap empty for none. {d.creditLimit ? `Postpaid credit limit: ${d.creditLimit} (set by Verriflo).` : ''}</p>
          <div class="row wrap">{LIMITS.map(([k, label, hint]) => (
            <Field label={label} hint={hint}><input name={k} type="number" min="0" step="any" readOnly={ro} defaultValue={d[k] ?? ''} /></Field>
          ))}</div>
        </Form>
      )}</Loaded>
      <h2>AI tutor defaults</h2>
      {tutor.error && tutor.error.status === 404
        ? <p class="muted">This API has no org-level tutor defaults yet; set the tutor per class with <code>PUT /v1/ai-tutor/rooms/{'{roomId}'}/settings</code>.</p>
        : <Loaded state={tutor} what="tutor defaults">{(d) => (
          <Form onSubmit={saveTutor} readOnly={ro} submit="Save tutor defaults" label="AI tutor defaults">
            <div class="row wrap">
              <label class="inline"><input name="enabled" type="checkbox" defaultChecked={d.enabled} disabled={ro} /> Tutor on in new classes</label>
              <Field label="Pedagogy"><select name="mode" disabled={ro}>
                <option value="hints" selected={d.mode === 'hints'}>hints (guide, don't give answers)</option>
                <option value="explain" selected={d.mode === 'explain'}>explain</option></select></Field>
              <Field label="Default topic"><input name="topic" maxLength={300} readOnly={ro} defaultValue={d.topic || ''} /></Field>
            </div>
          </Form>
        )}</Loaded>}
    </Page>
  );
}
