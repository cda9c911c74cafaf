# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of the read-only tree (DESIGN.md sections 2 and 4).

Every test mounts its own daemon on its own catalog (the seed of
backend/local/seed.sql) through the mount fixture of conftest.py, and checks
what real syscalls and real tools see. Errors are checked by errno symbol.
"""

import calendar
import errno
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from helpers import (create_exclusive, expect_errno, listing, parse_info,
                     parse_info_pairs, read_info, run)
from conftest import (DEMO_ACCOUNT, PEER_ACCOUNT, fusermount, in_mount_table,
                      require_bin, wait_for)

GZ = 'ap-guangzhou'
ABROAD = 'ap-singapore'         # outside the Chinese mainland, no copy
FOLDERS = ['custom', 'market', 'public', 'shared']
REGION_COUNT = 16
MIN_PUBLIC = 25
MIN_MARKET = 12
MAX_CUSTOM = 10                 # image slots of a region
MAX_OPS = 5                     # operations a day
SHARED_IMAGE = 'ml-training-base'

INFO_KEYS = ['ID', 'NAME', 'TYPE', 'REGION', 'OWNER', 'OS_NAME', 'OS_TYPE',
             'PLATFORM', 'ARCH', 'BITS', 'SIZE_GB', 'STATE', 'PROGRESS',
             'CREATED', 'DESCRIPTION', 'SOURCE', 'PROVIDER', 'PRICE',
             'SHARED_WITH', 'ERROR']
REQUIRED_KEYS = ['ID', 'NAME', 'TYPE', 'REGION', 'OWNER', 'STATE', 'CREATED']
ID_RE = re.compile(r'^img-[0-9a-z]{8}$')
CREATED_RE = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$')
FULLWIDTH_SOLIDUS = '\uff0f'
PROBES = ['.Trash-0', '.Trash-1000', '.hidden', '.directory', 'autorun.inf']



# --- helpers ---------------------------------------------------------------

def display_name(name):
    return name.replace('/', FULLWIDTH_SOLIDUS)


class Image:
    """An image directory found in the tree."""

    def __init__(self, mnt, rel, region, folder, peer):
        self.rel = rel                  # path below the mountpoint
        self.path = os.path.join(mnt, rel)
        self.info_path = os.path.join(self.path, 'info')
        self.entry = os.path.basename(rel)
        self.region = region
        self.folder = folder            # public, market, custom, shared
        self.peer = peer                # shared: the owning account
        self._info = None
        self._raw = None

    @property
    def raw(self):
        if self._raw is None:
            with open(self.info_path, 'rb') as f:
                self._raw = f.read()
        return self._raw

    @property
    def info(self):
        if self._info is None:
            self._info = dict(parse_info(self.raw, self.info_path))
        return self._info


class Tree:
    """The whole mounted tree, walked once: os.walk plus lstat of all."""

    def __init__(self, mnt):
        self.mnt = mnt
        self.stats = {}         # relative path -> lstat ('' is the root)
        self.entries = {}       # relative dir -> its listing
        self.images = []
        self.stats[''] = os.lstat(mnt)
        for top, dirs, files in os.walk(mnt, onerror=self._raise):
            rel_top = os.path.relpath(top, mnt)
            rel_top = '' if rel_top == '.' else rel_top
            self.entries[rel_top] = sorted(dirs + files)
            for name in dirs + files:
                rel = os.path.join(rel_top, name)
                self.stats[rel] = os.lstat(os.path.join(mnt, rel))
            parts = rel_top.split(os.sep) if rel_top else []
            if len(parts) == 3 and parts[1] in ('public', 'market', 'custom'):
                self.images.append(Image(mnt, rel_top, parts[0], parts[1],
                                         None))
            elif len(parts) == 4 and parts[1] == 'shared':
                self.images.append(Image(mnt, rel_top, parts[0], 'shared',
                                         parts[2]))

    @staticmethod
    def _raise(err):
        raise err

    def mode(self, rel):
        return stat.S_IMODE(self.stats[rel].st_mode)

    def regions(self):
        return self.entries['']

    def infos(self):
        return [rel for rel, st in self.stats.items()
                if stat.S_ISREG(st.st_mode)]

    def in_folder(self, region, folder):
        return [img for img in self.images
                if img.region == region and img.folder == folder]


def db_rows(catalog, db, sql, *args):
    return catalog(db).execute(sql, args).fetchall()


def custom_names(catalog, db, owner, region=GZ):
    return sorted(r['name'] for r in db_rows(
        catalog, db, "SELECT name FROM images WHERE kind = 'custom' AND "
        "owner = ? AND region = ? AND id IS NOT NULL", owner, region))


def first_image(mnt, rel):
    names = listing(os.path.join(mnt, rel))
    assert names, '%s is empty' % rel
    return os.path.join(mnt, rel, names[0])


# --- the shape of the tree -------------------------------------------------

def test_root_lists_the_regions(mount, catalog):
    mnt = mount()
    names = listing(mnt)
    assert len(names) == REGION_COUNT
    assert not [n for n in names if n.startswith('.')]
    regions = sorted(r['name'] for r in db_rows(catalog, mnt.db,
                                                'SELECT name FROM regions'))
    assert names == regions
    assert GZ in names and ABROAD in names


def test_regions_list_the_four_folders(mount):
    mnt = mount()
    for region in listing(mnt):
        assert listing(os.path.join(mnt, region)) == FOLDERS, region


def test_modes_and_owner(mount):
    mnt = mount()
    tree = Tree(mnt)
    uid, gid = os.getuid(), os.getgid()
    for rel, st in tree.stats.items():
        assert (st.st_uid, st.st_gid) == (uid, gid), rel
    assert stat.S_ISDIR(tree.stats[''].st_mode)
    for region in tree.regions():
        st = tree.stats[region]
        assert stat.S_ISDIR(st.st_mode) and tree.mode(region) == 0o555, region
        for folder, mode in (('public', 0o555), ('market', 0o555),
                             ('custom', 0o755), ('shared', 0o755)):
            rel = os.path.join(region, folder)
            assert stat.S_ISDIR(tree.stats[rel].st_mode), rel
            assert tree.mode(rel) == mode, '%s: %o' % (rel, tree.mode(rel))
        for peer in tree.entries[os.path.join(region, 'shared')]:
            rel = os.path.join(region, 'shared', peer)
            assert re.fullmatch(r'[0-9]+', peer), rel
            assert stat.S_ISDIR(tree.stats[rel].st_mode), rel
            assert tree.mode(rel) == 0o755, '%s: %o' % (rel, tree.mode(rel))
    expect = {'public': (0o555, 0o444), 'market': (0o555, 0o444),
              'custom': (0o755, 0o644), 'shared': (0o555, 0o444)}
    for img in tree.images:
        dmode, fmode = expect[img.folder]
        info = os.path.join(img.rel, 'info')
        assert stat.S_ISDIR(tree.stats[img.rel].st_mode), img.rel
        assert tree.mode(img.rel) == dmode, '%s: %o' % (img.rel,
                                                        tree.mode(img.rel))
        assert stat.S_ISREG(tree.stats[info].st_mode), info
        assert tree.mode(info) == fmode, '%s: %o' % (info, tree.mode(info))


def test_image_dirs_hold_only_info(mount):
    tree = Tree(mount())
    assert tree.images
    for img in tree.images:
        assert tree.entries[img.rel] == ['info'], img.rel


def test_counts_per_region(mount):
    mnt = mount()
    for region in listing(mnt):
        n_public = len(os.listdir(os.path.join(mnt, region, 'public')))
        n_market = len(os.listdir(os.path.join(mnt, region, 'market')))
        assert n_public >= MIN_PUBLIC, region
        assert n_market >= MIN_MARKET, region


def test_demo_account_custom_images(mount, catalog):
    mnt = mount()
    names = custom_names(catalog, mnt.db, DEMO_ACCOUNT)
    assert len(names) == 2
    assert listing(os.path.join(mnt, GZ, 'custom')) == \
        sorted(display_name(n) for n in names)
    for region in listing(mnt):
        if region != GZ:
            assert listing(os.path.join(mnt, region, 'custom')) == \
                sorted(display_name(n) for n in
                       custom_names(catalog, mnt.db, DEMO_ACCOUNT, region))


def test_default_account_is_the_demo_account(mount, catalog):
    mnt = mount(account=None)
    assert listing(os.path.join(mnt, GZ, 'custom')) == \
        custom_names(catalog, mnt.db, DEMO_ACCOUNT)


def test_image_shared_with_me(mount):
    mnt = mount()
    assert listing(os.path.join(mnt, GZ, 'shared')) == [PEER_ACCOUNT]
    peer_dir = os.path.join(mnt, GZ, 'shared', PEER_ACCOUNT)
    assert listing(peer_dir) == [SHARED_IMAGE]
    img = os.path.join(peer_dir, SHARED_IMAGE)
    st = os.lstat(img)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o555
    info = read_info(os.path.join(img, 'info'))
    assert info['TYPE'] == 'shared'
    assert info['OWNER'] == PEER_ACCOUNT
    assert info['NAME'] == SHARED_IMAGE
    assert info['REGION'] == GZ
    assert 'SHARED_WITH' not in info    # the owner's business
    for region in listing(mnt):
        if region != GZ:
            assert listing(os.path.join(mnt, region, 'shared')) == [], region


def test_image_i_share_is_a_symlink(mount, catalog):
    mine = mount()
    peer = mount(account=PEER_ACCOUNT, db=mine.db)
    assert listing(os.path.join(peer, GZ, 'custom')) == \
        custom_names(catalog, peer.db, PEER_ACCOUNT)
    assert len(custom_names(catalog, peer.db, PEER_ACCOUNT)) == 2
    assert listing(os.path.join(peer, GZ, 'shared')) == [DEMO_ACCOUNT]
    folder = os.path.join(peer, GZ, 'shared', DEMO_ACCOUNT)
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o755
    assert listing(folder) == [SHARED_IMAGE]
    link = os.path.join(folder, SHARED_IMAGE)
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert os.readlink(link) == '../../custom/' + SHARED_IMAGE
    # the link resolves to the peer's own custom image
    via_link = read_info(os.path.join(link, 'info'))
    own = read_info(os.path.join(peer, GZ, 'custom', SHARED_IMAGE, 'info'))
    assert via_link == own
    assert own['TYPE'] == 'custom' and own['OWNER'] == PEER_ACCOUNT
    assert own['SHARED_WITH'] == DEMO_ACCOUNT
    # and it is the image the demo account sees as shared with it
    theirs = read_info(os.path.join(mine, GZ, 'shared', PEER_ACCOUNT,
                                    SHARED_IMAGE, 'info'))
    assert theirs['ID'] == own['ID']


def test_private_images_stay_private(mount, catalog):
    mine = mount()
    peer = mount(account=PEER_ACCOUNT, db=mine.db)
    for viewer, owner, visible in ((mine, PEER_ACCOUNT, {SHARED_IMAGE}),
                                   (peer, DEMO_ACCOUNT, set())):
        private = [r for r in db_rows(
            catalog, mine.db, "SELECT id, name FROM images WHERE kind = "
            "'custom' AND owner = ?", owner) if r['name'] not in visible]
        assert private, 'the seed has no private image of %s' % owner
        tree = Tree(viewer)
        ids = {img.info['ID'] for img in tree.images}
        names = {img.entry for img in tree.images
                 if img.folder in ('custom', 'shared')}
        names |= {os.path.basename(rel) for rel, st in tree.stats.items()
                  if stat.S_ISLNK(st.st_mode)}
        for r in private:
            assert r['id'] not in ids, (viewer.account, dict(r))
            assert display_name(r['name']) not in names, (viewer.account,
                                                           dict(r))
            for img in tree.images:
                assert r['id'].encode() not in img.raw, img.rel


# --- info ------------------------------------------------------------------

def test_info_keys_and_values(mount):
    mnt = mount()
    tree = Tree(mnt)
    assert len(tree.images) > REGION_COUNT * (MIN_PUBLIC + MIN_MARKET)
    for img in tree.images:
        pairs = parse_info_pairs(img.raw, img.info_path)
        keys = [k for k, v in pairs]
        unknown = [k for k in keys if k not in INFO_KEYS]
        assert not unknown, (img.rel, unknown)
        assert keys == sorted(keys, key=INFO_KEYS.index), (img.rel, keys)
        assert len(set(keys)) == len(keys), (img.rel, keys)
        info = dict(pairs)
        for k in REQUIRED_KEYS:
            assert k in info, (img.rel, k)
        assert ID_RE.match(info['ID']), (img.rel, info['ID'])
        assert info['TYPE'] == img.folder, img.rel
        assert info['REGION'] == img.region, img.rel
        assert CREATED_RE.match(info['CREATED']), (img.rel, info['CREATED'])
        assert img.entry in (display_name(info['NAME']),
                             '%s (%s)' % (display_name(info['NAME']),
                                          info['ID'])), img.rel
        if img.folder == 'public':
            assert info['OWNER'] == 'tencentcloud', img.rel
        elif img.folder == 'custom':
            assert info['OWNER'] == DEMO_ACCOUNT, img.rel
        elif img.folder == 'shared':
            assert info['OWNER'] == img.peer, img.rel
        else:
            assert info.get('PROVIDER'), img.rel
            assert info['OWNER'] == info['PROVIDER'], img.rel
        if 'OS_TYPE' in info:
            assert info['OS_TYPE'] in ('linux', 'windows'), img.rel


def test_info_size_is_exact(mount):
    tree = Tree(mount())
    for img in tree.images:
        st = os.stat(img.info_path)
        assert st.st_size == len(img.raw), img.rel
        assert st.st_size > 0


def test_ids_unique_across_tree(mount):
    tree = Tree(mount())
    ids = [img.info['ID'] for img in tree.images]
    dups = {i for i in ids if ids.count(i) > 1}
    assert not dups


def test_windows_license_fee_outside_mainland(mount, catalog):
    mnt = mount()
    mainland = {r['name']: r['mainland'] for r in db_rows(
        catalog, mnt.db, 'SELECT name, mainland FROM regions')}
    assert mainland[GZ] == 1 and mainland[ABROAD] == 0
    tree = Tree(mnt)
    windows = [img for img in tree.images if img.folder == 'public' and
               img.info.get('OS_TYPE') == 'windows']
    for region in (GZ, ABROAD):
        assert [img for img in windows if img.region == region], region
    for img in windows:
        if mainland[img.region]:
            assert 'PRICE' not in img.info, img.rel
        else:
            assert img.info.get('PRICE'), img.rel
    linux = [img for img in tree.images if img.folder == 'public' and
             img.info.get('OS_TYPE') == 'linux']
    assert linux
    assert not [img.rel for img in linux if 'PRICE' in img.info]


def test_arches(mount):
    tree = Tree(mount())
    arches = {img.info.get('ARCH') for img in tree.images}
    assert {'x86_64', 'arm64', 'i386'} <= arches
    assert arches <= {'x86_64', 'arm64', 'i386', None}
    for img in tree.images:
        if 'ARCH' in img.info and 'BITS' in img.info:
            want = '32' if img.info['ARCH'] == 'i386' else '64'
            assert img.info['BITS'] == want, img.rel


def test_times_are_image_times(mount):
    tree = Tree(mount())
    for img in tree.in_folder(GZ, 'public') + tree.in_folder(GZ, 'custom'):
        created = calendar.timegm(time.strptime(img.info['CREATED'],
                                                '%Y-%m-%dT%H:%M:%SZ'))
        st = tree.stats[os.path.join(img.rel, 'info')]
        # seeded images never changed: last change == creation
        assert int(st.st_mtime) == created, img.rel


def test_sh_sources_every_info(mount):
    """sh reads back exactly the values the parser of this file reads."""
    tree = Tree(mount())
    imgs = [img for img in tree.images if img.region in (GZ, ABROAD)]
    script = ('for f in "$@"; do (. "$f" && printf "%s\\0%s\\0%s\\0%s\\0" '
              '"$ID" "$NAME" "$DESCRIPTION" "$OS_NAME") || exit 1; done')
    r = run(['sh', '-c', script, 'sh'] + [img.info_path for img in imgs])
    assert r.returncode == 0, r.stderr
    fields = r.stdout.decode().split('\0')[:-1]
    assert len(fields) == 4 * len(imgs)
    for n, img in enumerate(imgs):
        got = fields[4 * n:4 * n + 4]
        want = [img.info.get(k, '') for k in ('ID', 'NAME', 'DESCRIPTION',
                                               'OS_NAME')]
        assert got == want, img.rel


# --- directories and inodes ------------------------------------------------

def test_dir_nlink_counts_subdirs(mount):
    mnt = mount()
    tree = Tree(mnt)
    for rel, names in tree.entries.items():
        subdirs = [n for n in names if stat.S_ISDIR(
            tree.stats[os.path.join(rel, n) if rel else n].st_mode)]
        assert tree.stats[rel].st_nlink == 2 + len(subdirs), rel or '/'
    for rel in tree.infos():
        assert tree.stats[rel].st_nlink == 1, rel


def test_inodes_unique_and_stable(mount):
    mnt = mount()
    tree = Tree(mnt)
    inos = {}
    for rel, st in tree.stats.items():
        assert st.st_ino not in inos, (rel, inos.get(st.st_ino))
        inos[st.st_ino] = rel
    # let the kernel forget what it can, then look everything up again
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('2\n')
    except OSError:
        pass
    again = Tree(mnt)
    assert again.stats.keys() == tree.stats.keys()
    for rel, st in again.stats.items():
        assert st.st_ino == tree.stats[rel].st_ino, rel
        assert os.stat(os.path.join(mnt, rel)).st_ino == st.st_ino or \
            stat.S_ISLNK(st.st_mode), rel


def test_readdir_inode_matches_stat(mount):
    mnt = mount()
    for rel in ['', GZ, os.path.join(GZ, 'public'), os.path.join(GZ, 'custom'),
                os.path.join(GZ, 'shared'),
                os.path.join(GZ, 'shared', PEER_ACCOUNT)]:
        with os.scandir(os.path.join(mnt, rel)) as it:
            for entry in it:
                assert entry.inode() == os.lstat(entry.path).st_ino, \
                    entry.path


def test_open_files_do_not_grow(mount):
    """Walking and reading the tree again leaves the daemon's fds alone."""
    mnt = mount()
    fds = '/proc/%d/fd' % mnt.proc.pid

    def read_all():
        for img in Tree(mnt).images:
            img.raw
    read_all()
    before = len(os.listdir(fds))
    for _ in range(3):
        read_all()
    assert len(os.listdir(fds)) == before


