"""The usage ledger: append-only usage events and grants, and each org's balance, kept in step.

Every entry has an id chosen by the caller (the idempotency key: a LiveKit webhook id, a request
id...), and is counted exactly once. Amounts are integer milli-credits so sums are exact.

One module per job, every public name re-exported here (`from verriflo import ledger`, `ledger.X`):
- `records`: collection names, settings, milli-credit arithmetic, the models, indexes, the clock;
- `recording`: `record_usage` and `grant`, the two writes that count an entry exactly once (how,
  and its one documented gap, in its docstring);
- `balance`: the balance document (`balance_milli`, `state`, `configure`);
- `alerts`: `credits.low` / `credits.exhausted`, published once per crossing through an outbox in
  the balance document (the flag that says "already announced" flips in the same conditional update
  that queues the event, so exactly one writer announces each crossing; a failed publish is re-sent
  with the same event id by the next write that sees the outbox non-empty);
- `caps`: admission (the 402 rules and the spending caps);
- `usage`: queries over the entries (`spent_milli`, `drift_milli`);
- `expiry`: removing what is left of expired grants.

Caps (optional, per org and month, per room, per student and month) are admission limits: they are
checked, like the 402 rules, before work starts (`require_credits`, and `record_usage` with
`allow_negative=False`); usage that already happened (live minutes) is always recorded.

A credit limit (overdraft, for postpaid orgs billed at the end of their cycle; 0 unless an operator
sets one) lets admission go that far below zero: the 402 rules compare the balance plus the limit
with what the work needs, and work paid up front may take the balance down to minus the limit.

Expiring grants are spent first (`expiry`).

The ledger's clock is `now` below: every module reads it through `records.clock()`, so a test
replaces `ledger.now` once for the whole ledger.
"""

from __future__ import annotations

from verriflo.ledger.alerts import flush_outbox
from verriflo.ledger.balance import balance_milli, configure, reset_cache, state
from verriflo.ledger.caps import require_credits, require_within_caps
from verriflo.ledger.expiry import expire_grants
from verriflo.ledger.recording import grant, record_usage
from verriflo.ledger.records import (
    BALANCES,
    LEDGER,
    MILLI,
    BalanceState,
    Caps,
    Kind,
    LedgerEntry,
    LedgerSettings,
    Service,
    UsageEvent,
    from_milli,
    ledger_settings,
    to_milli,
)
from verriflo.ledger.usage import drift_milli, spent_milli
from verriflo.orgs import now

__all__ = [
    "BALANCES",
    "LEDGER",
    "MILLI",
    "BalanceState",
    "Caps",
    "Kind",
    "LedgerEntry",
    "LedgerSettings",
    "Service",
    "UsageEvent",
    "balance_milli",
    "configure",
    "drift_milli",
    "expire_grants",
    "flush_outbox",
    "from_milli",
    "grant",
    "ledger_settings",
    "now",
    "record_usage",
    "require_credits",
    "require_within_caps",
    "reset_cache",
    "spent_milli",
    "state",
    "to_milli",
]
