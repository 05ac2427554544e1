-- Hedge store, SQLite, version 4: the scheduler reads the queue in its own order (priority first, then the
-- earliest deadline with no deadline last, then the oldest) through this index, never sorting the table.
-- `Store::schedule_queue` uses exactly this predicate and ORDER BY (`deadline IS NULL` puts NULLs last, which
-- an index on `deadline` alone cannot do in SQLite).
CREATE INDEX jobs_schedule ON jobs (priority DESC, deadline IS NULL, deadline, id)
    WHERE state IN ('pending', 'placing', 'recovering');
