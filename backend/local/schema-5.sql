-- imagefs local catalog, schema version 5: folder times.
-- Run by backend/local/local.c on a version 4 catalog (and after the seed on
-- a new one), in the same transaction that sets PRAGMA user_version = 5.
-- Run again on a catalog that has it, it changes nothing.

-- When the folders an account sees last changed, kept by every change
-- (local_log_change), so that a directory's time is one lookup, the same
-- after a remount. peer '' is the owner's custom/; another account is
-- what the two share: the owner's images shared with peer, its links to
-- them, and the folder owner made for peer.
CREATE TABLE IF NOT EXISTS stamps (
	region	TEXT NOT NULL,
	owner	TEXT NOT NULL,
	peer	TEXT NOT NULL,
	mtime	INTEGER NOT NULL,		-- unix seconds
	PRIMARY KEY (region, owner, peer)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stamps_peer ON stamps (region, peer);

-- public/ and market/: the newest of their images
CREATE INDEX IF NOT EXISTS images_mtime ON images (region, kind, mtime);

-- what the catalog holds already
INSERT OR IGNORE INTO stamps (region, owner, peer, mtime)
	SELECT region, owner, '', max(mtime) FROM images
	WHERE kind = 'custom' GROUP BY region, owner;
INSERT OR IGNORE INTO stamps (region, owner, peer, mtime)
	SELECT i.region, i.owner, s.account, max(i.mtime) FROM shares s
	JOIN images i ON i.row = s.image GROUP BY i.region, i.owner, s.account;
