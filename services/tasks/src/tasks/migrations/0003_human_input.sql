-- Human input (issue 18): a task may wait for its client's answer to one question at a time.
ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks
    ADD CONSTRAINT tasks_status_check CHECK (status IN
        ('queued', 'running', 'waiting_for_input', 'cancelling', 'succeeded', 'failed',
         'cancelled')),
    ADD COLUMN max_wait_seconds  double precision,  -- NULL for tasks stored before it existed
    -- the question the task waits on: set by task.input_requested, cleared by the answer
    ADD COLUMN question_id       uuid,
    ADD COLUMN question          text,
    ADD COLUMN question_asked_at timestamptz,
    ADD COLUMN question_attempt  integer,
    ADD COLUMN question_step     integer;
