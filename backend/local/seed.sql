-- imagefs local catalog: seed data.
-- Run once by sqlite3_exec right after schema.sql, on an empty database.
-- Hand-written rows, expanded over the regions with INSERT ... SELECT.
--
-- Image ids are a pure function of the seed row, the same on every machine:
--   key = region_row * 1000 + kind_offset + edition_index
--     kind_offset: public 0 (editions 1..499), market 500, custom 900
--   n   = (key * 2654435761) % 36^8          (2654435761 is coprime with 36,
--                                             so distinct keys give distinct n)
--   id  = 'img-' || 8 base-36 digits of n, most significant first.

-- Public images: one row per OS edition, present in every region ----------
-- fee: the Windows license fee, charged only outside the Chinese mainland.

CREATE TEMP TABLE _pub (
	idx	INTEGER PRIMARY KEY,
	name	TEXT NOT NULL,
	os_name	TEXT NOT NULL,
	os_type	TEXT NOT NULL,
	platform TEXT NOT NULL,
	arch	TEXT NOT NULL,
	bits	INTEGER NOT NULL,
	size_gb	INTEGER NOT NULL,
	created	TEXT NOT NULL,		-- UTC, converted to unix seconds below
	fee	TEXT,
	description TEXT NOT NULL
);

INSERT INTO _pub (idx, name, os_name, os_type, platform, arch, bits, size_gb, created, fee, description) VALUES
	( 1, 'TencentOS Server 2.4 (TK4)', 'TencentOS Server 2.4 (TK4) 64-bit', 'linux', 'TencentOS', 'x86_64', 64, 20, '2020-11-18 02:00:00', NULL,
	     'TencentOS Server 2.4 with the TK4 kernel, compatible with CentOS 7 user space and tuned for Tencent Cloud virtual machines.'),
	( 2, 'TencentOS Server 3.1 (TK4)', 'TencentOS Server 3.1 (TK4) 64-bit', 'linux', 'TencentOS', 'x86_64', 64, 20, '2021-12-07 03:30:00', NULL,
	     'TencentOS Server 3.1 with the TK4 kernel, compatible with CentOS 8 user space, with long-term security updates from Tencent.'),
	( 3, 'TencentOS Server 4 for x86_64', 'TencentOS Server 4 64-bit', 'linux', 'TencentOS', 'x86_64', 64, 20, '2025-09-16 01:00:00', NULL,
	     'TencentOS Server 4, the independent Tencent distribution built from OpenCloudOS Stream, with the TK5 kernel and cloud-init.'),
	( 4, 'TencentOS Server 4 for ARM64', 'TencentOS Server 4 ARM64', 'linux', 'TencentOS', 'arm64', 64, 20, '2025-09-16 01:30:00', NULL,
	     'TencentOS Server 4 for ARM64 instances, with the TK5 kernel and the Tencent Cloud agents preinstalled.'),
	( 5, 'OpenCloudOS 8.8 64bit', 'OpenCloudOS 8.8 64-bit', 'linux', 'OpenCloudOS', 'x86_64', 64, 20, '2023-06-27 06:00:00', NULL,
	     'OpenCloudOS 8.8, the community enterprise Linux distribution compatible with RHEL 8, with security patches applied.'),
	( 6, 'OpenCloudOS 9 64bit', 'OpenCloudOS 9 64-bit', 'linux', 'OpenCloudOS', 'x86_64', 64, 20, '2026-02-10 02:00:00', NULL,
	     'OpenCloudOS 9, built independently from upstream sources with kernel 6.6, systemd and DNF package management.'),
	( 7, 'CentOS 7.9 64bit', 'CentOS 7.9 64-bit', 'linux', 'CentOS', 'x86_64', 64, 20, '2020-12-14 08:00:00', NULL,
	     'CentOS 7.9 (2009) minimal installation with the Tencent Cloud agents; upstream maintenance ended in June 2024.'),
	( 8, 'CentOS 8.2 64bit', 'CentOS 8.2 64-bit', 'linux', 'CentOS', 'x86_64', 64, 20, '2020-07-22 08:00:00', NULL,
	     'CentOS 8.2 (2004) minimal installation; upstream maintenance ended in December 2021, consider Rocky Linux or OpenCloudOS.'),
	( 9, 'CentOS 6.10 32bit', 'CentOS 6.10 32-bit', 'linux', 'CentOS', 'i386', 32, 20, '2019-03-05 04:00:00', NULL,
	     'CentOS 6.10 for i386, kept for legacy 32-bit applications; it no longer receives upstream updates.'),
	(10, 'Ubuntu Server 18.04.1 LTS 64bit', 'Ubuntu Server 18.04.1 LTS 64-bit', 'linux', 'Ubuntu', 'x86_64', 64, 20, '2019-02-20 02:00:00', NULL,
	     'Ubuntu Server 18.04.1 LTS (Bionic Beaver) with the default user ubuntu and SSH password login disabled for root.'),
	(11, 'Ubuntu Server 20.04 LTS 64bit', 'Ubuntu Server 20.04 LTS 64-bit', 'linux', 'Ubuntu', 'x86_64', 64, 20, '2020-05-12 02:00:00', NULL,
	     'Ubuntu Server 20.04 LTS (Focal Fossa) with the Tencent Cloud mirror configured for apt.'),
	(12, 'Ubuntu Server 22.04 LTS 64bit', 'Ubuntu Server 22.04 LTS 64-bit', 'linux', 'Ubuntu', 'x86_64', 64, 20, '2022-05-09 02:00:00', NULL,
	     'Ubuntu Server 22.04 LTS (Jammy Jellyfish) with the Tencent Cloud mirror configured for apt.'),
	(13, 'Ubuntu Server 22.04 LTS ARM64', 'Ubuntu Server 22.04 LTS ARM64', 'linux', 'Ubuntu', 'arm64', 64, 20, '2022-11-03 02:00:00', NULL,
	     'Ubuntu Server 22.04 LTS (Jammy Jellyfish) for ARM64 instances.'),
	(14, 'Ubuntu Server 24.04 LTS 64bit', 'Ubuntu Server 24.04 LTS 64-bit', 'linux', 'Ubuntu', 'x86_64', 64, 20, '2024-05-08 02:00:00', NULL,
	     'Ubuntu Server 24.04 LTS (Noble Numbat) with kernel 6.8 and the Tencent Cloud mirror configured for apt.'),
	(15, 'Ubuntu Server 16.04.1 LTS 32bit', 'Ubuntu Server 16.04.1 LTS 32-bit', 'linux', 'Ubuntu', 'i386', 32, 20, '2019-06-11 02:00:00', NULL,
	     'Ubuntu Server 16.04.1 LTS (Xenial Xerus) for i386, for 32-bit software that cannot move to a 64-bit system.'),
	(16, 'Debian 10.2 64bit', 'Debian GNU/Linux 10.2 64-bit', 'linux', 'Debian', 'x86_64', 64, 20, '2019-12-03 05:00:00', NULL,
	     'Debian 10.2 (buster) minimal system with OpenSSH and cloud-init.'),
	(17, 'Debian 11.1 64bit', 'Debian GNU/Linux 11.1 64-bit', 'linux', 'Debian', 'x86_64', 64, 20, '2021-10-19 05:00:00', NULL,
	     'Debian 11.1 (bullseye) minimal system with OpenSSH and cloud-init.'),
	(18, 'Debian 12.0 64bit', 'Debian GNU/Linux 12.0 64-bit', 'linux', 'Debian', 'x86_64', 64, 20, '2023-07-04 05:00:00', NULL,
	     'Debian 12 (bookworm) minimal system with OpenSSH and cloud-init.'),
	(19, 'Debian 12.0 ARM64', 'Debian GNU/Linux 12.0 ARM64', 'linux', 'Debian', 'arm64', 64, 20, '2023-08-15 05:00:00', NULL,
	     'Debian 12 (bookworm) for ARM64 instances, minimal system with OpenSSH and cloud-init.'),
	(20, 'Rocky Linux 8.6 64bit', 'Rocky Linux 8.6 64-bit', 'linux', 'Rocky Linux', 'x86_64', 64, 20, '2022-07-05 03:00:00', NULL,
	     'Rocky Linux 8.6 (Green Obsidian), a community enterprise distribution bug-for-bug compatible with RHEL 8.'),
	(21, 'Rocky Linux 9.0 64bit', 'Rocky Linux 9.0 64-bit', 'linux', 'Rocky Linux', 'x86_64', 64, 20, '2022-09-20 03:00:00', NULL,
	     'Rocky Linux 9.0 (Blue Onyx), a community enterprise distribution compatible with RHEL 9.'),
	(22, 'AlmaLinux 8.6 64bit', 'AlmaLinux 8.6 64-bit', 'linux', 'AlmaLinux', 'x86_64', 64, 20, '2022-08-02 03:00:00', NULL,
	     'AlmaLinux 8.6 (Sky Tiger), a free enterprise Linux binary compatible with RHEL 8.'),
	(23, 'AlmaLinux 9.0 64bit', 'AlmaLinux 9.0 64-bit', 'linux', 'AlmaLinux', 'x86_64', 64, 20, '2022-10-11 03:00:00', NULL,
	     'AlmaLinux 9.0 (Emerald Puma), a free enterprise Linux binary compatible with RHEL 9.'),
	(24, 'openSUSE Leap 15.5 64bit', 'openSUSE Leap 15.5 64-bit', 'linux', 'openSUSE', 'x86_64', 64, 20, '2023-08-29 07:00:00', NULL,
	     'openSUSE Leap 15.5 minimal server with zypper pointed at the Tencent Cloud mirror.'),
	(25, 'FreeBSD 13.2 64bit', 'FreeBSD 13.2 64-bit', 'linux', 'FreeBSD', 'x86_64', 64, 20, '2023-05-23 07:00:00', NULL,
	     'FreeBSD 13.2-RELEASE with UFS root file system and the pkg repository configured.'),
	(26, 'FreeBSD 14.0 64bit', 'FreeBSD 14.0 64-bit', 'linux', 'FreeBSD', 'x86_64', 64, 20, '2024-01-16 07:00:00', NULL,
	     'FreeBSD 14.0-RELEASE with UFS root file system and the pkg repository configured.'),
	(27, 'Windows Server 2012 R2 Datacenter 64bit English', 'Windows Server 2012 R2 Datacenter 64-bit English', 'windows', 'Windows', 'x86_64', 64, 40, '2019-04-16 09:00:00', '0.09 USD/hour',
	     'Windows Server 2012 R2 Datacenter, English edition, activated, with the latest cumulative updates at build time.'),
	(28, 'Windows Server 2012 R2 Datacenter 64bit Chinese', 'Windows Server 2012 R2 Datacenter 64-bit Chinese', 'windows', 'Windows', 'x86_64', 64, 40, '2019-04-16 09:30:00', '0.09 USD/hour',
	     'Windows Server 2012 R2 Datacenter, Simplified Chinese edition, activated, with the latest cumulative updates at build time.'),
	(29, 'Windows Server 2016 Datacenter 64bit English', 'Windows Server 2016 Datacenter 64-bit English', 'windows', 'Windows', 'x86_64', 64, 50, '2019-09-24 09:00:00', '0.10 USD/hour',
	     'Windows Server 2016 Datacenter, English edition, activated, with the latest cumulative updates at build time.'),
	(30, 'Windows Server 2016 Datacenter 64bit Chinese', 'Windows Server 2016 Datacenter 64-bit Chinese', 'windows', 'Windows', 'x86_64', 64, 50, '2019-09-24 09:30:00', '0.10 USD/hour',
	     'Windows Server 2016 Datacenter, Simplified Chinese edition, activated, with the latest cumulative updates at build time.'),
	(31, 'Windows Server 2019 Datacenter 64bit English', 'Windows Server 2019 Datacenter 64-bit English', 'windows', 'Windows', 'x86_64', 64, 50, '2020-03-17 09:00:00', '0.12 USD/hour',
	     'Windows Server 2019 Datacenter, English edition, activated, with the latest cumulative updates at build time.'),
	(32, 'Windows Server 2019 Datacenter 64bit Chinese', 'Windows Server 2019 Datacenter 64-bit Chinese', 'windows', 'Windows', 'x86_64', 64, 50, '2020-03-17 09:30:00', '0.12 USD/hour',
	     'Windows Server 2019 Datacenter, Simplified Chinese edition, activated, with the latest cumulative updates at build time.'),
	(33, 'Windows Server 2022 Datacenter 64bit English', 'Windows Server 2022 Datacenter 64-bit English', 'windows', 'Windows', 'x86_64', 64, 50, '2022-01-18 09:00:00', '0.14 USD/hour',
	     'Windows Server 2022 Datacenter, English edition, activated, with the latest cumulative updates at build time.'),
	(34, 'Windows Server 2022 Datacenter 64bit Chinese', 'Windows Server 2022 Datacenter 64-bit Chinese', 'windows', 'Windows', 'x86_64', 64, 50, '2026-01-20 09:00:00', '0.14 USD/hour',
	     'Windows Server 2022 Datacenter, Simplified Chinese edition, rebuilt in January 2026 with the latest cumulative updates.');

