-- Hedge store, SQLite, version 5: the ledger. `price_versions` is the price history (per provider and market,
-- the per-GPU-hour rate in force from `from_at` until the next version). `ledger_segments` holds an ended
-- attempt's priced segments, written in the same transaction as the attempt's final status, unique per
-- (attempt, segment). The legacy `spend` table is kept for the lines booked before this version.
CREATE TABLE price_versions (
    provider            TEXT NOT NULL,
    market              TEXT NOT NULL CHECK (market IN ('committed', 'on_demand', 'spot')),
    from_at             INTEGER NOT NULL,
    per_gpu_hour_micros INTEGER NOT NULL CHECK (per_gpu_hour_micros >= 0),
    PRIMARY KEY (provider, market, from_at)
) STRICT;

CREATE TABLE ledger_segments (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_key              TEXT NOT NULL,
    seq                      INTEGER NOT NULL CHECK (seq >= 0),
    job_id                   INTEGER NOT NULL REFERENCES jobs (id),
    attempt_no               INTEGER NOT NULL,
    team_id                  TEXT NOT NULL,
    provider                 TEXT NOT NULL,
    region                   TEXT,
    zone                     TEXT,
    instance_type            TEXT NOT NULL,
    market                   TEXT NOT NULL CHECK (market IN ('committed', 'on_demand', 'spot')),
    commitment_id            TEXT,
    accelerator              TEXT,
    gpus                     INTEGER NOT NULL CHECK (gpus >= 0),
    start_at                 INTEGER NOT NULL,
    end_at                   INTEGER NOT NULL,
    per_gpu_hour_micros      INTEGER NOT NULL CHECK (per_gpu_hour_micros >= 0),
    list_per_gpu_hour_micros INTEGER NOT NULL CHECK (list_per_gpu_hour_micros >= 0),
    CHECK (end_at > start_at),
    UNIQUE (attempt_key, seq)
) STRICT;
CREATE INDEX ledger_by_start ON ledger_segments (start_at, id);
CREATE INDEX ledger_by_team ON ledger_segments (team_id, start_at);
-- Covers spend by team over a window (`Store::booked_spend_by_team`): an index-only range scan.
CREATE INDEX ledger_spend ON ledger_segments (start_at, team_id, end_at, gpus, per_gpu_hour_micros);

-- What a team's running jobs do once its spend reaches its budget: `wait` (go on; new jobs wait) or `stop`.
ALTER TABLE teams ADD COLUMN on_budget_exceeded TEXT NOT NULL DEFAULT 'wait' CHECK (on_budget_exceeded IN ('wait', 'stop'));