# --- tools -----------------------------------------------------------------

def test_ls_lR_names_every_image(mount):
    mnt = mount()
    tree = Tree(mnt)
    r = run(['ls', '-lR', mnt])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    for img in tree.images:
        assert any(line.endswith(' ' + img.entry) for line in lines), img.rel


def test_find_counts_info_files(mount):
    mnt = mount()
    tree = Tree(mnt)
    r = run(['sh', '-c', 'find "$1" -type f | wc -l', 'sh', mnt])
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == len(tree.infos()) == len(tree.images)
    r = run(['find', mnt, '-type', 'd', '-name', 'info'])
    assert r.returncode == 0 and r.stdout == b''


def test_grep_finds_arm64(mount):
    mnt = mount()
    r = run(['grep', '-rl', '^ARCH=arm64', mnt])
    assert r.returncode == 0, r.stderr
    files = r.stdout.decode().splitlines()
    assert files
    for f in files:
        assert os.path.basename(f) == 'info'
        assert read_info(f)['ARCH'] == 'arm64'


@pytest.mark.parametrize('folder', ['public', 'market', 'custom', 'shared'])
def test_sh_sources_info(mount, folder):
    mnt = mount()
    if folder == 'shared':
        img = os.path.join(mnt, GZ, 'shared', PEER_ACCOUNT, SHARED_IMAGE)
    else:
        img = first_image(mnt, os.path.join(GZ, folder))
    r = run(['sh', '-c', '. ./info && printf %s "$ID"'], cwd=img)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == read_info(os.path.join(img, 'info'))['ID']


