//! A backup looks at each entry of a directory by its name in that directory, open, rather than
//! by its whole path.
//!
//! `lstat("/home/u/app/cache/ab/thumb-1.jpg")` walks every component of the path again, for
//! every file; `statx(dir, "thumb-1.jpg")` looks up one name. On a folder of small files the
//! path walks were about a tenth of a backup's time (BENCHMARKS.md, "Looking at files by name").
//! An entry given by its path (a source path named on the command line) is looked at by path.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Statx, StatxFlags};

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
pub(crate) fn lstat_at(dir: Option<&File>, name: &OsStr, path: &Path) -> io::Result<Stat> {
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

/// Opens the regular file `name` of the open directory `dir` for reading; by `path` when there
/// is no directory. A symlink put in the file's place since it was looked at is refused, not
/// followed: the backup records what the listing saw, a file, or nothing.
pub(crate) fn open_at(dir: Option<&File>, name: &OsStr, path: &Path) -> io::Result<File> {
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

#[cfg(test)]
mod tests {
    use super::*;
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
            let by_name = lstat_at(Some(&dir), OsStr::new(name), &path).unwrap();
            let by_path = lstat_at(None, OsStr::new(name), &path).unwrap();
            assert_eq!(by_name, by_path, "{name}");
            assert_eq!(
                by_name,
                Stat::from(&std::fs::symlink_metadata(&path).unwrap())
            );
        }
        let s = lstat_at(Some(&dir), OsStr::new("a.txt"), &file).unwrap();
        assert!(s.is_file() && s.file_type() == FileType::RegularFile);
        assert_eq!(s.file.size, 5);
        let l = lstat_at(Some(&dir), OsStr::new("link"), &tmp.path().join("link")).unwrap();
        assert!(l.file_type() == FileType::Symlink && !l.is_file());
        let d = lstat_at(Some(&dir), OsStr::new("sub"), &tmp.path().join("sub")).unwrap();
        assert!(d.file_type() == FileType::Directory && !d.is_file());
    }

    #[test]
    fn opening_by_name_reads_the_file_and_refuses_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"hello").unwrap();
        symlink("a.txt", tmp.path().join("link")).unwrap();
        let dir = File::open(tmp.path()).unwrap();
        let mut f = open_at(Some(&dir), OsStr::new("a.txt"), Path::new("unused")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "hello");
        let e = open_at(Some(&dir), OsStr::new("link"), Path::new("unused")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        let e = lstat_at(Some(&dir), OsStr::new("gone"), Path::new("unused")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