-- Marketplace images: one row per product, present in every region -------
-- base: the _pub edition the product is built on (gives the OS fields).
-- price_cn for mainland regions, price_intl for the others.

CREATE TEMP TABLE _mkt (
	idx	INTEGER PRIMARY KEY,
	name	TEXT NOT NULL,
	base	INTEGER NOT NULL REFERENCES _pub(idx),
	size_gb	INTEGER NOT NULL,
	provider TEXT NOT NULL,
	price_cn TEXT NOT NULL,
	price_intl TEXT NOT NULL,
	created	TEXT NOT NULL,
	description TEXT NOT NULL
);

INSERT INTO _mkt (idx, name, base, size_gb, provider, price_cn, price_intl, created, description) VALUES
	( 1, 'LNMP (Nginx+PHP7.4+MySQL5.7) CentOS 7.9', 7, 20, 'Shenzhen Yunlan Software Co., Ltd.', 'free', 'free', '2021-04-13 06:00:00',
	     'Nginx 1.20, PHP 7.4 with PHP-FPM and MySQL 5.7 on CentOS 7.9; the database root password is written to /root/lnmp.txt on first boot.'),
	( 2, 'LAMP (Apache2.4+PHP8.2+MySQL8.0) Ubuntu 22.04', 12, 20, 'Shenzhen Yunlan Software Co., Ltd.', '9.90 CNY/month', '1.49 USD/month', '2023-03-21 06:00:00',
	     'Apache 2.4, PHP 8.2 and MySQL 8.0 on Ubuntu 22.04 with phpMyAdmin and Let''s Encrypt certbot ready to use.'),
	( 3, 'Java JDK 17 + Tomcat 9 Ubuntu 22.04', 12, 20, 'Hangzhou Mingdu Network Technology Co., Ltd.', 'free', 'free', '2022-09-06 03:00:00',
	     'OpenJDK 17 and Apache Tomcat 9 running as a systemd service on port 8080, with the manager application disabled by default.'),
	( 4, 'vsftpd FTP Server CentOS 7.9', 7, 20, 'Chengdu Tianfu Cloud Services Co., Ltd.', '5.00 CNY/month', '0.79 USD/month', '2021-07-27 03:00:00',
	     'vsftpd 3.0 FTP server with passive mode preconfigured and users jailed to their home directories; open ports 21 and 39000-40000.'),
	( 5, 'Nginx 1.24 Web Server Debian 12', 18, 20, 'Chengdu Tianfu Cloud Services Co., Ltd.', 'free', 'free', '2023-09-12 03:00:00',
	     'Nginx 1.24 from the official repository on Debian 12, with HTTP/2, gzip and a hardened TLS configuration template.'),
	( 6, 'Docker CE 24 on Ubuntu 22.04', 12, 20, 'Stackmint Cloud Solutions Ltd.', 'free', 'free', '2023-10-17 04:00:00',
	     'Docker CE 24 with the compose plugin on Ubuntu 22.04, the registry mirror of Tencent Cloud configured in /etc/docker/daemon.json.'),
	( 7, 'Docker CE 24 ARM64 TencentOS 4', 4, 20, 'Stackmint Cloud Solutions Ltd.', 'free', 'free', '2025-10-28 04:00:00',
	     'Docker CE 24 with the compose plugin on TencentOS Server 4 for ARM64 instances.'),
	( 8, 'WordPress 6.4 LAMP', 12, 20, 'Hangzhou Mingdu Network Technology Co., Ltd.', '19.90 CNY/month', '0.05 USD/hour', '2023-11-14 02:00:00',
	     'WordPress 6.4 on Apache, PHP 8.1 and MySQL 8.0; open http://<public IP>/wp-admin to finish the setup.'),
	( 9, 'Discuz! X3.5 Q&A', 7, 20, 'Shenzhen Yunlan Software Co., Ltd.', '29.00 CNY/month', '0.06 USD/hour', '2024-02-27 02:00:00',
	     'Discuz! X3.5 community and Q&A forum on Nginx, PHP 7.4 and MySQL 5.7, with the installer ready at /install.'),
	(10, 'Node.js 20 LTS Ubuntu 22.04', 12, 20, 'Stackmint Cloud Solutions Ltd.', 'free', 'free', '2024-04-09 05:00:00',
	     'Node.js 20 LTS with npm, pnpm and PM2 on Ubuntu 22.04, the npm registry mirror preconfigured.'),
	(11, 'Python 3.11 Django 4.2', 14, 20, 'Hangzhou Mingdu Network Technology Co., Ltd.', 'free', 'free', '2024-06-18 05:00:00',
	     'Python 3.11, Django 4.2 LTS, Gunicorn and Nginx on Ubuntu 24.04, with a sample project under /srv/django.'),
	(12, 'GitLab CE 16 Ubuntu 22.04', 12, 50, 'Stackmint Cloud Solutions Ltd.', '49.00 CNY/month', '0.12 USD/hour', '2023-12-05 05:00:00',
	     'GitLab Community Edition 16 (Omnibus) on Ubuntu 22.04; needs at least 4 vCPUs and 8 GB of memory.'),
	(13, 'Redis 7.2 TencentOS 3.1', 2, 20, 'Chengdu Tianfu Cloud Services Co., Ltd.', '9.90 CNY/month', '0.02 USD/hour', '2024-01-23 07:00:00',
	     'Redis 7.2 with persistence (AOF) enabled and protected mode on; the password is in /etc/redis/redis.conf.'),
	(14, 'MySQL 8.0 Database Server', 21, 20, 'Chengdu Tianfu Cloud Services Co., Ltd.', '9.90 CNY/month', '0.02 USD/hour', '2022-11-29 07:00:00',
	     'MySQL Community Server 8.0 on Rocky Linux 9 with a tuned my.cnf for 4 GB to 16 GB instances and daily dumps to /data/backup.'),
	(15, 'BT Panel 8.0 Linux', 7, 20, 'Guangzhou Qiming Information Technology Co., Ltd.', 'free', 'free', '2023-07-18 08:00:00',
	     'BT Panel 8.0 web hosting control panel; the panel address, user name and password are printed by the bt default command.'),
	(16, 'PHP 8.2 + Nginx TencentOS 3.1', 2, 20, 'Guangzhou Qiming Information Technology Co., Ltd.', '15.00 CNY/month', '0.04 USD/hour', '2024-08-20 08:00:00',
	     'PHP 8.2 with PHP-FPM, Composer and common extensions behind Nginx 1.24 on TencentOS Server 3.1.'),
	(17, 'IIS 10 + ASP.NET 4.8 Windows Server 2019', 31, 50, 'Guangzhou Qiming Information Technology Co., Ltd.', '39.00 CNY/month', '0.08 USD/hour', '2022-03-15 08:00:00',
	     'IIS 10 with ASP.NET 4.8, .NET 8 hosting bundle and Web Deploy on Windows Server 2019 Datacenter.');

