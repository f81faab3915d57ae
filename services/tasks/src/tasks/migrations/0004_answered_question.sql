-- The question the task's last answer went to (issue 17): an answer naming it again is a repeat
-- (409 at once), while an answer naming a question the record has not applied yet waits a
-- moment for it (the record applies task.input_requested from its own queue, after the timeline
-- may already show it).
ALTER TABLE tasks ADD COLUMN answered_question_id uuid;
