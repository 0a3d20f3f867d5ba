-- Each app's own emulator clock offset (docs/emulator.md): an app's admin moves only its own
-- app's time. The effective offset of an app is the server-wide one (meta.clock_offset_ms, the
-- operator's part: serve --clock-offset, timserver clock set) plus its row here. An offset
-- stored before this migration stays where it was, as the server-wide part.
CREATE TABLE app_clocks (
    sdkappid  BIGINT PRIMARY KEY,
    offset_ms BIGINT NOT NULL   -- milliseconds added to the server-wide offset; never 0 (no row)
);

-- Servers refresh their copy of the emulator state.
UPDATE meta SET value = value + 1 WHERE name = 'emulator_version';