-- Custom images of the demo accounts, all in ap-guangzhou (region row 1) --

CREATE TEMP TABLE _cust (
	idx	INTEGER PRIMARY KEY,
	owner	TEXT NOT NULL,
	name	TEXT NOT NULL,
	base	INTEGER NOT NULL REFERENCES _pub(idx),
	size_gb	INTEGER NOT NULL,
	created	TEXT NOT NULL,
	source	TEXT NOT NULL,
	description TEXT NOT NULL
);

INSERT INTO _cust (idx, owner, name, base, size_gb, created, source, description) VALUES
	(1, '100000000001', 'web-server-2026', 12, 50, '2026-01-12 03:20:00', 'instance:ins-3f9k2m7q',
	    'Nginx front end with the company site deployed, taken before the January release.'),
	(2, '100000000001', 'build-agent', 2, 100, '2026-02-03 11:45:00', 'instance:ins-8h4t1x6c',
	    'CI build agent: GCC 12, CMake, Docker and the runner registered to the team project.'),
	(3, '100000000002', 'ml-training-base', 12, 200, '2026-01-28 07:10:00', 'instance:ins-p2w7n5r9',
	    'CUDA 12.4, cuDNN 9, PyTorch 2.3 and the data loaders; base for the GPU training instances.'),
	(4, '100000000002', 'staging-db', 21, 100, '2026-02-17 14:00:00', 'instance:ins-c6v0b3z8',
	    'MySQL 8.0 staging database with anonymised data from the weekly production snapshot.');

