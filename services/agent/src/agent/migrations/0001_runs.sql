-- One row per task this worker pool has run. It is the dedupe for task.submitted (a finished
-- task is never run again) and counts attempts: a redelivery of an unfinished run is attempt+1.
CREATE TABLE runs (
    task_id     uuid        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    status      text        NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    attempt     integer     NOT NULL CHECK (attempt >= 1),
    worker_id   text        NOT NULL,
    steps       integer     NOT NULL DEFAULT 0 CHECK (steps >= 0),
    usage       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
