-- Tasks and the Idempotency-Keys that created them. Usage and outcome live in plain columns so
-- operators can query them; lifecycle events update them under a status guard (repository.py).
CREATE TABLE tasks (
    id                          uuid        PRIMARY KEY,
    tenant_id                   text        NOT NULL,
    status                      text        NOT NULL CHECK (status IN
        ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')),
    prompt                      text        NOT NULL,
    model                       text        NOT NULL,
    metadata                    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    started_at                  timestamptz,
    finished_at                 timestamptz,
    input_tokens                bigint      NOT NULL DEFAULT 0,
    output_tokens               bigint      NOT NULL DEFAULT 0,
    cache_creation_input_tokens bigint      NOT NULL DEFAULT 0,
    cache_read_input_tokens     bigint      NOT NULL DEFAULT 0,
    -- (attempt, step) of the newest task.progressed applied; older ones are ignored
    progress_attempt            integer,
    progress_step               integer,
    error_code                  text,
    error_message               text,
    result_summary              text
);

-- GET /internal/tasks: one tenant's tasks, newest first, optionally of one status.
CREATE INDEX tasks_tenant_newest ON tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX tasks_tenant_status_newest ON tasks (tenant_id, status, created_at DESC, id DESC);

-- A key answers with its task until expires_at; after that the row may be replaced.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    task_id      uuid        NOT NULL REFERENCES tasks (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
