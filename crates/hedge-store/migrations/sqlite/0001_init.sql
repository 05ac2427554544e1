-- Hedge store, SQLite, version 1. Times are Unix seconds, money is micro-dollars, JSON is TEXT.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE teams (
    id                    TEXT PRIMARY KEY,
    monthly_budget_micros INTEGER CHECK (monthly_budget_micros >= 0),
    quotas                TEXT NOT NULL,
    allow_preemption      INTEGER NOT NULL CHECK (allow_preemption IN (0, 1))
) STRICT;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT NOT NULL UNIQUE,
    is_admin     INTEGER NOT NULL CHECK (is_admin IN (0, 1)),
    team_id      TEXT REFERENCES teams (id),
    label        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    CHECK ((is_admin = 1 AND team_id IS NULL) OR (is_admin = 0 AND team_id IS NOT NULL))
) STRICT;

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         TEXT NOT NULL REFERENCES teams (id),
    priority        INTEGER NOT NULL,
    deadline        INTEGER,
    spec            TEXT NOT NULL,
    submitted_at    INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'placing', 'launching', 'running', 'recovering',
                                                   'succeeded', 'failed', 'cancelled')),
    version         INTEGER NOT NULL CHECK (version >= 0),
    current_attempt INTEGER NOT NULL DEFAULT 0 CHECK (current_attempt >= 0),
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_team ON jobs (team_id, id);

CREATE TABLE job_events (
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    seq         INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    explanation TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE launch_attempts (
    job_id          INTEGER NOT NULL REFERENCES jobs (id),
    attempt_no      INTEGER NOT NULL CHECK (attempt_no >= 1),
    idempotency_key TEXT NOT NULL UNIQUE,
    provider        TEXT NOT NULL,
    offer           TEXT NOT NULL,
    region          TEXT,
    zone            TEXT,
    market          TEXT NOT NULL CHECK (market IN ('committed', 'on_demand', 'spot')),
    commitment_id   TEXT,
    accelerator     TEXT,
    gpus            INTEGER NOT NULL CHECK (gpus >= 0),
    driver_handle   TEXT,
    status          TEXT NOT NULL CHECK (status IN ('recorded', 'submitted', 'running', 'succeeded', 'failed',
                                                    'lost', 'cancelled')),
    detail          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (job_id, attempt_no)
) STRICT;
CREATE INDEX attempts_in_flight ON launch_attempts (job_id, attempt_no)
    WHERE status IN ('recorded', 'submitted', 'running');

CREATE TABLE commitments (
    id                  TEXT PRIMARY KEY,
    provider            TEXT NOT NULL,
    accelerator         TEXT NOT NULL,
    region              TEXT,
    gpus                INTEGER NOT NULL CHECK (gpus > 0),
    per_gpu_hour_micros INTEGER NOT NULL CHECK (per_gpu_hour_micros >= 0),
    start_at            INTEGER NOT NULL,
    end_at              INTEGER NOT NULL,
    CHECK (end_at > start_at)
) STRICT;

CREATE TABLE provider_health (
    provider             TEXT PRIMARY KEY,
    state                TEXT NOT NULL CHECK (state IN ('healthy', 'degraded')),
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
    last_heartbeat       INTEGER,
    last_error           TEXT,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE spend (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        INTEGER REFERENCES jobs (id),
    team_id       TEXT NOT NULL REFERENCES teams (id),
    provider      TEXT NOT NULL,
    market        TEXT NOT NULL CHECK (market IN ('committed', 'on_demand', 'spot')),
    amount_micros INTEGER NOT NULL,
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    CHECK (end_at >= start_at)
) STRICT;
CREATE INDEX spend_by_team ON spend (team_id, start_at);
CREATE INDEX spend_by_start ON spend (start_at);
