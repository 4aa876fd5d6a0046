-- Bounces read from the bounce mailbox (delivery status notifications),
-- each matched to the message it answers.
CREATE TABLE bounces (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  BIGINT NOT NULL,
    outbox_id    BIGINT NOT NULL REFERENCES outbox (id),
    staff_id     BIGINT REFERENCES staff (id),
    address      TEXT   NOT NULL,   -- where the message was sent
    kind         TEXT   NOT NULL,   -- hard | soft
    status       TEXT   NOT NULL,   -- enhanced status code, e.g. 5.1.1
    diagnostic   TEXT   NOT NULL DEFAULT '',
    matched_by   TEXT   NOT NULL,   -- verp | message_id
    marked       BIGINT NOT NULL DEFAULT 0,  -- 1: this bounce made the address undeliverable
    UNIQUE (outbox_id, kind)
);
CREATE INDEX bounces_staff ON bounces (staff_id, kind);

-- The address that bounced: the mark holds while the person's address is
-- still this one, so a roster import that changes the address clears it.
ALTER TABLE staff ADD COLUMN bounced_email TEXT;
ALTER TABLE staff ADD COLUMN bounced_at BIGINT;

-- Matching a bounce that carries no VERP token by the original Message-ID.
CREATE INDEX outbox_message_id ON outbox (message_id);
