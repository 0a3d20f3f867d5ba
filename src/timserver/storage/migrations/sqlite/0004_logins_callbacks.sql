-- Login state, callbacks and deletion by edition (docs/protocol.md §11).
-- pro apps: account_delete switched on (timserver app allow-delete N on).
ALTER TABLE apps ADD COLUMN allow_delete INTEGER NOT NULL DEFAULT 0;
-- Third-party callbacks: JSON {"Url": ..., "Token": ..., "Commands": [...]}, or NULL for none.
ALTER TABLE apps ADD COLUMN callback TEXT;

-- Each logged-in device of an account (simulated logins); an Offline device has no row.
CREATE TABLE devices (
    sdkappid INTEGER NOT NULL,
    user_id  TEXT    NOT NULL,
    platform TEXT    NOT NULL,   -- iPhone, Android, Web, PC, iPad, Mac
    status   TEXT    NOT NULL,   -- Online | PushOnline
    inst_id  INTEGER NOT NULL,
    login_at REAL    NOT NULL,   -- Unix seconds on the app's clock
    PRIMARY KEY (sdkappid, user_id, platform)
) WITHOUT ROWID;

-- UserIDs deleted from a pro app: not importable again before `until` (the app's clock).
CREATE TABLE deletion_bans (
    sdkappid INTEGER NOT NULL,
    user_id  TEXT    NOT NULL,
    until    REAL    NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;

UPDATE meta SET value = value + 1 WHERE name = 'apps_version';