def test_cat_info(mount):
    mnt = mount()
    for folder in ('public', 'custom'):
        info = os.path.join(first_image(mnt, os.path.join(GZ, folder)),
                            'info')
        r = run(['cat', info])
        assert r.returncode == 0, r.stderr
        with open(info, 'rb') as f:
            assert r.stdout == f.read()
        assert r.stdout.startswith(b'ID=img-')


# --- extended attributes ---------------------------------------------------

def test_xattrs_of_images(mount):
    mnt = mount(extra_opts=['xattr'])
    imgs = [first_image(mnt, os.path.join(GZ, f))
            for f in ('public', 'market', 'custom')]
    imgs.append(os.path.join(mnt, GZ, 'shared', PEER_ACCOUNT, SHARED_IMAGE))
    for img in imgs:
        info = read_info(os.path.join(img, 'info'))
        assert os.getxattr(img, 'user.imagefs.id').decode() == info['ID']
        names = [n for n in os.listxattr(img) if n.startswith('user.')]
        for n in names:
            assert n.startswith('user.imagefs.'), (img, n)
        for key, value in info.items():
            name = 'user.imagefs.' + key.lower()
            assert name in names, (img, name)
            assert os.getxattr(img, name).decode() == value, (img, name)


@pytest.mark.parametrize('rel', [GZ, GZ + '/custom'])
def test_xattrs_of_region(mount, rel):
    mnt = mount(extra_opts=['xattr'])
    path = os.path.join(mnt, rel)
    names = os.listxattr(path)
    for n in ('user.imagefs.images', 'user.imagefs.ops_today',
              'user.imagefs.copy'):
        assert n in names, n
    assert os.getxattr(path, 'user.imagefs.images') == \
        b'2/%d' % MAX_CUSTOM
    assert os.getxattr(path, 'user.imagefs.ops_today') == b'0/%d' % MAX_OPS
    # ap-guangzhou can copy images, ap-singapore cannot
    abroad = os.path.join(mnt, rel.replace(GZ, ABROAD))
    assert os.getxattr(abroad, 'user.imagefs.images') == \
        b'0/%d' % MAX_CUSTOM
    assert os.getxattr(path, 'user.imagefs.copy') != \
        os.getxattr(abroad, 'user.imagefs.copy')


