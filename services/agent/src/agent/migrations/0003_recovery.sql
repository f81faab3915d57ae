-- Recovery of runs whose worker died (issue 4).
-- submitted_metadata: the metadata of the task.submitted the run was claimed with, so the
--   recovery sweeper re-runs the task as that same event when its message is gone.
-- runs_stale: the sweeper looks for running runs whose lease expired a while ago.
ALTER TABLE runs ADD COLUMN submitted_metadata jsonb;
CREATE INDEX runs_stale ON runs (lease_expires_at) WHERE status = 'running';
