-- Hedge store, SQLite, version 3: idempotent submission: a job keeps the client's Idempotency-Key and the SHA-256 of its request; a key is
-- unique per team (only for jobs that have one).
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_sha256 TEXT;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (team_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
