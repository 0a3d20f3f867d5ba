-- Emulator controls (docs/emulator.md): fault rules and the clock offset, shared by every
-- process that opens the database (CLI, server workers).
CREATE TABLE fault_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a deleted rule's id stays gone
    sdkappid   INTEGER NOT NULL,
    spec       TEXT    NOT NULL,   -- JSON: what the rule matches and does (timserver.emulator.faults)
    remaining  INTEGER,            -- "next N matching calls" left; NULL = no count
    matched    INTEGER NOT NULL DEFAULT 0,  -- matching calls counted so far (k of the k-th draw)
    created_at REAL    NOT NULL
);
CREATE INDEX fault_rules_app ON fault_rules (sdkappid, id);

-- Bumped by every change to fault rules or the clock offset, so that servers refresh their copy.
INSERT INTO meta (name, value) VALUES ('emulator_version', 0);
-- The emulator clock's offset from the wall clock, in milliseconds.
INSERT INTO meta (name, value) VALUES ('clock_offset_ms', 0);
