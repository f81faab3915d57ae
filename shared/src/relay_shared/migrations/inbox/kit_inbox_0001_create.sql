-- Inbox (relay_shared.inbox): one row per (subscriber, event) already handled.
CREATE TABLE inbox (
    subscriber  text        NOT NULL,
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber, event_id)
);
