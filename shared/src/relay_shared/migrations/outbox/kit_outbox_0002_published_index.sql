-- Housekeeping (relay_shared.housekeeping) deletes published rows past their retention.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
