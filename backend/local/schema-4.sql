-- imagefs local catalog, schema version 4: a row is never given twice, the
-- catalog has an id, and the change log and peer folders are bounded.
-- Run by backend/local/local.c on a version 3 catalog (and after the seed on
-- a new one), with foreign keys off, in the same transaction that sets
-- PRAGMA user_version = 4. Run again on a catalog that has it, it changes
-- nothing (a catalog whose version was set back by hand).

-- The row of an image or a share is its inode number, which a mount may
-- hold: AUTOINCREMENT keeps a deleted row from being given to the next
-- image. It takes a rebuild of both tables (SQLite's ALTER TABLE
-- procedure: make the new table, copy, drop the old one, rename).
CREATE TEMP TABLE old_sequence AS
	SELECT name, seq FROM sqlite_sequence WHERE name IN ('images', 'shares');
CREATE TABLE images_new (
	row	INTEGER PRIMARY KEY AUTOINCREMENT,	-- the inode base
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
	error	TEXT,
	format	TEXT,				-- qcow2 | vmdk | vhd | raw
	sha256	TEXT				-- of the imported bytes
);
INSERT INTO images_new (row, id, region, kind, owner, name, os_name, os_type,
			platform, arch, bits, size_gb, state, progress,
			created, mtime, description, source, provider, price,
			error, format, sha256)
	SELECT row, id, region, kind, owner, name, os_name, os_type, platform,
	       arch, bits, size_gb, state, progress, created, mtime,
	       description, source, provider, price, error, format, sha256
	FROM images;
DROP TABLE images;
ALTER TABLE images_new RENAME TO images;
CREATE INDEX images_folder ON images (region, kind);	-- listings, row order
CREATE INDEX images_name ON images (region, kind, name);

CREATE TABLE shares_new (
	row	INTEGER PRIMARY KEY AUTOINCREMENT,	-- a link's inode base
	image	INTEGER NOT NULL REFERENCES images(row) ON DELETE CASCADE,
	account	TEXT NOT NULL,
	UNIQUE (image, account)
);
INSERT INTO shares_new (row, image, account)
	SELECT row, image, account FROM shares;
DROP TABLE shares;
ALTER TABLE shares_new RENAME TO shares;
CREATE INDEX shares_account ON shares (account);

-- Rows deleted before this version are not given again either: the change
-- log may name images above the highest row left.
DELETE FROM sqlite_sequence WHERE name IN ('images', 'shares');
INSERT INTO sqlite_sequence (name, seq) VALUES
	('images', max(coalesce((SELECT max(row) FROM images), 0),
		       coalesce((SELECT max(image) FROM changes), 0),
		       coalesce((SELECT seq FROM old_sequence
				 WHERE name = 'images'), 0))),
	('shares', max(coalesce((SELECT max(row) FROM shares), 0),
		       coalesce((SELECT seq FROM old_sequence
				 WHERE name = 'shares'), 0)));
DROP TABLE old_sequence;

-- The catalog's id, 1 .. 2^32 - 1: the FUSE generation of its inodes. A
-- catalog made anew gets another one, so that a mount can tell its rows
-- from the old catalog's same numbers.
INSERT OR IGNORE INTO settings (key, value)
	VALUES ('catalog_id', abs(random() % 4294967295) + 1);

-- The change log keeps its newest max_changes entries, whoever writes it:
-- a daemon reads it every 0.1 s, so that is minutes of changes.
INSERT OR IGNORE INTO settings (key, value) VALUES ('max_changes', 10000);
CREATE TRIGGER IF NOT EXISTS changes_kept AFTER INSERT ON changes
BEGIN
	DELETE FROM changes WHERE seq <= new.seq -
		(SELECT value FROM settings WHERE key = 'max_changes');
END;

-- Folders of peers (mkdir <region>/shared/<uin>) an account may make in a
-- region: as many accounts as its images there may be shared with.
INSERT OR IGNORE INTO settings (key, value) VALUES ('max_peer_folders', 500);