def test_getfattr_dumps(mount):
    mnt = mount(extra_opts=['xattr'])
    img = first_image(mnt, os.path.join(GZ, 'custom'))
    ident = read_info(os.path.join(img, 'info'))['ID']
    r = run(['getfattr', '-d', img])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert 'user.imagefs.id="%s"' % ident in out
    r = run(['getfattr', '-d', os.path.join(mnt, GZ, 'custom')])
    assert r.returncode == 0, r.stderr
    assert 'user.imagefs.images="2/%d"' % MAX_CUSTOM in r.stdout.decode()


def test_no_xattrs_without_option(mount):
    mnt = mount()
    img = first_image(mnt, os.path.join(GZ, 'custom'))
    for path, name in ((img, 'user.imagefs.id'),
                       (os.path.join(mnt, GZ), 'user.imagefs.images')):
        expect_errno((errno.ENOTSUP, errno.ENODATA), os.getxattr, path, name)


# --- df -i -----------------------------------------------------------------

def test_statvfs_custom_counts_image_slots(mount):
    mnt = mount()
    sv = os.statvfs(os.path.join(mnt, GZ, 'custom'))
    assert (sv.f_files, sv.f_ffree) == (MAX_CUSTOM, MAX_CUSTOM - 2)
    sv = os.statvfs(os.path.join(mnt, ABROAD, 'custom'))
    assert (sv.f_files, sv.f_ffree) == (MAX_CUSTOM, MAX_CUSTOM)


