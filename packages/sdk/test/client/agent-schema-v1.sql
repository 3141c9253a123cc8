-- The agent database as Tollway wrote it at schema version 1 (to test the migrations).
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) STRICT;
-- One row per budget a reservation is held in, so that each window sum is one index range.
CREATE TABLE holds (
  reservation_id TEXT NOT NULL REFERENCES reservations (id),
  budget TEXT NOT NULL,
  origin TEXT NOT NULL,
  held_msat INTEGER NOT NULL CHECK (held_msat >= 0),
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'committed', 'released')),
  spent_msat INTEGER CHECK (spent_msat >= 0),
  committed_at INTEGER,
  CHECK ((state = 'committed') = (committed_at IS NOT NULL AND spent_msat IS NOT NULL)),
  PRIMARY KEY (reservation_id, budget)
) STRICT, WITHOUT ROWID;
CREATE INDEX holds_open ON holds (budget, origin) WHERE state = 'open';
CREATE INDEX holds_spent ON holds (budget, committed_at, spent_msat) WHERE state = 'committed';
CREATE INDEX holds_spent_origin ON holds (budget, origin, committed_at, spent_msat)
  WHERE state = 'committed';
-- Running sums of committed spend, so the 'total' window costs one lookup however long the history.
CREATE TABLE spend_totals (
  budget TEXT PRIMARY KEY,
  spent_msat INTEGER NOT NULL
) STRICT;
CREATE TABLE spend_totals_by_origin (
  budget TEXT NOT NULL,
  origin TEXT NOT NULL,
  spent_msat INTEGER NOT NULL,
  PRIMARY KEY (budget, origin)
) STRICT, WITHOUT ROWID;
CREATE TABLE disabled_budgets (
  budget TEXT PRIMARY KEY,
  disabled_at INTEGER NOT NULL
) STRICT;
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  time INTEGER NOT NULL,
  tags TEXT NOT NULL,
  url TEXT NOT NULL,
  origin TEXT NOT NULL,
  protocol TEXT NOT NULL,
  -- decimal text: token base units may not fit 64 bits
  amount TEXT NOT NULL CHECK (amount <> '' AND amount NOT GLOB '*[^0-9]*'),
  unit TEXT NOT NULL,
  amount_msat INTEGER NOT NULL CHECK (amount_msat >= 0),
  fee_msat INTEGER NOT NULL CHECK (fee_msat >= 0),
  rate TEXT,
  reference TEXT NOT NULL,
  proof TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  payee TEXT,
  resume TEXT
) STRICT;
CREATE INDEX payments_time ON payments (time);
CREATE INDEX payments_pending ON payments (time) WHERE status = 'pending';
CREATE TABLE credentials (
  origin TEXT NOT NULL,
  scope TEXT NOT NULL,
  protocol TEXT NOT NULL,
  header_name TEXT NOT NULL,
  header_value TEXT NOT NULL,
  expires_at INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (origin, scope)
) STRICT;
