-- Failed logins, counted per name tried (real or not) and client address, and per address alone
-- (subject '*'), in a fixed window that starts at the first failure.
CREATE TABLE login_failures (
    subject TEXT NOT NULL,
    address TEXT NOT NULL,
    failures INTEGER NOT NULL,
    first_failed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, address)
);
CREATE INDEX login_failures_first_failed_at ON login_failures (first_failed_at);
-- The per-account counter this replaces: one guess a window kept any account locked.
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN last_failed_login_at;
