-- imagefs local catalog, schema version 2: image import.
-- Run by backend/local/local.c on a version 1 catalog (and after the seed on a
-- new one), in the same transaction that sets PRAGMA user_version = 2.

ALTER TABLE images ADD COLUMN format TEXT;	-- qcow2 | vmdk | vhd | raw
ALTER TABLE images ADD COLUMN sha256 TEXT;	-- of the imported bytes

CREATE TABLE imports (			-- downloads to do or under way
	image	INTEGER PRIMARY KEY REFERENCES images(row) ON DELETE CASCADE,
	url	TEXT NOT NULL,			-- as written, credentials too
	sha256	TEXT,				-- what the bytes must hash to
	pid	INTEGER,			-- the daemon downloading it
	heartbeat INTEGER			-- when it last said so
);
