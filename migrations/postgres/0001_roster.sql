-- Staff rosters. Instants are BIGINT milliseconds since the epoch (UTC) so one
-- code path serves SQLite and PostgreSQL; every integer is 64-bit.

CREATE TABLE roster_imports (
    id            BIGSERIAL PRIMARY KEY,
    imported_at   BIGINT  NOT NULL,
    source        TEXT    NOT NULL,
    file_name     TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    added         BIGINT  NOT NULL,
    updated       BIGINT  NOT NULL,
    unchanged     BIGINT  NOT NULL,
    deactivated   BIGINT  NOT NULL,
    reactivated   BIGINT  NOT NULL,
    rejected      BIGINT  NOT NULL
);

CREATE TABLE staff (
    id             BIGSERIAL PRIMARY KEY,
    source         TEXT    NOT NULL,
    employee_id    TEXT,
    email          TEXT    NOT NULL,
    first_name     TEXT    NOT NULL DEFAULT '',
    last_name      TEXT    NOT NULL DEFAULT '',
    department     TEXT    NOT NULL DEFAULT '',
    role           TEXT    NOT NULL DEFAULT '',
    facility       TEXT    NOT NULL DEFAULT '',
    manager_email  TEXT,
    time_zone      TEXT,
    attributes     TEXT    NOT NULL DEFAULT '{}',
    active         BIGINT  NOT NULL DEFAULT 1,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    deactivated_at BIGINT,
    import_id      BIGINT REFERENCES roster_imports (id)
);

-- One person per address across all sources: messages are addressed by email.
CREATE UNIQUE INDEX staff_email ON staff (email);
CREATE UNIQUE INDEX staff_source_employee ON staff (source, employee_id);
CREATE INDEX staff_active ON staff (active);

-- What each import changed, for the history an auditor asks about.
CREATE TABLE roster_changes (
    id         BIGSERIAL PRIMARY KEY,
    import_id  BIGINT NOT NULL REFERENCES roster_imports (id),
    staff_id   BIGINT NOT NULL REFERENCES staff (id),
    change     TEXT   NOT NULL,   -- updated | deactivated | reactivated
    detail     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX roster_changes_staff ON roster_changes (staff_id);
