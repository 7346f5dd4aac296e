-- What an import brought in, by where it came from: `source` names the export (a Slack
-- workspace, a django-conversate database, a Confab installation), `scope` the kind of thing and
-- where ("user", "room", "member:C123", "message:C123"), `key` the thing in it ("U123",
-- "1700000000.000100"), `local_id` the row it became. A second run of the same import finds every
-- key and writes nothing twice; the primary key serves the lookups of one scope.
CREATE TABLE imported (
    source TEXT NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    local_id BIGINT NOT NULL,
    PRIMARY KEY (source, scope, key)
);
