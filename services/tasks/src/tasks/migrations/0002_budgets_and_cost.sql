-- Budgets (issue 3): each task's effective limits, its estimated cost, and which budget ended it.
-- Tasks stored before budgets existed keep NULL limits (the agent's defaults applied to them).
ALTER TABLE tasks
    ADD COLUMN max_turns         integer,
    ADD COLUMN max_output_tokens integer,
    ADD COLUMN max_wall_seconds  double precision,
    ADD COLUMN max_cost_usd      double precision,  -- NULL also when the task has no cost limit
    ADD COLUMN cost_usd          double precision NOT NULL DEFAULT 0,
    ADD COLUMN error_budget      text,
    ADD CONSTRAINT tasks_limits_all_or_none CHECK (
        (max_turns IS NULL) = (max_output_tokens IS NULL)
        AND (max_turns IS NULL) = (max_wall_seconds IS NULL)
        AND (max_cost_usd IS NULL OR max_turns IS NOT NULL)
    );
