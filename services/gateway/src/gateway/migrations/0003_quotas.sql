-- Per-tenant quota overrides (relay admin set-limits): unfinished tasks, and the estimated cost
-- and tokens of the tasks submitted since 00:00 UTC. NULL keeps the gateway's default
-- (RELAY_QUOTA_*); 0 is no quota for this tenant.
ALTER TABLE rate_limit_overrides
    ADD COLUMN active_tasks    integer          NULL CHECK (active_tasks >= 0),
    ADD COLUMN daily_spend_usd double precision NULL CHECK (daily_spend_usd >= 0),
    ADD COLUMN daily_tokens    bigint           NULL CHECK (daily_tokens >= 0);
