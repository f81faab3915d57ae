-- Human input (issue 18, ADR 0022). A run that asked its client a question is 'waiting': no
-- worker and no SQS message hold it. What it needs to go on is saved with it:
-- checkpoint: the conversation (messages, the pending ask_user call, the results of the other
--   tool calls of that reply) and the attempt's counters (calls, steps, usage, cost, artifact
--   ids, writes, wall time used);
-- question_id: the question it waits on; wait_deadline_at: when it fails with input_timeout;
-- answer: the client's answer, stored when a worker resumes the run, so a resumed attempt that
--   dies is resumed again from the same point;
-- run_files: the workspace's files at the question, restored on resume.
ALTER TABLE runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('running', 'waiting', 'succeeded', 'failed', 'cancelled')),
    ADD COLUMN checkpoint jsonb,
    ADD COLUMN question_id uuid,
    ADD COLUMN wait_deadline_at timestamptz,
    ADD COLUMN answer text;
CREATE INDEX runs_waiting ON runs (wait_deadline_at) WHERE status = 'waiting';

CREATE TABLE run_files (
    task_id uuid  NOT NULL REFERENCES runs (task_id) ON DELETE CASCADE,
    path    text  NOT NULL,
    content bytea NOT NULL,
    PRIMARY KEY (task_id, path)
);
