-- imagefs local catalog, schema version 1 (PRAGMA user_version).
-- One table per mapping. Created by backend/local/local.c on first open, then
-- backend/local/seed.sql fills it.

CREATE TABLE settings (
	key	TEXT PRIMARY KEY,
	value	INTEGER NOT NULL
);

CREATE TABLE regions (
	row	INTEGER PRIMARY KEY,		-- stable small number, 1..
	name	TEXT NOT NULL UNIQUE,		-- ap-guangzhou
	title	TEXT NOT NULL,			-- South China (Guangzhou)
	mainland INTEGER NOT NULL,		-- 1 inside the Chinese mainland
	copy	INTEGER NOT NULL		-- 1 when image duplication works
);

CREATE TABLE images (
	row	INTEGER PRIMARY KEY,		-- the inode base, never reused
	id	TEXT UNIQUE,			-- img-xxxxxxxx, NULL while pending
	region	TEXT NOT NULL REFERENCES regions(name),
	kind	TEXT NOT NULL CHECK (kind IN ('public', 'market', 'custom')),
	owner	TEXT NOT NULL,			-- uin, 'tencentcloud' or provider
	name	TEXT NOT NULL,
	os_name	TEXT,
	os_type	TEXT,				-- linux | windows
	platform TEXT,
	arch	TEXT,				-- x86_64 | i386 | arm64
	bits	INTEGER,
	size_gb	INTEGER,
	state	TEXT NOT NULL DEFAULT 'NORMAL',	-- PENDING while mkdir'ed only
	progress INTEGER,
	created	INTEGER NOT NULL,		-- unix seconds
	mtime	INTEGER NOT NULL,		-- last change, unix seconds
	description TEXT,
	source	TEXT,
	provider TEXT,
	price	TEXT,
	error	TEXT
);
CREATE INDEX images_folder ON images (region, kind);	-- listings, row order
CREATE INDEX images_name ON images (region, kind, name);

CREATE TABLE shares (
	row	INTEGER PRIMARY KEY,
	image	INTEGER NOT NULL REFERENCES images(row) ON DELETE CASCADE,
	account	TEXT NOT NULL,
	UNIQUE (image, account)
);
CREATE INDEX shares_account ON shares (account);

CREATE TABLE peers (			-- folders made with mkdir shared/<uin>
	account	TEXT NOT NULL,
	region	TEXT NOT NULL,
	peer	TEXT NOT NULL,
	PRIMARY KEY (account, region, peer)
);

CREATE TABLE ops (			-- operations charged per account, region, day
	account	TEXT NOT NULL,
	region	TEXT NOT NULL,
	day	TEXT NOT NULL,			-- YYYY-MM-DD in UTC+08:00
	count	INTEGER NOT NULL,
	PRIMARY KEY (account, region, day)
);

CREATE TABLE changes (			-- what other daemons must invalidate
	seq	INTEGER PRIMARY KEY AUTOINCREMENT,
	image	INTEGER,
	region	TEXT NOT NULL,
	owner	TEXT,
	old_name TEXT,
	new_name TEXT,
	peer	TEXT,
	origin	INTEGER NOT NULL		-- the daemon that made it
);
