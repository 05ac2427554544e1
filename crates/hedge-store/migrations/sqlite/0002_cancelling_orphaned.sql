-- Hedge store, SQLite, version 2: the `cancelling` job state and the `cancelling` / `orphaned` attempt
-- statuses (both in flight: their GPUs count as used).
--
-- SQLite cannot alter a CHECK constraint, so `jobs` and `launch_attempts` are rebuilt the documented way
-- (https://sqlite.org/lang_altertable.html#otheralter): create the new table, copy, drop the old one, rename.
-- The migration runner turns foreign keys off around this migration's transaction and runs
-- `PRAGMA foreign_key_check` before it commits; ids and the AUTOINCREMENT sequence are kept.
CREATE TEMP TABLE migration_0002_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'jobs';

CREATE TABLE jobs_v2 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id         TEXT NOT NULL REFERENCES teams (id),
    priority        INTEGER NOT NULL,
    deadline        INTEGER,
    spec            TEXT NOT NULL,
    submitted_at    INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'placing', 'launching', 'running', 'recovering',
                                                   'cancelling', 'succeeded', 'failed', 'cancelled')),
    version         INTEGER NOT NULL CHECK (version >= 0),
    current_attempt INTEGER NOT NULL DEFAULT 0 CHECK (current_attempt >= 0),
    updated_at      INTEGER NOT NULL
) STRICT;
INSERT INTO jobs_v2 (id, team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at)
    SELECT id, team_id, priority, deadline, spec, submitted_at, state, version, current_attempt, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_team ON jobs (team_id, id);
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM temp.migration_0002_seq))
    WHERE name = 'jobs' AND EXISTS (SELECT 1 FROM temp.migration_0002_seq);
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'jobs', seq FROM temp.migration_0002_seq WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs');
DROP TABLE temp.migration_0002_seq;

CREATE TABLE launch_attempts_v2 (
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
    status          TEXT NOT NULL CHECK (status IN ('recorded', 'submitted', 'running', 'cancelling', 'orphaned',
                                                    'succeeded', 'failed', 'lost', 'cancelled')),
    detail          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (job_id, attempt_no)
) STRICT;
INSERT INTO launch_attempts_v2 SELECT job_id, attempt_no, idempotency_key, provider, offer, region, zone, market,
    commitment_id, accelerator, gpus, driver_handle, status, detail, created_at, updated_at FROM launch_attempts;
DROP TABLE launch_attempts;
ALTER TABLE launch_attempts_v2 RENAME TO launch_attempts;
CREATE INDEX attempts_in_flight ON launch_attempts (job_id, attempt_no)
    WHERE status IN ('recorded', 'submitted', 'running', 'cancelling', 'orphaned');
