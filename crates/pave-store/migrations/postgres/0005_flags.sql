-- Feature flags. `doc` is the whole Flag document (project, type, dependencies and one
-- configuration per environment); an archived flag is kept but no longer served.
CREATE TABLE flags (
    name TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    doc TEXT NOT NULL,
    archived_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX flags_project ON flags (project);

-- Per flag and environment: how much traffic it is on for (off, partial, on) and since when,
-- so flag debt (fully on or off for too long) is a query, not a scan of the event log.
CREATE TABLE flag_exposure (
    flag TEXT NOT NULL,
    environment TEXT NOT NULL,
    exposure TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (flag, environment)
);

-- Reusable constraint sets. `id` is the number SDKs see on the wire; never reused.
CREATE TABLE flag_segments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- SDK tokens, scoped to one project (or '*') and one environment. Only a SHA-256 of the
-- secret is kept.
CREATE TABLE flag_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);

-- Evaluation counts SDKs report, per flag, environment and variant ('' holds the yes/no
-- totals; a variant row counts in `yes`).
CREATE TABLE flag_usage (
    flag TEXT NOT NULL,
    environment TEXT NOT NULL,
    variant TEXT NOT NULL,
    yes BIGINT NOT NULL,
    no BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (flag, environment, variant)
);

-- SDK instances that registered (or sent metrics), for "who still reads this flag set".
CREATE TABLE flag_clients (
    app_name TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    sdk TEXT NOT NULL,
    started_at BIGINT,
    interval_ms BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (app_name, instance_id, environment)
);

-- Bumped by every change to what SDKs see (flags, segments, tokens), in the same
-- transaction; serving replicas poll this one row to know when to reload.
CREATE TABLE flag_revision (
    id INTEGER PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO flag_revision (id, revision) VALUES (1, 0);
