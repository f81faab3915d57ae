-- API keys get a name (what the key is for, shown by list-keys) and an optional expiry: past
-- expires_at a key authenticates no more, as if revoked.
ALTER TABLE api_keys
    ADD COLUMN name       text        NULL CHECK (length(name) BETWEEN 1 AND 100),
    ADD COLUMN expires_at timestamptz NULL;
