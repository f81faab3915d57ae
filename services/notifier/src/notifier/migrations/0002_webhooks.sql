-- Webhooks (ADR 0013): a tenant's endpoints, and one delivery row per (endpoint, event) that is
-- queued in the same transaction as the timeline append, so nothing appended is ever missed.

-- The event's trace context rides along a held event, so its deliveries continue the trace.
ALTER TABLE held_events ADD COLUMN traceparent text;

-- Replay by time reads a tenant's events in append order.
CREATE INDEX timeline_events_tenant_appended ON timeline_events (tenant_id, appended_at);

CREATE TABLE webhook_endpoints (
    id                         uuid        PRIMARY KEY,
    tenant_id                  text        NOT NULL,
    url                        text        NOT NULL,
    description                text        NOT NULL DEFAULT '',
    -- event names, or '{*}' for every one
    event_types                text[]      NOT NULL,
    enabled                    boolean     NOT NULL DEFAULT true,
    disabled_reason            text,
    -- the signing secrets, Fernet-encrypted with RELAY_WEBHOOKS_ENCRYPTION_KEYS: reading this
    -- table alone does not let anyone forge a signature
    secret                     text        NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    -- the first failure since the last success; long enough ago, the endpoint is disabled
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    tenant_id        text        NOT NULL,
    -- the webhook-id header: the event's id, the same on every attempt (and on a replay)
    event_id         uuid        NOT NULL,
    type             text        NOT NULL,
    task_id          uuid,
    seq              integer,
    -- exactly the bytes that are signed and sent, every attempt
    body             text        NOT NULL,
    traceparent      text,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    last_attempt_at  timestamptz,
    -- while pending: when it is due; a worker that claims it moves it past its lease, so a
    -- worker that dies mid-attempt leaves it due again (same webhook-id, at least once)
    next_attempt_at  timestamptz,
    -- the clock, not the transaction's start: deliveries queued together keep their order
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (last_attempt_at)
    WHERE status <> 'pending';
