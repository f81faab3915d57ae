-- Redelivery safety and cancellation (issue 3).
-- lease_owner / lease_expires_at: the worker running the current attempt renews its lease;
--   another worker may take the run over only once it has expired.
-- deadline_at: when the current attempt's wall-time budget runs out (a worker that finds the
--   run held waits for the later of this and the lease).
-- cancel_requested_at / cancel_reason: a client asked to cancel; the runner stops.
-- submitted: the task.submitted data the run was claimed with.
-- attempt 0 with status 'cancelled': cancelled before any attempt started.
ALTER TABLE runs
    ADD COLUMN lease_owner text,
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN deadline_at timestamptz,
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_reason text,
    ADD COLUMN submitted jsonb,
    ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    ALTER COLUMN worker_id DROP NOT NULL,
    DROP CONSTRAINT runs_attempt_check,
    ADD CONSTRAINT runs_attempt_check CHECK (attempt >= 0);
