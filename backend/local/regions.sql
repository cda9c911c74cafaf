-- imagefs: the limits and the regions of the image service.
-- Run right after schema.sql on a new local catalog (before seed.sql).

-- Limits ------------------------------------------------------------------

INSERT INTO settings (key, value) VALUES
	('max_custom_images', 10),
	('max_daily_ops', 5),
	('max_share_accounts', 50),
	('max_import_bytes', 53687091200);

-- Regions -----------------------------------------------------------------

INSERT INTO regions (row, name, title, mainland, copy) VALUES
	( 1, 'ap-guangzhou',     'South China (Guangzhou)',                          1, 1),
	( 2, 'ap-shanghai',      'East China (Shanghai)',                            1, 1),
	( 3, 'ap-nanjing',       'East China (Nanjing)',                             1, 0),
	( 4, 'ap-beijing',       'North China (Beijing)',                            1, 1),
	( 5, 'ap-chengdu',       'Southwest China (Chengdu)',                        1, 0),
	( 6, 'ap-chongqing',     'Southwest China (Chongqing)',                      1, 0),
	( 7, 'ap-hongkong',      'Hong Kong, Macau and Taiwan (China) (Hong Kong)',  0, 1),
	( 8, 'ap-singapore',     'Southeast Asia (Singapore)',                       0, 0),
	( 9, 'ap-jakarta',       'Southeast Asia (Jakarta)',                         0, 0),
	(10, 'ap-seoul',         'Northeast Asia (Seoul)',                           0, 0),
	(11, 'ap-tokyo',         'Northeast Asia (Tokyo)',                           0, 0),
	(12, 'ap-bangkok',       'Southeast Asia (Bangkok)',                         0, 0),
	(13, 'na-siliconvalley', 'US West (Silicon Valley)',                         0, 0),
	(14, 'na-ashburn',       'US East (Virginia)',                               0, 0),
	(15, 'sa-saopaulo',      'South America (Sao Paulo)',                        0, 0),
	(16, 'eu-frankfurt',     'Europe (Frankfurt)',                               0, 0);

