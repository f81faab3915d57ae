-- A timeline under its row lock, with its held events and whether an event is recorded already
-- (appended, held or late, on any task: event ids are unique across them), in one round trip.
-- One row per held event, or one row with NULL event columns when none is held; no row when the
-- timeline does not exist (or, with p_skip_locked, another writer holds it).
--
-- A function, not one statement: under READ COMMITTED a statement's snapshot is taken before it
-- waits for the lock, so a read folded into the locking statement would miss what the writer
-- before it committed. Each statement of a VOLATILE function takes a snapshot of its own, so the
-- read below sees every writer that held the lock before.
CREATE FUNCTION lock_timeline(p_task uuid, p_event uuid, p_skip_locked boolean)
RETURNS TABLE (
    tenant_id text, last_seq integer, terminal_seq integer, provided text[], recorded boolean,
    event_id uuid, type text, occurred_at timestamptz, data jsonb, provides text[],
    requires text[], terminal boolean, held_since timestamptz, traceparent text
)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
    locked timelines%ROWTYPE;
BEGIN
    IF p_skip_locked THEN
        SELECT * INTO locked FROM timelines WHERE task_id = p_task FOR UPDATE SKIP LOCKED;
    ELSE
        SELECT * INTO locked FROM timelines WHERE task_id = p_task FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT locked.tenant_id, locked.last_seq, locked.terminal_seq, locked.provided, r.recorded,
           h.event_id, h.type, h.occurred_at, h.data, h.provides, h.requires, h.terminal,
           h.held_since, h.traceparent
      FROM (SELECT p_event IS NOT NULL AND (
                   EXISTS (SELECT 1 FROM timeline_events WHERE event_id = p_event)
                OR EXISTS (SELECT 1 FROM held_events WHERE event_id = p_event)
                OR EXISTS (SELECT 1 FROM late_events WHERE event_id = p_event)) AS recorded) AS r
      LEFT JOIN held_events AS h ON h.task_id = p_task;
END;
$$;
