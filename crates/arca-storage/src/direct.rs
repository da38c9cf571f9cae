//! Large files written so that they do not fill the kernel's page cache: streamed (the
//! default) or past the cache with `O_DIRECT`.
//!
//! A restore writes gigabytes that nobody reads back soon, and a backup to a local folder
//! writes packs that it then makes durable with `fdatasync`. Written the usual way, every byte
//! is first copied into a new page of the kernel's cache, which pushes out what the user's other
//! programs had cached, holds the writer back once too much of it is dirty, and is written to
//! the disk later anyway. [`WriteMode`] offers two ways around that:
//!
//! - **Streamed** ([`WriteMode::Streamed`], what [`large_writes`] gives unless set otherwise):
//!   writes go through the cache, but the kernel is asked to write each [`STREAM_WINDOW`] back
//!   as soon as it is complete (`sync_file_range`), and once the window after it is complete
//!   too, the writer waits for it to be on the disk and drops its pages
//!   (`POSIX_FADV_DONTNEED`). The device gets large writes while the writer goes on, a file
//!   never holds more than about two windows of the cache, and the pages given back are the
//!   ones the next window takes, so the cache does not grow. A file is on the disk, and out of
//!   the cache, when [`DirectWriter::finish`] returns; [`DirectWriter::finish_in_flight`]
//!   leaves its last part on its way, for a caller that waits later (a local repository's
//!   packs: the uploader's `fdatasync`, not the packer).
//! - **Direct** ([`WriteMode::Direct`]): with `O_DIRECT` the disk reads the bytes from the
//!   writer's own buffer, and the writer waits for every buffer.
//!
//! Which is faster depends on the host. On session 8's machine, 2 GiB took 1.7–2.0 s direct,
//! against 4.4–4.8 s through the cache without `fsync` and 5.9–16.6 s with it. On session 17's
//! (slower direct writes: `dd oflag=direct` 5.2 s for 2 GiB), a restore of the benchmark corpus
//! took 4.1–5.5 s streamed against 6.8–10.2 s direct, and a day-0 backup 5.1–5.7 s against
//! 7.1–10.3 s (BENCHMARKS.md, session 17). `ARCA_WRITES` (read by the CLI) chooses the mode for
//! such measurements.
//!
//! `O_DIRECT` asks for buffers, file offsets and lengths that are multiples of the device's
//! block size; [`ALIGN`] (4 KiB) covers the devices in use. Bytes are gathered in an
//! [`AlignedBuf`] and written a whole buffer at a time; the last, partial block is written
//! padded with zeros and the file is then cut to its length. A filesystem that refuses
//! `O_DIRECT` (at open, or with `EINVAL` on a write) gets the same bytes through the page cache
//! instead, and one without `sync_file_range` gets them through the cache unstreamed: the
//! outcome is the same file, only slower.

use std::borrow::BorrowMut;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::RangeBuf;

/// The alignment `O_DIRECT` is given: buffer address, file offset and length.
pub const ALIGN: usize = 4096;

/// A fixed-size buffer whose start is aligned to [`ALIGN`], kept by its owner from file to file
/// so that its pages are touched once.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    cap: usize,
    len: usize,
}

impl AlignedBuf {
    /// A buffer of `cap` bytes, rounded up to a multiple of [`ALIGN`].
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(ALIGN).div_ceil(ALIGN) * ALIGN;
        // Over-allocate by one alignment and start where the address is aligned: no unsafe
        // allocation with a custom layout is needed. `raw` never grows, so `start` stays valid.
        let raw = vec![0u8; cap + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        assert!(
            start < ALIGN,
            "a byte slice can always be aligned within ALIGN"
        );
        AlignedBuf {
            raw,
            start,
            cap,
            len: 0,
        }
    }

    fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The filled part extended with zeros to a multiple of [`ALIGN`].
    fn padded(&mut self) -> &[u8] {
        let end = self.len.div_ceil(ALIGN) * ALIGN;
        self.raw[self.start + self.len..self.start + end].fill(0);
        &self.raw[self.start..self.start + end]
    }

    /// Copies as much of `data` as fits; returns how much.
    fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} of {} bytes)", self.len, self.cap)
    }
}

