-- Login state, callbacks and deletion by edition (docs/protocol.md §11).
-- pro apps: account_delete switched on (timserver app allow-delete N on).
ALTER TABLE apps ADD COLUMN allow_delete BOOLEAN NOT NULL DEFAULT false;
-- Third-party callbacks: JSON {"Url": ..., "Token": ..., "Commands": [...]}, or NULL for none.
ALTER TABLE apps ADD COLUMN callback TEXT;

-- Each logged-in device of an account (simulated logins); an Offline device has no row.
CREATE TABLE devices (
    sdkappid BIGINT NOT NULL,
    user_id  TEXT   COLLATE "C" NOT NULL,
    platform TEXT   NOT NULL,   -- iPhone, Android, Web, PC, iPad, Mac
    status   TEXT   NOT NULL,   -- Online | PushOnline
    inst_id  BIGINT NOT NULL,
    login_at DOUBLE PRECISION NOT NULL,   -- Unix seconds on the app's clock
    PRIMARY KEY (sdkappid, user_id, platform)
);

-- UserIDs deleted from a pro app: not importable again before `until` (the app's clock).
CREATE TABLE deletion_bans (
    sdkappid BIGINT NOT NULL,
    user_id  TEXT   COLLATE "C" NOT NULL,
    until    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
);

UPDATE meta SET value = value + 1 WHERE name = 'apps_version';