def test_df_i(mount):
    mnt = mount()
    r = run(['df', '-i', os.path.join(mnt, GZ, 'custom')])
    assert r.returncode == 0, r.stderr
    r = run(['df', '--output=itotal,iavail', os.path.join(mnt, GZ, 'custom')])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split()[-2:] == [str(MAX_CUSTOM),
                                              str(MAX_CUSTOM - 2)]


# --- writes are refused ----------------------------------------------------

def _shared_image(mnt):
    return os.path.join(mnt, GZ, 'shared', PEER_ACCOUNT, SHARED_IMAGE)


def _open_for_write(path):
    with open(path, 'w') as f:
        f.write('NAME=x\n')


WRITES = {
    'mkdir in public': (errno.EROFS, lambda m: (
        os.mkdir, os.path.join(m, GZ, 'public', 'new-image'))),
    'mkdir in market': (errno.EROFS, lambda m: (
        os.mkdir, os.path.join(m, GZ, 'market', 'new-image'))),
    'mkdir in a public image': (errno.EROFS, lambda m: (
        os.mkdir, os.path.join(first_image(m, GZ + '/public'), 'x'))),
    'mkdir in a shared image': (errno.EROFS, lambda m: (
        os.mkdir, os.path.join(_shared_image(m), 'x'))),
    'create in public': (errno.EROFS, lambda m: (
        create_exclusive, os.path.join(m, GZ, 'public', 'new-file'))),
    'write public info': ((errno.EROFS, errno.EACCES), lambda m: (
        _open_for_write, os.path.join(first_image(m, GZ + '/public'),
                                      'info'))),
    'write market info': ((errno.EROFS, errno.EACCES), lambda m: (
        _open_for_write, os.path.join(first_image(m, GZ + '/market'),
                                      'info'))),
    'write shared info': ((errno.EROFS, errno.EACCES), lambda m: (
        _open_for_write, os.path.join(_shared_image(m), 'info'))),
    'unlink public info': (errno.EROFS, lambda m: (
        os.unlink, os.path.join(first_image(m, GZ + '/public'), 'info'))),
    # deleting an image that is not mine (EPERM) or a write into a shared
    # image (EROFS): DESIGN.md section 4 names both
    'unlink shared info': ((errno.EROFS, errno.EPERM), lambda m: (
        os.unlink, os.path.join(_shared_image(m), 'info'))),
    'rename in public': (errno.EROFS, lambda m: (
        os.rename, first_image(m, GZ + '/public'),
        os.path.join(m, GZ, 'public', 'renamed'))),
    'rename in market': (errno.EROFS, lambda m: (
        os.rename, first_image(m, GZ + '/market'),
        os.path.join(m, GZ, 'market', 'renamed'))),
    'symlink in public': (errno.EROFS, lambda m: (
        os.symlink, '../custom/x', os.path.join(m, GZ, 'public', 'x'))),
    'mkdir at the root': (errno.EPERM, lambda m: (
        os.mkdir, os.path.join(m, 'ap-newregion'))),
    'mkdir in a region': (errno.EPERM, lambda m: (
        os.mkdir, os.path.join(m, GZ, 'newfolder'))),
    'trash folder at the root': (errno.EPERM, lambda m: (
        os.mkdir, os.path.join(m, '.Trash-0'))),
    'trash folder of uid 1000 at the root': (errno.EPERM, lambda m: (
        os.mkdir, os.path.join(m, '.Trash-1000'))),
}


