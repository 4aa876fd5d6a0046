-- Every file taken from the drop folder (inbox.dir): claimed first, so that of
-- several instances watching one folder exactly one imports it (the unique
-- claim key: content hash, name, size and modification time), then finished
-- with its outcome. The content hash also finds a file imported before.
CREATE TABLE inbox_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_key    TEXT   NOT NULL UNIQUE,
    sha256       TEXT   NOT NULL,
    file_name    TEXT   NOT NULL,
    kind         TEXT   NOT NULL DEFAULT '',   -- roster | completions, once told
    claimed_by   TEXT   NOT NULL,
    claimed_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT   NOT NULL,              -- importing | imported | rejected | duplicate
    summary      TEXT   NOT NULL DEFAULT '',
    moved_to     TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX inbox_files_sha256 ON inbox_files (sha256, outcome);
CREATE INDEX inbox_files_claimed_at ON inbox_files (claimed_at);