/// How a [`DirectWriter`] gets its bytes to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Past the page cache (`O_DIRECT`); through it where the filesystem refuses that.
    Direct,
    /// Through the page cache, written back whenever the kernel chooses.
    Cached,
    /// Through the page cache, but written back as the file grows, and each part dropped from
    /// the cache once it is on the disk (see [`STREAM_WINDOW`]).
    Streamed,
}

impl WriteMode {
    const ALL: [WriteMode; 3] = [WriteMode::Direct, WriteMode::Cached, WriteMode::Streamed];

    pub fn name(self) -> &'static str {
        match self {
            WriteMode::Direct => "direct",
            WriteMode::Cached => "cached",
            WriteMode::Streamed => "streamed",
        }
    }
}

impl std::str::FromStr for WriteMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        WriteMode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let [a, b, c] = WriteMode::ALL.map(WriteMode::name);
                format!("{s:?} is not one of {a}, {b} or {c}")
            })
    }
}

/// How large files are written: a restore's files of 64 KiB or more, and a local repository's
/// packs. [`WriteMode::Streamed`] unless the program set another with [`set_large_writes`].
pub fn large_writes() -> WriteMode {
    WriteMode::ALL[LARGE_WRITES.load(Ordering::Relaxed) as usize]
}

/// Sets what [`large_writes`] returns, for the whole process (the CLI's `ARCA_WRITES`, for
/// measurements: BENCHMARKS.md compares them on each host).
pub fn set_large_writes(mode: WriteMode) {
    let i = WriteMode::ALL.iter().position(|m| *m == mode);
    LARGE_WRITES.store(i.expect("every mode is in ALL") as u8, Ordering::Relaxed);
}

/// The index in [`WriteMode::ALL`] of [`large_writes`]: streamed (BENCHMARKS.md, session 17).
static LARGE_WRITES: AtomicU8 = AtomicU8::new(2);

/// In [`WriteMode::Streamed`], the kernel is asked to start writing back each this many bytes
/// as soon as they are written, and the writer waits for a part to be on the disk (and drops
/// its pages) only when the part after it is complete. A file holds at most about two windows
/// of the page cache, and the pages it gives back are the ones its next part takes.
pub const STREAM_WINDOW: u64 = 8 << 20;

/// A new file written from start to end, streamed or past the page cache as its [`WriteMode`]
/// says (see the module docs). Pieces are gathered in an [`AlignedBuf`]: all of them past the
/// cache, only the short ones through it (see `passes_from`).
pub struct DirectWriter<B: BorrowMut<AlignedBuf>> {
    file: File,
    path: PathBuf,
    /// Owned, or borrowed from a caller that keeps it from file to file.
    buf: B,
    /// Bytes of the file written so far (all but what `buf` holds).
    pos: u64,
    direct: bool,
    /// Streamed: the bytes before `started` are being written back, and those before
    /// `dropped` are on the disk and out of the cache. `None`: not streamed.
    stream: Option<Stream>,
}

#[derive(Clone, Copy, Debug)]
struct Stream {
    /// [`STREAM_WINDOW`], smaller in tests.
    window: u64,
    started: u64,
    dropped: u64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            window: STREAM_WINDOW,
            started: 0,
            dropped: 0,
        }
    }
}

impl<B: BorrowMut<AlignedBuf>> DirectWriter<B> {
    /// Opens `path` with `options` (which say whether it is created, truncated or must be new)
    /// and writes it from its start through `buf`, as `mode` says. Where the filesystem refuses
    /// `O_DIRECT`, writes go through the cache.
    pub fn open(
        options: &OpenOptions,
        path: &Path,
        mut buf: B,
        mode: WriteMode,
    ) -> io::Result<Self> {
        buf.borrow_mut().len = 0;
        let (file, direct) = match mode == WriteMode::Direct {
            true => match options.clone().custom_flags(libc::O_DIRECT).open(path) {
                Ok(f) => (f, true),
                Err(e) if refused(&e) => (open_after_refusal(options, path)?, false),
                Err(e) => return Err(e),
            },
            false => (options.open(path)?, false),
        };
        Ok(DirectWriter {
            file,
            path: path.to_path_buf(),
            buf,
            pos: 0,
            direct,
            stream: (mode == WriteMode::Streamed).then(Stream::default),
        })
    }

