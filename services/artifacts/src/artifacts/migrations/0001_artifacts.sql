-- Artifacts this service has verified: published ones are downloadable; rejected ones are kept
-- with the reason, so a bad upload is explained rather than silently dropped.
CREATE TABLE artifacts (
    id               uuid        PRIMARY KEY,
    tenant_id        text        NOT NULL,
    task_id          uuid        NOT NULL,
    name             text        NOT NULL,
    content_type     text        NOT NULL,
    size             bigint      NOT NULL CHECK (size >= 0),
    sha256           text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('published', 'rejected')),
    rejection_reason text,
    staging_key      text        NOT NULL,
    object_key       text,
    created_at       timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'published') = (object_key IS NOT NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);

-- The internal list route: one task's published artifacts, oldest first.
CREATE INDEX artifacts_published_by_task ON artifacts (tenant_id, task_id, created_at, id)
    WHERE status = 'published';
