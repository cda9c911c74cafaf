/*
 * embed.S - the catalog's schema and seed, kept as SQL files in the
 * repository and linked into the daemon as NUL-terminated strings.
 */
	.section .rodata
	.global imagefs_schema_sql
imagefs_schema_sql:
	.incbin "backend/local/schema.sql"
	.byte 0
	.global imagefs_regions_sql
imagefs_regions_sql:
	.incbin "backend/local/regions.sql"
	.byte 0
	.global imagefs_seed_sql
imagefs_seed_sql:
	.incbin "backend/local/seed.sql"
	.byte 0
	.global imagefs_schema2_sql
imagefs_schema2_sql:
	.incbin "backend/local/schema-2.sql"
	.byte 0
	.global imagefs_schema3_sql
imagefs_schema3_sql:
	.incbin "backend/local/schema-3.sql"
	.byte 0
	.global imagefs_schema4_sql
imagefs_schema4_sql:
	.incbin "backend/local/schema-4.sql"
	.byte 0
	.global imagefs_schema5_sql
imagefs_schema5_sql:
	.incbin "backend/local/schema-5.sql"
	.byte 0
	.global imagefs_schema6_sql
imagefs_schema6_sql:
	.incbin "backend/local/schema-6.sql"
	.byte 0
	.section .note.GNU-stack,"",@progbits