    /// Whether writes still bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends `data`.
    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        // Through the cache, a long piece is not gathered: it is written where it is, after
        // what the buffer holds, in one call. Only the kernel's copy into the cache moves it.
        if !self.direct && data.len() >= passes_from(self.buf.borrow().cap) {
            return self.write_cached(data);
        }
        while !data.is_empty() {
            let buf = self.buf.borrow_mut();
            let n = buf.push(data);
            data = &data[n..];
            if buf.len == buf.cap {
                self.flush(false)?;
            }
        }
        Ok(())
    }

    /// Writes what the buffer holds at `pos`; with `last`, a partial block is padded.
    fn flush(&mut self, last: bool) -> io::Result<()> {
        let buf = self.buf.borrow_mut();
        let len = buf.len;
        if len == 0 {
            return Ok(());
        }
        if self.direct {
            let data = if last { buf.padded() } else { buf.filled() };
            match write_direct(&self.file, data, self.pos) {
                Ok(()) => {
                    self.pos += len as u64;
                    buf.len = 0;
                    return Ok(());
                }
                // The filesystem wants another alignment, or no O_DIRECT for this file after
                // all: go on through the cache from here. Whatever part of the buffer the
                // device took is written again, with the same bytes.
                Err(e) if refused(&e) => self.through_cache()?,
                Err(e) => return Err(e),
            }
        }
        self.write_cached(&[])
    }

    /// Through the cache: writes what the buffer holds, then `data`, at `pos`, empties the
    /// buffer and goes on streaming.
    fn write_cached(&mut self, data: &[u8]) -> io::Result<()> {
        let buf = self.buf.borrow_mut();
        let n = buf.len + data.len();
        write_all_at(&self.file, [buf.filled(), data], self.pos)?;
        buf.len = 0;
        self.pos += n as u64;
        self.stream_on()
    }

    /// Streamed: once a window's worth is written, its write-back is started, and what was
    /// started before it is waited for and dropped from the cache (the end of the file is left
    /// to [`DirectWriter::finish_in_flight`]). A write error the disk reports comes back from
    /// here.
    fn stream_on(&mut self) -> io::Result<()> {
        let Some(s) = self.stream else {
            return Ok(());
        };
        if self.pos - s.started < s.window {
            return Ok(());
        }
        let upto = s.started;
        self.start()?;
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        if upto > s.dropped {
            settle(&self.file, s.dropped, upto - s.dropped)?;
            s.dropped = upto;
        }
        Ok(())
    }

    /// Reopens the file without `O_DIRECT`.
    fn through_cache(&mut self) -> io::Result<()> {
        self.file = File::options().write(true).open(&self.path)?;
        self.direct = false;
        Ok(())
    }

    /// Streamed: starts the write-back of what is written and not yet started. Where the
    /// filesystem has no `sync_file_range`, the file is no longer streamed: the kernel writes
    /// it back as it likes.
    fn start(&mut self) -> io::Result<()> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        // (A length of 0 would mean "to the end of the file".)
        if self.pos == s.started {
            return Ok(());
        }
        let fd = self.file.as_raw_fd();
        match sync_range(
            fd,
            s.started,
            self.pos - s.started,
            libc::SYNC_FILE_RANGE_WRITE,
        ) {
            Ok(()) => {
                s.started = self.pos;
                Ok(())
            }
            Err(e) if unsupported(&e) => {
                self.stream = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes what is gathered, gives the file its exact length and hands it back (still open,
    /// for its metadata and `fdatasync`). A streamed file is on the disk and out of the cache.
    pub fn finish(self) -> io::Result<File> {
        let (file, rest) = self.finish_in_flight()?;
        rest.settle(&file)?;
        Ok(file)
    }

    /// [`DirectWriter::finish`], except that a streamed file's last part may still be on its
    /// way to the disk: the returned [`InFlight`] waits for it and drops it from the cache,
    /// when the caller chooses (after an `fdatasync` of its own, or a few files later), so that
    /// the writer does not wait for the disk at the end of every file.
    pub fn finish_in_flight(mut self) -> io::Result<(File, InFlight)> {
        let padded = self.direct && self.buf.borrow().len % ALIGN != 0;
        self.flush(true)?;
        self.start()?;
        if padded {
            // The padding of the last block is cut off (also when that write was refused and
            // done again through the cache: part of the padding may have reached the file).
            self.file.set_len(self.pos)?;
        }
        let rest = match self.stream {
            Some(s) => InFlight {
                from: s.dropped,
                len: self.pos - s.dropped,
            },
            None => InFlight::default(),
        };
        Ok((self.file, rest))
    }
}

/// The part of a streamed file that [`DirectWriter::finish_in_flight`] left on its way to the
/// disk (empty for the other modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use = "its pages stay in the cache until it is settled"]
pub struct InFlight {
    from: u64,
    len: u64,
}

impl InFlight {
    /// Bytes still on their way.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Waits until the part is on the disk and drops it from the cache; returns a write error
    /// the disk reported. `file` is the file it came with.
    pub fn settle(self, file: &File) -> io::Result<()> {
        match self.len {
            0 => Ok(()),
            len => settle(file, self.from, len),
        }
    }
}

/// Waits until `len` (not 0) bytes at `from` of `file` are on the disk, then drops them from
/// the page cache.
fn settle(file: &File, from: u64, len: u64) -> io::Result<()> {
    let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    sync_range(file.as_raw_fd(), from, len, wait)?;
    // Advice only: pages it cannot drop stay cached, and the file is the same.
    let _ = rustix::fs::fadvise(
        file,
        from,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
    Ok(())
}

/// `path` opened with `options` again, without `O_DIRECT`, after the filesystem refused that.
/// Linux creates the file before it checks for `O_DIRECT`: a file that had to be new
/// (`create_new`) now exists, made by the refused call itself, and is opened and emptied; not
/// through a symlink, should one have been swapped in since.
fn open_after_refusal(options: &OpenOptions, path: &Path) -> io::Result<File> {
    match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => File::options()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path),
        other => other,
    }
}

/// `path` opened for reading with `O_DIRECT`; `None` where the filesystem refuses it.
pub(crate) fn open_for_reading(path: &Path) -> io::Result<Option<File>> {
    match File::options()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if refused(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads up to `len` bytes at `offset` of a file opened with `O_DIRECT` into `buf`, which
/// holds exactly them afterwards (fewer where the file ends); returns how many.
///
/// The read covers whole aligned blocks around the range and lands at an aligned place in
/// `buf`'s allocation, which is kept from call to call; the range starts where `offset` falls
/// in the first block. A read the filesystem refuses (see [`refused`]) is returned as that
/// error: the caller reads again through a file opened without `O_DIRECT`.
pub(crate) fn read_range(
    file: &File,
    offset: u64,
    len: usize,
    buf: &mut RangeBuf,
) -> io::Result<usize> {
    let first = offset / ALIGN as u64 * ALIGN as u64;
    let skip = (offset - first) as usize;
    let span = (skip + len).div_ceil(ALIGN) * ALIGN;
    let bytes = buf.reset();
    bytes.reserve(span + ALIGN);
    let pad = bytes.as_ptr().align_offset(ALIGN);
    // Only growth is zero-filled: earlier contents are overwritten by the read.
    bytes.resize(pad + span, 0);
    let got = pread(file, &mut bytes[pad..], first, true)?;
    let got = got.saturating_sub(skip).min(len);
    bytes.truncate(pad + skip + got);
    buf.start = pad + skip;
    Ok(got)
}

/// Reads up to `len` bytes at `offset` into `buf` through the page cache; returns how many
/// (fewer where the file ends).
pub(crate) fn read_range_cached(
    file: &File,
    offset: u64,
    len: usize,
    buf: &mut RangeBuf,
) -> io::Result<usize> {
    let bytes = buf.reset();
    // Only growth is zero-filled: what the buffer held before is overwritten by the read, and
    // anything past what the read returns is cut off.
    bytes.resize(len, 0);
    let got = pread(file, bytes, offset, false)?;
    bytes.truncate(got);
    Ok(got)
}

/// `sync_file_range(2)` on `len` bytes at `offset` of `fd`, again when interrupted.
fn sync_range(fd: RawFd, offset: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    loop {
        // SAFETY: the call takes no pointer; `fd` is borrowed from a `File` that the caller
        // holds open for the duration of the call, and the kernel checks the rest.
        let r = unsafe { libc::sync_file_range(fd, offset as i64, len as i64, flags) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `e` says the filesystem (or the kernel) has no `sync_file_range`.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE | libc::EOPNOTSUPP)
    )
}

/// Whether `e` is the filesystem refusing `O_DIRECT` (or its alignment): the same work is then
/// done through the page cache.
pub(crate) fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Reads into all of `buf` at `offset`, stopping early only at the end of the file; returns how
/// many bytes were read. With `direct` (a file opened with `O_DIRECT`), a read that ends off a
/// block boundary ended at the end of the file: the next one, at an unaligned offset, would be
/// refused.
fn pread(file: &File, buf: &mut [u8], offset: u64, direct: bool) -> io::Result<usize> {
    let mut got = 0usize;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if direct && n % ALIGN != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Through the cache, pieces at least this long (a sixteenth of the buffer's size: 64 KiB for
/// the 1 MiB buffers of packs and restores) are written from where they are instead of being
/// gathered: a pack's data blobs, a restored file's chunks. Shorter ones (SQLite pages, a
/// pack's header and index) are gathered, so that the kernel gets few calls; copying 64 KiB
/// costs a few times what a call does.
fn passes_from(cap: usize) -> usize {
    (cap / 16).max(1)
}

/// Writes `parts`, one after the other, at `pos`, in as few calls as the kernel takes them
/// (`pwritev`).
fn write_all_at(file: &File, parts: [&[u8]; 2], mut pos: u64) -> io::Result<()> {
    let mut slices = parts.map(IoSlice::new);
    let mut left = &mut slices[..];
    // Empty parts are skipped first: a call with nothing left to write would return 0.
    IoSlice::advance_slices(&mut left, 0);
    while !left.is_empty() {
        match rustix::io::pwritev(file, left, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n as u64;
                IoSlice::advance_slices(&mut left, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// One aligned buffer written at `pos` with `O_DIRECT`. A short write (a device may take part
/// of a request) goes on from where it stopped while that stays aligned.
fn write_direct(file: &File, mut data: &[u8], mut pos: u64) -> io::Result<()> {
    while !data.is_empty() {
        match file.write_at(data, pos) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n % ALIGN == 0 || n == data.len() => {
                data = &data[n..];
                pos += n as u64;
            }
            // An unaligned part written: the rest cannot go on with O_DIRECT.
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> OpenOptions {
        let mut o = File::options();
        o.write(true).create_new(true);
        o
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Every way of cutting a file into pieces gives the same file, direct or not, at lengths
    /// around the block and buffer sizes.
    #[test]
    fn any_pieces_give_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = AlignedBuf::new(3 * ALIGN);
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let supported = open_for_reading(&probe).unwrap().is_some();
        let lens = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            3 * ALIGN,
            3 * ALIGN + 7,
            10 * ALIGN + 5,
        ];
        // Each file is cut into pieces of these lengths in turn. Through the cache, pieces of
        // `passes_from` bytes or more are written from where they are, after what the buffer
        // gathered of the shorter ones before them (the last two cuts mix the two).
        // Eighteen short pieces (12,600 bytes) fill the buffer (12,288), which is written,
        // and leave part of one in it for the long piece after them.
        let mut fill = [700; 19];
        fill[18] = ALIGN;
        let cuts: [&[usize]; 7] = [
            &[1],
            &[100],
            &[ALIGN],
            &[3 * ALIGN],
            &[4 * ALIGN + 3],
            &[100, ALIGN + 1, 1, 3 * ALIGN, ALIGN - 1],
            &fill,
        ];
        assert!(passes_from(3 * ALIGN) <= ALIGN && passes_from(3 * ALIGN) > 700);
        let mut n = 0;
        for len in lens {
            for cut in cuts {
                let piece = *cut.iter().max().unwrap();
                for mode in [WriteMode::Direct, WriteMode::Cached, WriteMode::Streamed] {
                    let data = pattern(len, n as u8);
                    let path = dir.path().join(format!("f{n}"));
                    n += 1;
                    let mut w = DirectWriter::open(&new(), &path, &mut buf, mode).unwrap();
                    if let Some(s) = w.stream.as_mut() {
                        // Windows of two blocks: most of these files span several.
                        s.window = 2 * ALIGN as u64;
                    }
                    let mut rest = &data[..];
                    for &size in cut.iter().cycle() {
                        if rest.is_empty() {
                            break;
                        }
                        let (p, after) = rest.split_at(size.min(rest.len()));
                        w.write_all(p).unwrap();
                        rest = after;
                    }
                    // Aligned writes never fall back where the filesystem takes O_DIRECT.
                    assert_eq!(w.is_direct(), mode == WriteMode::Direct && supported);
                    if let Some(s) = w.stream {
                        // Every window but the one being filled has been started.
                        assert!(w.pos - s.started < s.window, "len {len} cut {cut:?}");
                        assert!(s.dropped <= s.started);
                    }
                    // Every other file is finished with its last part left in flight, then
                    // settled, as a local repository's packs are.
                    let f = match n % 2 {
                        0 => w.finish().unwrap(),
                        _ => {
                            let (f, rest) = w.finish_in_flight().unwrap();
                            match mode {
                                // At most the window started before the last, and the last:
                                // each less than a window plus one write (a buffer, or a
                                // long piece after what the buffer held).
                                WriteMode::Streamed => {
                                    let write = 3 * ALIGN + piece;
                                    let most = 2 * (2 * ALIGN + write) as u64;
                                    assert!(rest.len() < most, "len {len} cut {cut:?}")
                                }
                                _ => assert!(rest.is_empty()),
                            }
                            rest.settle(&f).unwrap();
                            f
                        }
                    };
                    assert_eq!(f.metadata().unwrap().len(), len as u64);
                    drop(f);
                    assert_eq!(
                        std::fs::read(&path).unwrap(),
                        data,
                        "len {len} cut {cut:?} {mode:?}"
                    );
                }
            }
        }
    }

    /// Ranges at every offset around block edges and the end of the file read the same bytes
    /// as the file holds, with one buffer reused throughout.
    #[test]
    fn direct_reads_give_the_range_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let data = pattern(5 * ALIGN + 123, 9);
        std::fs::write(&path, &data).unwrap();
        let file = open_for_reading(&path).unwrap();
        let plain = File::open(&path).unwrap();
        let file = file.as_ref().unwrap_or(&plain);
        let mut buf = RangeBuf::new();
        let edges = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            3 * ALIGN + 17,
            data.len() - 1,
        ];
        for offset in edges {
            for len in [0, 1, 100, ALIGN, 2 * ALIGN + 1, data.len()] {
                let got = read_range(file, offset as u64, len, &mut buf).unwrap();
                let want = &data[offset..(offset + len).min(data.len())];
                assert_eq!(got, want.len(), "offset {offset} len {len}");
                assert_eq!(&buf[..], want, "offset {offset} len {len}");
                // The same range through the cache (the fallback), into the same buffer.
                let got = read_range_cached(&plain, offset as u64, len, &mut buf).unwrap();
                assert_eq!(got, want.len(), "cached: offset {offset} len {len}");
                assert_eq!(&buf[..], want, "cached: offset {offset} len {len}");
            }
        }
        // Past the end: nothing.
        assert_eq!(
            read_range(file, data.len() as u64 + 10, 50, &mut buf).unwrap(),
            0
        );
        assert!(buf.is_empty());
    }

    /// On a filesystem without O_DIRECT, the refused open has already created the file that
    /// had to be new: the second open takes that file instead of failing with "exists".
    #[test]
    fn a_new_file_refused_direct_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        // What the refused open left: the new file, empty.
        std::fs::write(&path, b"").unwrap();
        let mut f = open_after_refusal(&new(), &path).unwrap();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        // Create-or-truncate options open it as they would have.
        let mut o = File::options();
        o.write(true).create(true).truncate(true);
        drop(open_after_refusal(&o, &path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn an_existing_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"keep").unwrap();
        let mut buf = AlignedBuf::new(ALIGN);
        let e = DirectWriter::open(&new(), &path, &mut buf, WriteMode::Direct)
            .err()
            .expect("a new file is not an existing one");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }

    /// A write refused with EINVAL goes on through the cache from the same place (a file on a
    /// filesystem with another alignment, simulated by an unaligned buffer).
    #[test]
    fn a_refused_direct_write_goes_on_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let mut buf = AlignedBuf::new(2 * ALIGN);
        // Misalign the buffer's start by one byte: an O_DIRECT write from it fails with EINVAL
        // on every filesystem that takes O_DIRECT at all.
        buf.start += 1;
        buf.cap -= ALIGN;
        let data = pattern(5 * ALIGN + 9, 3);
        let mut w = DirectWriter::open(&new(), &path, &mut buf, WriteMode::Direct).unwrap();
        for p in data.chunks(1000) {
            w.write_all(p).unwrap();
        }
        assert!(!w.is_direct());
        drop(w.finish().unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