-- Staging: every image with its id key, then one insert computes the ids --

CREATE TEMP TABLE _stage (
	key	INTEGER PRIMARY KEY,
	region	TEXT NOT NULL,
	kind	TEXT NOT NULL,
	owner	TEXT NOT NULL,
	name	TEXT NOT NULL,
	os_name	TEXT,
	os_type	TEXT,
	platform TEXT,
	arch	TEXT,
	bits	INTEGER,
	size_gb	INTEGER,
	created	INTEGER NOT NULL,
	description TEXT,
	source	TEXT,
	provider TEXT,
	price	TEXT
);

INSERT INTO _stage
SELECT r.row * 1000 + 0 + p.idx, r.name, 'public', 'tencentcloud', p.name,
       p.os_name, p.os_type, p.platform, p.arch, p.bits, p.size_gb,
       CAST(strftime('%s', p.created) AS INTEGER), p.description, NULL, NULL,
       CASE WHEN p.os_type = 'windows' AND r.mainland = 0 THEN p.fee END
FROM regions r CROSS JOIN _pub p;

INSERT INTO _stage
SELECT r.row * 1000 + 500 + m.idx, r.name, 'market', m.provider, m.name,
       p.os_name, p.os_type, p.platform, p.arch, p.bits, m.size_gb,
       CAST(strftime('%s', m.created) AS INTEGER), m.description, NULL, m.provider,
       CASE WHEN r.mainland = 1 THEN m.price_cn ELSE m.price_intl END
