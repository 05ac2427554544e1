-- Hedge store, PostgreSQL, version 2: the `cancelling` job state and the `cancelling` / `orphaned` attempt
-- statuses (both in flight: their GPUs count as used).
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check,
    ADD CONSTRAINT jobs_state_check CHECK (state IN ('pending', 'placing', 'launching', 'running', 'recovering',
                                                     'cancelling', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE launch_attempts DROP CONSTRAINT launch_attempts_status_check,
    ADD CONSTRAINT launch_attempts_status_check CHECK (status IN ('recorded', 'submitted', 'running', 'cancelling',
                                                                  'orphaned', 'succeeded', 'failed', 'lost',
                                                                  'cancelled'));
DROP INDEX attempts_in_flight;
CREATE INDEX attempts_in_flight ON launch_attempts (job_id, attempt_no)
    WHERE status IN ('recorded', 'submitted', 'running', 'cancelling', 'orphaned');
