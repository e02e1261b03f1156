"""Credits and usage: balance, usage reports, the ledger, spending limits."""
