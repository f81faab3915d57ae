-- Housekeeping (relay_shared.housekeeping) deletes rows past their retention.
CREATE INDEX inbox_received_at ON inbox (received_at);
