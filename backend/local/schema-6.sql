-- imagefs local catalog, schema version 6: the indexes that keep a
-- commit, an edit and a delete from reading every image.
-- Run by backend/local/local.c on a version 5 catalog (and after the seed on
-- a new one), in the same transaction that sets PRAGMA user_version = 6.
-- Run again on a catalog that has it, it changes nothing.

-- An image's copies still running (by their SOURCE, copy:ID@REGION), which
-- every commit, edit and delete of the image counts: without this index
-- that count read every image of the catalog. Only the copies under way are
-- in it, so it costs nothing for the rest. Its WHERE is the very term of
-- the queries that use it (SQLite uses a partial index only then).
CREATE INDEX IF NOT EXISTS images_copying ON images (source)
	WHERE state NOT IN ('NORMAL', 'IMPORTFAILED', 'PENDING');

-- What a new image of a region is made from when nothing says otherwise:
-- its newest public TencentOS x86_64 image (Q_DEFAULTS, at every commit),
-- found without reading the region's other public images. The WHERE names
-- only columns that no query compares with a bound value: SQLite prepares a
-- statement again at each new binding of a value that a partial index's
-- WHERE compares with a constant (kind = ?3 would, against kind = 'public').
CREATE INDEX IF NOT EXISTS images_defaults ON images (region, kind, created)
	WHERE platform = 'TencentOS' AND arch = 'x86_64';
