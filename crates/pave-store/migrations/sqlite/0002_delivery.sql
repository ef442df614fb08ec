-- Delivery facts reported from CI/CD, incident tools and git, for the DORA metrics. No
-- foreign keys to services: history outlives a deleted service. Columns, not JSON, so that
-- reading a million deployments stays cheap. `seq` is the id of the event that last changed
-- the row: readers that keep a copy catch up with `WHERE seq > last seen`.
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    commit_sha TEXT,
    previous_sha TEXT,
    commits TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX deployments_stream ON deployments (environment, service, started_at);
CREATE INDEX deployments_seq ON deployments (seq);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    detected_at BIGINT,
    resolved_at BIGINT,
    severity TEXT NOT NULL,
    deployment TEXT,
    title TEXT,
    updated_at BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX incidents_opened ON incidents (opened_at);
CREATE INDEX incidents_seq ON incidents (seq);

CREATE TABLE changes (
    sha TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    authored_at BIGINT NOT NULL,
    committed_at BIGINT NOT NULL,
    merged_at BIGINT,
    updated_at BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX changes_service ON changes (service, committed_at);
CREATE INDEX changes_seq ON changes (seq);
