// Overview: the balance and its status, the billing cycle, a low-credit warning, and credits used
// per service per day over the last 30 days.
import { useMemo } from 'preact/hooks';
import { request } from '../api.js';
import { CreditsChart } from '../chart.jsx';
import { Badge, Empty, ErrorNote, fmt, Loading, Page, Table, useLoad } from '../ui.jsx';

const DAY_MS = 86400000;

/** Days × services from the usage answer: the per-day-per-service series when the API gives one
 * (rows carrying `service` or a `services`/`byService` breakdown), else each day's total. */
export function dailySeries(rows, now = Date.now()) {
  const end = Math.floor(now / DAY_MS) * DAY_MS;
  const days = Array.from({ length: 30 }, (_, i) => end - (29 - i) * DAY_MS);
  const index = new Map(days.map((d, i) => [new Date(d).toISOString().slice(0, 10), i]));
  const series = {};
  const add = (name, day, credits) => {
    const i = index.get(String(day).slice(0, 10));
    if (i === undefined) return;
    if (!series[name]) series[name] = new Array(days.length).fill(0);
    series[name][i] += Number(credits) || 0;
  };
  for (const row of rows || []) {
    const day = row.day || row.date || row.key;
    const breakdown = row.services || row.byService;
    if (Array.isArray(breakdown)) breakdown.forEach((s) => add(s.service || s.key, day, s.credits));
    else if (breakdown && typeof breakdown === 'object') Object.entries(breakdown).forEach(([s, c]) => add(s, day, c));
    else add(row.service || 'all services', day, row.credits);
  }
  return { days: days.map((d) => d / 1000), series };
}

export function Overview() {
  const balance = useLoad(() => request('GET', '/v1/billing/balance'));
  const limits = useLoad(() => request('GET', '/v1/billing/limits'));
  const byService = useLoad(() => request('GET', '/v1/billing/usage?groupBy=service'));
  const daily = useLoad(() => request('GET', '/v1/billing/usage?groupBy=day&by=service'));
  const chart = useMemo(() => (daily.data ? dailySeries(daily.data.rows) : null), [daily.data]);
  const b = balance.data;
  const low = b && limits.data && limits.data.lowCredits !== null && limits.data.lowCredits !== undefined
    && b.remainingCredits <= limits.data.lowCredits;
  return (
    <Page title="Overview">
      <ErrorNote error={balance.error} />
      {!b && !balance.error && <Loading what="the balance" />}
      {b && (
        <div class="cards">
          <div class="card"><h2>Balance</h2>
            <p class="big" data-testid="balance">{fmt.num(b.displayCredits)} credits</p>
            <p class="muted">≈ {fmt.num(b.estimatedValue)} {b.currency}</p></div>
          <div class="card"><h2>Account</h2>
            <p><Badge value={b.type} /> <Badge value={b.status} /></p>
            <p class="muted">{b.message}</p></div>
          <div class="card"><h2>Billing cycle</h2>
            {b.type === 'POSTPAID' ? (
              <p>{b.billingCycle} cycle since {fmt.day(b.cycleStartedAt)}: {fmt.num(b.cycleUsageCredits)} used
                of a {fmt.num(b.creditLimit)} credit limit</p>
            ) : <p>Prepaid: credits are used as they are spent; {fmt.num(b.remainingCredits)} remain.</p>}
          </div>
        </div>
      )}
      {(low || (b && b.isOverconsumed)) && (
        <p class="warning" role="alert">
          {b.isOverconsumed ? 'The organisation has used more credits than it has. ' : 'Credits are running low. '}
          Remaining: {fmt.num(b.remainingCredits)} (warning mark: {fmt.num(limits.data && limits.data.lowCredits)}).
          Add credits before classes stop; the mark is in <a href="#/settings">Settings</a>.
        </p>
      )}
      <h2>Credits per service per day (last 30 days)</h2>
      <ErrorNote error={daily.error} />
      {chart && (Object.keys(chart.series).length
        ? <CreditsChart days={chart.days} series={chart.series} label="Credits used per service per day, last 30 days" />
        : <Empty title="No usage in the last 30 days.">Create a class, upload a video or try the AI playground: the credits they use show here.</Empty>)}
      <h2>By service</h2>
      <ErrorNote error={byService.error} />
      {byService.data && (
        <Table caption="Credits by service" head={['Service', 'Credits', 'Quantity']}
          empty={<Empty title="Nothing used yet.">Usage per service appears once anything spends credits.</Empty>}
          rows={byService.data.rows.map((r) => (
            <tr><td>{r.key}</td><td>{fmt.num(r.credits)}</td><td>{fmt.num(r.quantity)} {r.unit}</td></tr>
          ))} />
      )}
    </Page>
  );
}
