-- API keys: one tenant each. Only the key's sha256 is stored; the prefix is a non-secret handle
-- for operators (revoke-key --prefix) and logs.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    key_hash     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz NULL,
    last_used_at timestamptz NULL
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);
