-- Per-task timelines: the client-visible events of a task in causal order, seq 1..n.
-- The timeline row is the lock every writer takes before assigning the next seq.
CREATE TABLE timelines (
    task_id      uuid        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    last_seq     integer     NOT NULL DEFAULT 0,
    terminal_seq integer,
    -- causal facts the appended events established (ordering.py), e.g. 'started:1'
    provided     text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE timeline_events (
    task_id     uuid        NOT NULL REFERENCES timelines (task_id),
    seq         integer     NOT NULL CHECK (seq >= 1),
    event_id    uuid        NOT NULL UNIQUE,
    tenant_id   text        NOT NULL,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    appended_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, seq)
);

-- Events waiting for their predecessors; released by the next append or by the hold sweeper.
CREATE TABLE held_events (
    event_id    uuid        PRIMARY KEY,
    task_id     uuid        NOT NULL REFERENCES timelines (task_id),
    tenant_id   text        NOT NULL,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    provides    text[]      NOT NULL,
    requires    text[]      NOT NULL,
    terminal    boolean     NOT NULL,
    held_since  timestamptz NOT NULL
);

CREATE INDEX held_events_task ON held_events (task_id);
CREATE INDEX held_events_held_since ON held_events (held_since);

-- Events that arrived after the terminal event: kept for the record (and for dedupe), never
-- appended or streamed, so the terminal event stays last.
CREATE TABLE late_events (
    event_id    uuid        PRIMARY KEY,
    task_id     uuid        NOT NULL REFERENCES timelines (task_id),
    tenant_id   text        NOT NULL,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX late_events_task ON late_events (task_id);
