-- Apps, accounts and kicks. UserIDs are TEXT compared byte for byte (BINARY collation).
CREATE TABLE apps (
    sdkappid      INTEGER PRIMARY KEY,
    secret_key    TEXT    NOT NULL,
    edition       TEXT    NOT NULL,
    admins        TEXT    NOT NULL,            -- JSON array of UserIDs, in the order given
    limits        TEXT    NOT NULL DEFAULT '{}', -- JSON object: command -> calls per second
    account_count INTEGER NOT NULL DEFAULT 0,  -- non-admin accounts, kept in step by writes
    created_at    REAL    NOT NULL
);

CREATE TABLE accounts (
    sdkappid   INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    nick       TEXT,
    face_url   TEXT,
    is_admin   INTEGER NOT NULL DEFAULT 0,
    created_at REAL    NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;

CREATE TABLE kicks (
    sdkappid  INTEGER NOT NULL,
    user_id   TEXT    NOT NULL,
    kicked_at INTEGER NOT NULL,                -- Unix seconds of the latest kick
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;

-- Bumped by every change to apps, so that servers can cache app records safely.
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('apps_version', 0);