FROM regions r CROSS JOIN _mkt m JOIN _pub p ON p.idx = m.base;

INSERT INTO _stage
SELECT r.row * 1000 + 900 + c.idx, r.name, 'custom', c.owner, c.name,
       p.os_name, p.os_type, p.platform, p.arch, p.bits, c.size_gb,
       CAST(strftime('%s', c.created) AS INTEGER), c.description, c.source, NULL, NULL
FROM regions r CROSS JOIN _cust c JOIN _pub p ON p.idx = c.base
WHERE r.name = 'ap-guangzhou';

-- 36^7 = 78364164096, 36^6 = 2176782336, 36^5 = 60466176, 36^4 = 1679616,
-- 36^3 = 46656, 36^2 = 1296, 36^8 = 2821109907456.
INSERT INTO images (id, region, kind, owner, name, os_name, os_type, platform,
                    arch, bits, size_gb, state, progress, created, mtime,
                    description, source, provider, price, error)
SELECT 'img-'
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 78364164096) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 2176782336) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 60466176) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 1679616) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 46656) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 1296) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', (n / 36) % 36 + 1, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyz', n % 36 + 1, 1),
       region, kind, owner, name, os_name, os_type, platform,
       arch, bits, size_gb, 'NORMAL', NULL, created, created,
       description, source, provider, price, NULL
FROM (SELECT *, (key * 2654435761) % 2821109907456 AS n FROM _stage)
ORDER BY key;

-- Sharing: 100000000002 shares ml-training-base (key 1903) with 100000000001.

INSERT INTO shares (image, account)
VALUES ((SELECT row FROM images WHERE id = 'img-sgkrxg3j'), '100000000001');

DROP TABLE _stage;
DROP TABLE _cust;
DROP TABLE _mkt;
DROP TABLE _pub;
