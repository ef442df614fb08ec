-- Who a token acts for: a user (an identity teams list as a member) or a team. A developer
-- token with a scope changes only services its teams own. Tokens made before have no scope:
-- they keep the rights they had, and this event says so where the log is read.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'unscoped';
ALTER TABLE tokens ADD COLUMN scope_subject TEXT;

INSERT INTO events (kind, subject, time, actor, request_id, data)
SELECT 'token.scopes-introduced', 'tokens', CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'migration 0007', NULL,
    '{"unscoped":' || CAST((SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL) AS TEXT)
    || ',"unscopedDevelopers":' || CAST((SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND role = 'developer') AS TEXT)
    || ',"note":"tokens made before scopes existed are unscoped; they keep every right they had: an unscoped developer token may change, release, deploy and set secrets of every team''s service. Scoped tokens (pave token create --user EMAIL or --team TEAM) change only what their teams own."}'
WHERE EXISTS (SELECT 1 FROM tokens WHERE revoked_at IS NULL);
