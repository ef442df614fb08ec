-- Releases: an immutable version of a service, built from one artifact (named by its digest
-- in the content-addressed store). A version is unique per service.
CREATE TABLE releases (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    commit_sha TEXT,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (service, version)
);
CREATE INDEX releases_created ON releases (service, created_at);