@pytest.mark.parametrize('case', list(WRITES))
def test_write_refused(mount, case):
    mnt = mount()
    errnos, build = WRITES[case]
    func, *args = build(mnt)
    before = listing(os.path.dirname(args[-1]))
    expect_errno(errnos, func, *args)
    assert listing(os.path.dirname(args[-1])) == before


def test_refused_write_leaves_info_intact(mount):
    mnt = mount()
    info = os.path.join(first_image(mnt, GZ + '/public'), 'info')
    with open(info, 'rb') as f:
        before = f.read()
    expect_errno((errno.EROFS, errno.EACCES), _open_for_write, info)
    expect_errno((errno.EROFS, errno.EACCES), os.truncate, info, 0)
    with open(info, 'rb') as f:
        assert f.read() == before
    assert os.stat(info).st_size == len(before)


# --- names that do not exist -----------------------------------------------

@pytest.mark.parametrize('probe', PROBES)
def test_probed_names_do_not_exist(mount, probe):
    mnt = mount()
    dirs = ['', GZ, GZ + '/public', GZ + '/market', GZ + '/custom',
            GZ + '/shared', GZ + '/shared/' + PEER_ACCOUNT,
            os.path.relpath(first_image(mnt, GZ + '/public'), mnt),
            os.path.relpath(first_image(mnt, GZ + '/custom'), mnt)]
    for rel in dirs:
        path = os.path.join(mnt, rel, probe)
        for _ in range(2):      # a cached negative entry answers the same
            expect_errno(errno.ENOENT, os.stat, path)
        assert probe not in os.listdir(os.path.join(mnt, rel))


