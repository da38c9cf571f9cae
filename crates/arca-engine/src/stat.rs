//! A backup looks at each entry of a directory by its name in that directory, open, rather than
//! by its whole path.
//!
//! `lstat("/home/u/app/cache/ab/thumb-1.jpg")` walks every component of the path again, for
//! every file; `statx(dir, "thumb-1.jpg")` looks up one name. On a folder of small files the
//! path walks were about a tenth of a backup's time (BENCHMARKS.md, "Looking at files by name").
//! An entry given by its path (a source path named on the command line) is looked at by path.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, Statx, StatxFlags};

use crate::filecache::Fingerprint;

/// What a backup records of an entry: its type and permissions, owner, a device's number, and
/// the fingerprint the file cache compares (size, times, device and inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub file: Fingerprint,
}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        Stat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            file: Fingerprint {
                size: m.size(),
                mtime: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
                ctime: m.ctime(),
                ctime_nsec: m.ctime_nsec(),
                ino: m.ino(),
                dev: m.dev(),
            },
        }
    }
}

impl From<&Statx> for Stat {
    fn from(s: &Statx) -> Self {
        // Device numbers as `stat` gives them (and as `std` builds them from `statx`), so that
        // a file looked at by name and by path has the same fingerprint.
        let dev: u64 = rustix::fs::makedev(s.stx_dev_major, s.stx_dev_minor);
        let rdev: u64 = rustix::fs::makedev(s.stx_rdev_major, s.stx_rdev_minor);
        Stat {
            mode: u32::from(s.stx_mode),
            uid: s.stx_uid,
            gid: s.stx_gid,
            rdev,
            file: Fingerprint {
                size: s.stx_size,
                mtime: s.stx_mtime.tv_sec,
                mtime_nsec: i64::from(s.stx_mtime.tv_nsec),
                ctime: s.stx_ctime.tv_sec,
                ctime_nsec: i64::from(s.stx_ctime.tv_nsec),
                ino: s.stx_ino,
                dev,
            },
        }
    }
}

impl Stat {
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }
}

/// The fields a backup needs: type, mode, owner, size, times, inode (no birth time, no block
/// counts).
const WANTED: StatxFlags = StatxFlags::BASIC_STATS;

