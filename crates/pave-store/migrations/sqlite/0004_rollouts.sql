-- Delivery engine state: rollouts, routes, replicas and the engine's lease.
-- A rollout per deployment request; `doc` is the whole rollout (plan, step, who, why).
-- `state` is repeated as a column to find the active ones.
CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    state TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rollouts_target ON rollouts (service, environment, id);
CREATE INDEX rollouts_state ON rollouts (state);

-- The desired state of each service in each environment: versions, replicas, weights and
-- the router port (unique: one listener per route).
CREATE TABLE routes (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    port INTEGER NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (service, environment)
);

-- Replicas the runtime started (pid, process start time, port), so a restarted control plane
-- adopts them or knows they are gone.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    doc TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Leases elect the one control plane that runs the delivery engine.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
