-- Emulator controls (docs/emulator.md): fault rules and the clock offset, shared by every
-- instance and process that uses the database.
CREATE TABLE fault_rules (
    id         BIGSERIAL PRIMARY KEY,
    sdkappid   BIGINT  NOT NULL,
    spec       TEXT    NOT NULL,            -- JSON: what the rule matches and does
    remaining  BIGINT,                      -- "next N matching calls" left; NULL = no count
    matched    BIGINT  NOT NULL DEFAULT 0,  -- matching calls counted so far
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX fault_rules_app ON fault_rules (sdkappid, id);

-- Bumped by every change to fault rules or the clock offset, so that servers refresh their copy.
INSERT INTO meta (name, value) VALUES ('emulator_version', 0);
-- The emulator clock's offset from the wall clock, in milliseconds.
INSERT INTO meta (name, value) VALUES ('clock_offset_ms', 0);
