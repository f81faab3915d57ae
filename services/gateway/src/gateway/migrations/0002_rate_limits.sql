-- Per-tenant rate-limit overrides (relay admin set-limits). A NULL column keeps the gateway's
-- default (RELAY_RATE_LIMIT_*); no row at all means every default.
CREATE TABLE rate_limit_overrides (
    tenant_id            text PRIMARY KEY,
    requests_per_second  double precision NULL CHECK (requests_per_second > 0),
    requests_burst       integer NULL CHECK (requests_burst >= 1),
    submits_per_second   double precision NULL CHECK (submits_per_second > 0),
    submits_burst        integer NULL CHECK (submits_burst >= 1),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