/// The entry `name` of the open directory `dir`, not following a symlink; by `path` when there
/// is no directory (`path` is `dir`/`name`, and names the entry in messages).
pub(crate) fn lstat_at(dir: Option<BorrowedFd<'_>>, name: &OsStr, path: &Path) -> io::Result<Stat> {
    if let Some(dir) = dir {
        let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_SYNC_AS_STAT;
        match rustix::fs::statx(dir, name, flags, WANTED) {
            Ok(s) => return Ok(Stat::from(&s)),
            // A kernel older than `statx` (Linux 4.11): by path, as before.
            Err(rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::symlink_metadata(path).map(|m| Stat::from(&m))
}

/// What the open `fd` is.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let flags = AtFlags::EMPTY_PATH | AtFlags::STATX_SYNC_AS_STAT;
    match rustix::fs::statx(fd, c"", flags, WANTED) {
        Ok(s) => Ok(Stat::from(&s)),
        Err(rustix::io::Errno::NOSYS) => File::from(fd.try_clone_to_owned()?)
            .metadata()
            .map(|m| Stat::from(&m)),
        Err(e) => Err(e.into()),
    }
}

/// Opens the regular file `name` of the open directory `dir` for reading; by `path` when there
/// is no directory. A symlink put in the file's place since it was looked at is refused, not
/// followed: the backup records what the listing saw, a file, or nothing.
pub(crate) fn open_at(dir: Option<BorrowedFd<'_>>, name: &OsStr, path: &Path) -> io::Result<File> {
    match dir {
        Some(dir) => {
            let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
            Ok(File::from(rustix::fs::openat(
                dir,
                name,
                flags,
                Mode::empty(),
            )?))
        }
        None => File::open(path),
    }
}

/// Opens the directory `name` of the open directory `parent` to list it and to look at its
/// entries; by `path` when there is no parent. A symlink in its place is refused, not followed
/// (ELOOP), and so is anything else that is not a directory (ENOTDIR): a directory swapped for a
/// symlink while a backup runs cannot lead the backup out of the tree it was given.
pub(crate) fn open_dir_at(
    parent: Option<BorrowedFd<'_>>,
    name: &OsStr,
    path: &Path,
) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(match parent {
        Some(parent) => rustix::fs::openat(parent, name, flags, Mode::empty())?,
        None => rustix::fs::open(path, flags, Mode::empty())?,
    })
}

/// Opens the directory `rel` (a relative path) below the open directory `from`, one name at a
/// time with [`open_dir_at`], so that no symlink is followed on the way.
pub(crate) fn open_dir_beneath(from: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let mut here: Option<OwnedFd> = None;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let at = here.as_ref().map_or(from, |f| f.as_fd());
        here = Some(open_dir_at(Some(at), name, rel)?);
    }
    here.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The names in the open directory `dir`, without `.` and `..`, read through `buf` (one
/// `getdents` buffer that the walk reuses for every directory). An error ends the listing; it
/// is returned beside the names read before it.
pub(crate) fn list(
    dir: BorrowedFd<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> (Vec<OsString>, Option<io::Error>) {
    let mut names = Vec::new();
    let mut entries = RawDir::new(dir, buf);
    while let Some(entry) = entries.next() {
        match entry {
            Ok(e) => {
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(OsStr::from_bytes(n).to_owned());
                }
            }
            Err(e) => return (names, Some(e.into())),
        }
    }
    (names, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    #[test]
    fn by_name_and_by_path_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.txt");
        std::fs::write(&file, b"hello").unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        symlink("a.txt", tmp.path().join("link")).unwrap();
        let dir = File::open(tmp.path()).unwrap();
        for name in ["a.txt", "sub", "link"] {
            let path = tmp.path().join(name);
            let by_name = lstat_at(Some(dir.as_fd()), OsStr::new(name), &path).unwrap();
            let by_path = lstat_at(None, OsStr::new(name), &path).unwrap();
            assert_eq!(by_name, by_path, "{name}");
            assert_eq!(
                by_name,
                Stat::from(&std::fs::symlink_metadata(&path).unwrap())
            );
        }
        let s = lstat_at(Some(dir.as_fd()), OsStr::new("a.txt"), &file).unwrap();
        assert!(s.is_file() && s.file_type() == FileType::RegularFile);
        assert_eq!(s.file.size, 5);
        let l = lstat_at(
            Some(dir.as_fd()),
            OsStr::new("link"),
            &tmp.path().join("link"),
        )
        .unwrap();
        assert!(l.file_type() == FileType::Symlink && !l.is_file());
        let d = lstat_at(
            Some(dir.as_fd()),
            OsStr::new("sub"),
            &tmp.path().join("sub"),
        )
        .unwrap();
        assert!(d.file_type() == FileType::Directory && !d.is_file());
    }

    #[test]
    fn opening_by_name_reads_the_file_and_refuses_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"hello").unwrap();
        symlink("a.txt", tmp.path().join("link")).unwrap();
        let dir = File::open(tmp.path()).unwrap();
        let mut f = open_at(Some(dir.as_fd()), OsStr::new("a.txt"), Path::new("unused")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "hello");
        let e = open_at(Some(dir.as_fd()), OsStr::new("link"), Path::new("unused")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = lstat_at(Some(dir.as_fd()), OsStr::new("gone"), Path::new("unused")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_directory_opens_listed_and_a_symlink_or_file_in_its_place_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("d")).unwrap();
        for i in 0..3000 {
            // More names than one listing buffer holds.
            std::fs::write(
                root.join("d").join(format!("file-with-a-long-name-{i:05}")),
                b"",
            )
            .unwrap();
        }
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        symlink("elsewhere", root.join("link")).unwrap();
        std::fs::write(root.join("f"), b"x").unwrap();
        let parent = File::open(root).unwrap();
        let parent = Some(parent.as_fd());
        let d = open_dir_at(parent, OsStr::new("d"), Path::new("unused")).unwrap();
        assert_eq!(
            fstat(d.as_fd()).unwrap(),
            Stat::from(&std::fs::symlink_metadata(root.join("d")).unwrap())
        );
        let mut buf = vec![MaybeUninit::uninit(); 4096];
        let (mut names, err) = list(d.as_fd(), &mut buf);
        assert!(err.is_none(), "{err:?}");
        names.sort();
        let want: Vec<OsString> = (0..3000)
            .map(|i| OsString::from(format!("file-with-a-long-name-{i:05}")))
            .collect();
        assert_eq!(names, want);
        // By name and by path alike, a symlink is not followed, even to a directory.
        let e = open_dir_at(parent, OsStr::new("link"), Path::new("unused")).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
            "{e}"
        );
        let e = open_dir_at(None, OsStr::new("link"), &root.join("link")).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
            "{e}"
        );
        let e = open_dir_at(parent, OsStr::new("f"), Path::new("unused")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
        let empty = open_dir_at(None, OsStr::new("elsewhere"), &root.join("elsewhere")).unwrap();
        assert_eq!(list(empty.as_fd(), &mut buf).0, Vec::<OsString>::new());
    }

    #[test]
    fn opening_beneath_follows_no_symlink_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere/b/c")).unwrap();
        symlink(root.join("elsewhere"), root.join("via")).unwrap();
        let from = File::open(root).unwrap();
        let c = open_dir_beneath(from.as_fd(), Path::new("a/b/c")).unwrap();
        assert_eq!(
            fstat(c.as_fd()).unwrap(),
            Stat::from(&std::fs::symlink_metadata(root.join("a/b/c")).unwrap())
        );
        // `via/b/c` resolves by path, but not one name at a time.
        assert!(root.join("via/b/c").is_dir());
        let e = open_dir_beneath(from.as_fd(), Path::new("via/b/c")).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
            "{e}"
        );
        for bad in ["", "a/../a", "/a"] {
            let e = open_dir_beneath(from.as_fd(), Path::new(bad)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:?}");
        }
    }
}