def test_missing_names(mount):
    mnt = mount()
    pub = first_image(mnt, GZ + '/public')
    cus = first_image(mnt, GZ + '/custom')
    missing = ['xx-nowhere', GZ + '/nosuchfolder', GZ + '/public/no such image',
               GZ + '/market/no-such-image', GZ + '/custom/no-such-image',
               GZ + '/shared/' + PEER_ACCOUNT + '/no-such-image',
               GZ + '/shared/100000000009', GZ + '/shared/not-a-uin',
               os.path.relpath(pub, mnt) + '/nosuchfile',
               os.path.relpath(cus, mnt) + '/nosuchfile',
               # a duplicate-style name of an id that does not exist here
               os.path.relpath(pub, mnt) + ' (img-zzzzzzzz)',
               ABROAD + '/custom/' + os.path.basename(cus)]
    for rel in missing:
        path = os.path.join(mnt, rel)
        expect_errno(errno.ENOENT, os.stat, path)
        expect_errno(errno.ENOENT, os.lstat, path)
        expect_errno(errno.ENOENT, open, path, 'rb')


DUP_NAME = 'pytest-dup-image'
SLASH_NAME = 'pytest/slash image'
DUP_FIRST, DUP_SECOND, SLASH_ID = 'img-zz000001', 'img-zz000002', \
    'img-zz000003'


def test_slash_and_duplicate_names(mount, seeded_db, catalog):
    db = seeded_db()
    conn = catalog(db)
    now = int(time.time())
    # the second by id goes in first: id order decides, not row order
    for ident, name in ((DUP_SECOND, DUP_NAME), (DUP_FIRST, DUP_NAME),
                        (SLASH_ID, SLASH_NAME)):
        conn.execute(
            "INSERT INTO images (id, region, kind, owner, name, os_name, "
            "os_type, platform, arch, bits, size_gb, state, created, mtime, "
            "description) VALUES (?, ?, 'public', 'tencentcloud', ?, "
            "'Test OS 1.0 64-bit', 'linux', 'TestOS', 'x86_64', 64, 20, "
            "'NORMAL', ?, ?, 'inserted by test_browse.py')",
            (ident, GZ, name, now, now))
    conn.commit()
    conn.close()

    mnt = mount(db=db)
    public = os.path.join(mnt, GZ, 'public')
    first = os.path.join(public, DUP_NAME)
    second = os.path.join(public, '%s (%s)' % (DUP_NAME, DUP_SECOND))
    slash = os.path.join(public, display_name(SLASH_NAME))
    # by lookup, before any listing fills the kernel's cache
    for path, ident in ((second, DUP_SECOND), (first, DUP_FIRST),
                        (slash, SLASH_ID)):
        assert stat.S_ISDIR(os.stat(path).st_mode), path
        r = run(['cat', os.path.join(path, 'info')])
        assert r.returncode == 0, r.stderr
        assert dict(parse_info(r.stdout))['ID'] == ident, path
    assert os.stat(first).st_ino != os.stat(second).st_ino
    assert read_info(os.path.join(slash, 'info'))['NAME'] == SLASH_NAME
    assert read_info(os.path.join(second, 'info'))['NAME'] == DUP_NAME
    names = os.listdir(public)
    assert DUP_NAME in names
    assert '%s (%s)' % (DUP_NAME, DUP_SECOND) in names
    assert '%s (%s)' % (DUP_NAME, DUP_FIRST) not in names
    assert display_name(SLASH_NAME) in names
    assert len(names) == len(set(names))
    # the first holder is not also reachable under a suffixed name
    expect_errno(errno.ENOENT, os.stat,
                 os.path.join(public, '%s (%s)' % (DUP_NAME, DUP_FIRST)))
    # and the names are per folder: nothing changed elsewhere
    assert DUP_NAME not in os.listdir(os.path.join(mnt, ABROAD, 'public'))


