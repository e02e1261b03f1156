// Overview: the balance and its status, the billing cycle, a low-credit warning, and credits used
// per service per day over the last 30 days.
import { useMemo } from 'preact/hooks';
import { request } from '../api.js';
import { CreditsChart } from '../chart.jsx';
import { Badge, Empty, ErrorNote, fmt, Loaded, Loading, Page, Table, useLoad } from '../ui.jsx';
import { dailySeries } from '../usage.js';

export function Overview() {
  const balance = useLoad(() => request('GET', '/v1/billing/balance'));
  const limits = useLoad(() => request('GET', '/v1/billing/limits'));
  const byService = useLoad(() => request('GET', '/v1/billing/usage?groupBy=service'));
  const daily = useLoad(() => request('GET', '/v1/billing/usage?groupBy=day&by=service'));
  const chart = useMemo(() => (daily.data ? dailySeries(daily.data) : null), [daily.data]);
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
      <h2>Credits per service per day</h2>
      <Loaded state={daily} what="usage per day">{(d) => (Object.keys(chart.series).length
        ? <CreditsChart days={chart.days} series={chart.series} label={`Credits used per service per day, ${fmt.day(d.from)} to ${fmt.day(d.to)}`} />
        : <Empty title="No usage in this period.">Create a class, upload a video or try the AI playground: the credits they use show here.</Empty>)}
      </Loaded>
      <h2>By service</h2>
      <Loaded state={byService} what="usage per service">{(d) => (
        <Table caption="Credits by service" head={['Service', 'Credits', 'Quantity']}
          empty={<Empty title="Nothing used yet.">Usage per service appears once anything spends credits.</Empty>}
          rows={d.rows.map((r) => (
            <tr key={r.key}><td>{r.key}</td><td>{fmt.num(r.credits)}</td><td>{fmt.num(r.quantity)} {r.unit}</td></tr>
          ))} />
      )}</Loaded>
    </Page>
  );
}
