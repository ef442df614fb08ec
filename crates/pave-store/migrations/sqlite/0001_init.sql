-- The event log: append-only; `id` is the position, strictly increasing in commit order.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_kind_id ON events (kind, id);
CREATE INDEX events_subject_id ON events (subject, id);

-- Catalog projections. `doc` is the resource's canonical JSON document.
CREATE TABLE teams (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    production BOOLEAN NOT NULL,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE services (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES teams (name),
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX services_owner ON services (owner);

CREATE TABLE service_dependencies (
    service TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    depends_on TEXT NOT NULL REFERENCES services (name),
    PRIMARY KEY (service, depends_on)
);
CREATE INDEX service_dependencies_target ON service_dependencies (depends_on);

-- API tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);

-- Every mutating request, allowed or denied.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_time ON audit (time);
