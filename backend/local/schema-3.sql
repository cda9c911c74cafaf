-- imagefs local catalog, schema version 3: an import belongs to whoever
-- committed it, and SOURCE shows no secret of its URL.
-- Run by backend/local/local.c on a version 2 catalog, in the same
-- transaction that sets PRAGMA user_version = 3.

ALTER TABLE imports ADD COLUMN account TEXT;	-- the account that committed it
ALTER TABLE imports ADD COLUMN uid INTEGER;	-- the Unix user its daemon ran as

-- An import committed by an older imagefs: whose it is cannot be known, so
-- no daemon may download it. It fails; the user can import it again.
UPDATE images SET state = 'IMPORTFAILED', progress = NULL,
	error = 'interrupted by an upgrade of imagefs: import it again'
	WHERE row IN (SELECT image FROM imports);
DELETE FROM imports;

-- SOURCE never shows a URL's query or fragment (presigned URLs sign there);
-- the user info was never kept. The imports table keeps the URL as written.
UPDATE images SET source = substr(source, 1, instr(source, '?') - 1)
	WHERE source LIKE 'import:%' AND instr(source, '?') > 0;
UPDATE images SET source = substr(source, 1, instr(source, '#') - 1)
	WHERE source LIKE 'import:%' AND instr(source, '#') > 0;