# --- the daemon's life -----------------------------------------------------

def test_unmount_is_clean(mount):
    mnt = mount()
    os.listdir(os.path.join(mnt, GZ, 'public'))
    assert mnt.unmount() == 0
    assert not mnt.problems
    assert not os.path.ismount(mnt)
    assert not in_mount_table(mnt)
    r = subprocess.run(['pgrep', '-f', mnt], stdout=subprocess.PIPE)
    assert r.returncode == 1, 'left running: %s' % r.stdout.decode()


@pytest.mark.skipif('valgrind' in os.environ.get('IMAGEFS_BIN', ''),
                    reason='valgrind delays signals to the daemon')
def test_sigterm_unmounts(mount):
    mnt = mount()
    os.listdir(os.path.join(mnt, GZ, 'custom'))
    mnt.proc.send_signal(signal.SIGTERM)
    assert wait_for(lambda: not os.path.ismount(mnt), 5.0), \
        'still mounted 5 s after SIGTERM'
    assert mnt.proc.wait(timeout=5) == 0
    assert not in_mount_table(mnt)


def test_two_mounts_of_one_account(mount):
    a = mount()
    b = mount(db=a.db)
    assert listing(os.path.join(a, GZ, 'custom')) == \
        listing(os.path.join(b, GZ, 'custom'))
    assert b.unmount() == 0
    assert listing(os.path.join(a, GZ, 'custom'))


def _run_daemon(tmp_path, args):
    """Run imagefs with args on a fresh mountpoint; it must exit by itself."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir(exist_ok=True)
    cmd = [require_bin()] + [a.replace('MNT', os.fspath(mnt)) for a in args]
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail('imagefs %s did not exit' % ' '.join(args))
    finally:
        if in_mount_table(mnt):
            fusermount(mnt, '-u', '-z')


@pytest.mark.parametrize('opt', ['nosuchopt', 'account=abc'])
def test_bad_option(tmp_path, opt):
    db = tmp_path / 'imagefs.db'
    r = _run_daemon(tmp_path, ['-f', '-o', '%s,db=%s' % (opt, db), 'MNT'])
    assert r.returncode != 0
    assert r.stderr.strip()


def test_db_that_is_a_directory(tmp_path):
    db = tmp_path / 'a-directory'
    db.mkdir()
    r = _run_daemon(tmp_path, ['-f', '-o', 'db=%s' % db, 'MNT'])
    assert r.returncode != 0
    assert r.stderr.strip()


def test_version(tmp_path):
    r = _run_daemon(tmp_path, ['--version'])
    assert r.returncode == 0
    out = (r.stdout + r.stderr).decode()
    assert re.search(r'imagefs\D*\d+\.\d+', out, re.IGNORECASE), out


def test_help_lists_own_options_first(tmp_path):
    binary = require_bin()
    r = subprocess.run([binary, '--help'], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    assert r.returncode == 0
    out = r.stdout.decode()
    own = [out.find(o) for o in ('db=', 'account=', 'xattr')]
    assert min(own) >= 0, out
    libfuse = [out.find(o) for o in ('allow_other', 'max_idle_threads',
                                     'clone_fd', 'auto_unmount')]
    libfuse = [i for i in libfuse if i >= 0]
    assert libfuse, 'no libfuse options in --help:\n' + out
    assert max(own) < min(libfuse), out
