// Usage rows of GET /v1/billing/usage turned into the overview chart's series (plain, testable in node).
const DAY_MS = 86400000;

/** One series per service over the UTC days of the answer's [from, to) window (the API's clock,
 * not the browser's): from a per-day-per-service answer (rows carrying `service`, or a
 * `services`/`byService` breakdown), else each day's total as one series. */
export function dailySeries({ rows, from, to }) {
  const start = Math.floor(Date.parse(from) / DAY_MS) * DAY_MS;
  const end = Date.parse(to);
  const days = [];
  for (let d = start; d < end && days.length < 367; d += DAY_MS) days.push(d);
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
