-- Apps, accounts and kicks. UserIDs are TEXT in the "C" collation: compared and ordered byte for byte.
CREATE TABLE apps (
    sdkappid      BIGINT  PRIMARY KEY,
    secret_key    TEXT    NOT NULL,
    edition       TEXT    NOT NULL,
    admins        TEXT    NOT NULL,             -- JSON array of UserIDs, in the order given
    limits        TEXT    NOT NULL DEFAULT '{}',-- JSON object: command -> calls per second
    account_count BIGINT  NOT NULL DEFAULT 0,   -- non-admin accounts, kept in step by writes
    created_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE accounts (
    sdkappid   BIGINT  NOT NULL,
    user_id    TEXT    COLLATE "C" NOT NULL,
    nick       TEXT,
    face_url   TEXT,
    is_admin   BOOLEAN NOT NULL DEFAULT false,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
);

CREATE TABLE kicks (
    sdkappid  BIGINT NOT NULL,
    user_id   TEXT   COLLATE "C" NOT NULL,
    kicked_at BIGINT NOT NULL,                  -- Unix seconds of the latest kick
    PRIMARY KEY (sdkappid, user_id)
);

-- Bumped by every change to apps (and announced with NOTIFY timserver_apps), so that servers can
-- cache app records safely.
CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta (name, value) VALUES ('apps_version', 0);
