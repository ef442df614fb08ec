-- Secrets: one row per service, environment and name. The value is sealed (XChaCha20-Poly1305
-- under the master key, which is never stored here); `sealed` is NULL once the secret is
-- removed, and the row stays so that `version` keeps counting and `seq` (the id of the event
-- that last changed it) tells the engine which replicas run an older configuration.
CREATE TABLE secrets (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    sealed TEXT,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (service, environment, name)
);

-- What a release carries about its own safety: the latest secret scan, dependency audit and
-- SBOM (`kind`), each as the summary the policy gates read; `document` keeps the SBOM itself.
CREATE TABLE release_scans (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    document TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (service, version, kind)
);

-- The id (a hash, never the key) of the master key this database's secrets are sealed under,
-- recorded by the first control plane to start: one started with another key is refused even
-- before any secret exists (replicas on PostgreSQL that each made their own key file).
CREATE TABLE vault (
    slot INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
