-- imagefs local catalog, schema version 4: folder times.
-- Run by backend/local/local.c on a version 3 catalog (and after the seed on a
-- new one), in the same transaction that sets PRAGMA user_version = 4.

-- When the folders an account sees last changed, kept by every change
-- (local_log_change), so that a directory's time is one lookup, the same
-- after a remount. peer '' is the owner's custom/; another account is
-- what the two share: the owner's images shared with peer, its links to
-- them, and the folder owner made for peer.
CREATE TABLE stamps (
	region	TEXT NOT NULL,
	owner	TEXT NOT NULL,
	peer	TEXT NOT NULL,
	mtime	INTEGER NOT NULL,		-- unix seconds
	PRIMARY KEY (region, owner, peer)
) WITHOUT ROWID;
CREATE INDEX stamps_peer ON stamps (region, peer);

-- public/ and market/: the newest of their images
CREATE INDEX images_mtime ON images (region, kind, mtime);

ALTER TABLE shares ADD COLUMN created INTEGER;	-- unix seconds

-- what the catalog holds already
UPDATE shares SET created = (SELECT mtime FROM images WHERE row = image);
INSERT INTO stamps (region, owner, peer, mtime)
	SELECT region, owner, '', max(mtime) FROM images
	WHERE kind = 'custom' GROUP BY region, owner;
INSERT INTO stamps (region, owner, peer, mtime)
	SELECT i.region, i.owner, s.account, max(i.mtime) FROM shares s
	JOIN images i ON i.row = s.image GROUP BY i.region, i.owner, s.account;
