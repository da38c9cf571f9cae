//! Where files are cut into chunks.
//!
//! Two cutters:
//! - [`Cdc`], a FastCDC-style gear-hash cutter (normalized chunking, sub-minimum skipping) whose
//!   256-entry gear table is generated from a K-derived secret, so the cloud cannot predict the
//!   boundaries of a known file. The `fastcdc` crate takes only a 64-bit seed, hence this small
//!   hand-written loop.
//! - [`sqlite_page_size`] detects SQLite databases; those are cut at page boundaries instead, so a
//!   day of chat (a few pages changed all over the file) uploads about the changed pages.

use serde::{Deserialize, Serialize};

/// Chunk size parameters, stored in the repository config so every device cuts alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl Default for ChunkerParams {
    /// Chosen by measurement, see BENCHMARKS.md ("chunk sizes").
    fn default() -> Self {
        ChunkerParams {
            min: 256 * 1024,
            avg: 1024 * 1024,
            max: 4 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    pub fn validate(&self) -> Result<(), String> {
        let ok = self.min >= 64
            && self.min < self.avg
            && self.avg < self.max
            && self.avg.is_power_of_two()
            && self.max <= 64 * 1024 * 1024;
        if ok {
            Ok(())
        } else {
            Err(format!("invalid chunker parameters {self:?}"))
        }
    }
}

/// How far [`Cdc::cut_more`] has looked into a chunk: the bytes rolled over and the hash there.
/// A new chunk starts from the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct CutState {
    rolled: usize,
    hash: u64,
}

/// A keyed content-defined cutter.
#[derive(Clone)]
pub struct Cdc {
    gear: Box<[u64; 256]>,
    min: usize,
    avg: usize,
    max: usize,
    mask_small: u64,
    mask_large: u64,
}

fn top_mask(bits: u32) -> u64 {
    if bits == 0 { 0 } else { (!0u64) << (64 - bits) }
}

impl Cdc {
    /// A cutter whose gear table is BLAKE3's extendable output keyed by `secret`.
    pub fn new(secret: &[u8; 32], params: ChunkerParams) -> Self {
        let mut xof = blake3::Hasher::new_keyed(secret);
        xof.update(b"arca gear table v1");
        let mut bytes = [0u8; 256 * 8];
        xof.finalize_xof().fill(&mut bytes);
        let mut gear = Box::new([0u64; 256]);
        for (i, g) in gear.iter_mut().enumerate() {
            *g = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        }
        let bits = params.avg.trailing_zeros();
        Cdc {
            gear,
            min: params.min as usize,
            avg: params.avg as usize,
            max: params.max as usize,
            mask_small: top_mask(bits + 2),
            mask_large: top_mask(bits.saturating_sub(2)),
        }
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    pub fn avg_size(&self) -> usize {
        self.avg
    }

    /// Length of the next chunk at the start of `buf`. `buf` must hold at least `max_size()`
    /// bytes unless it is the end of the file.
    pub fn cut(&self, buf: &[u8]) -> usize {
        let n = buf.len();
        if n <= self.min {
            return n;
        }
        let end = n.min(self.max);
        let normal = self.avg.min(end);
        let (h, found) = self.scan(buf, self.min, normal, 0, self.mask_small);
        if let Some(at) = found {
            return at;
        }
        match self.scan(buf, normal, end, h, self.mask_large).1 {
            Some(at) => at,
            None => end,
        }
    }

    /// [`Cdc::cut`] for bytes that arrive piece by piece, so that a file can be read straight
    /// into the buffer its chunk is sealed in. `buf` holds the chunk's bytes read so far: the
    /// same start as at the previous call with `state`, and at least as long. `Some(len)` once
    /// the chunk's end is known (a boundary, or the largest size); `None` while more bytes are
    /// needed. At the end of the file the chunk is all of `buf`. Cuts where [`Cdc::cut`] cuts
    /// the whole: the bytes already rolled over are not looked at again.
    pub fn cut_more(&self, buf: &[u8], state: &mut CutState) -> Option<usize> {
        let end = buf.len().min(self.max);
        let mut at = state.rolled.max(self.min);
        let mut h = state.hash;
        for (upto, mask) in [(self.avg, self.mask_small), (self.max, self.mask_large)] {
            let to = end.min(upto);
            if at < to {
                let (rolled, found) = self.scan(buf, at, to, h, mask);
                if found.is_some() {
                    return found;
                }
                (at, h) = (to, rolled);
            }
        }
        *state = CutState {
            rolled: at,
            hash: h,
        };
        (at == self.max).then_some(self.max)
    }

    /// Rolls the gear hash over `buf[from..to]` starting from `h`: the first position `i` where
    /// the hash has no bit of `mask` set gives `Some(i + 1)`; else the hash at `to`.
    ///
    /// The hash at a position depends only on the 64 bytes before it (each step shifts one bit
    /// out), so a long stretch is rolled as two halves at once, the second half's hash started
    /// 64 bytes early: two independent chains of shift-and-add keep the core busy where one
    /// waits on itself. A hit in the second half counts only if the first has none. Cuts where
    /// the per-byte loop cuts (tested against it); BENCHMARKS.md, "Session 10: a faster chunker".
    #[inline]
    fn scan(&self, buf: &[u8], from: usize, to: usize, h: u64, mask: u64) -> (u64, Option<usize>) {
        const LANE: usize = 16;
        let half = (to - from) / 2 / LANE * LANE;
        if half < 1024 {
            return self.scan_one(buf, from, to, h, mask);
        }
        let mid = from + half;
        let gear = &*self.gear;
        let (mut ha, mut hb) = (h, 0u64);
        for &b in &buf[mid - 64..mid] {
            hb = (hb << 1).wrapping_add(gear[b as usize]);
        }
        let first = buf[from..mid].chunks_exact(LANE);
        let second = buf[mid..mid + half].chunks_exact(LANE);
        let mut at = 0;
        for (ra, rb) in first.zip(second) {
            for (k, &b) in ra.iter().enumerate() {
                ha = (ha << 1).wrapping_add(gear[b as usize]);
                if ha & mask == 0 {
                    return (ha, Some(from + at + k + 1));
                }
            }
            for (k, &b) in rb.iter().enumerate() {
                hb = (hb << 1).wrapping_add(gear[b as usize]);
                if hb & mask == 0 {
                    // The rest of the first half may still hold an earlier cut.
                    let start = from + at + LANE;
                    return match self.scan_one(buf, start, mid, ha, mask) {
                        (h, Some(cut)) => (h, Some(cut)),
                        (_, None) => (hb, Some(mid + at + k + 1)),
                    };
                }
            }
            at += LANE;
        }
        self.scan_one(buf, mid + half, to, hb, mask)
    }

    /// [`Cdc::scan`] on one chain, sixteen bytes a round: the per-byte loop spent much of its
    /// time on its counter and bounds.
    #[inline]
    fn scan_one(
        &self,
        buf: &[u8],
        from: usize,
        to: usize,
        mut h: u64,
        mask: u64,
    ) -> (u64, Option<usize>) {
        let gear = &*self.gear;
        let mut rounds = buf[from..to].chunks_exact(16);
        let mut at = from;
        for round in &mut rounds {
            for (k, &b) in round.iter().enumerate() {
                h = (h << 1).wrapping_add(gear[b as usize]);
                if h & mask == 0 {
                    return (h, Some(at + k + 1));
                }
            }
            at += 16;
        }
        for &b in rounds.remainder() {
            h = (h << 1).wrapping_add(gear[b as usize]);
            if h & mask == 0 {
                return (h, Some(at + 1));
            }
            at += 1;
        }
        (h, None)
    }
}

/// The SQLite file header's first 16 bytes.
pub const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// If `head` (the first 100 bytes or more of a file) is a SQLite header, its page size.
pub fn sqlite_page_size(head: &[u8]) -> Option<usize> {
    if head.len() < 100 || &head[..16] != SQLITE_MAGIC {
        return None;
    }
    let raw = u16::from_be_bytes([head[16], head[17]]) as usize;
    let size = if raw == 1 { 65536 } else { raw };
    (size >= 512 && size.is_power_of_two()).then_some(size)
}

/// Chunk length for SQLite files: whole pages, at least 4 KiB.
pub fn sqlite_chunk_len(page_size: usize) -> usize {
    page_size.max(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn cuts(cdc: &Cdc, d: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < d.len() {
            let n = cdc.cut(&d[pos..]);
            assert!(n > 0);
            pos += n;
            out.push(pos);
        }
        out
    }

    /// The per-byte loop `Cdc::cut` must agree with: one byte, one test.
    fn cut_reference(cdc: &Cdc, buf: &[u8]) -> usize {
        let n = buf.len();
        if n <= cdc.min {
            return n;
        }
        let end = n.min(cdc.max);
        let normal = cdc.avg.min(end);
        let mut h: u64 = 0;
        let mut i = cdc.min;
        while i < normal {
            h = (h << 1).wrapping_add(cdc.gear[buf[i] as usize]);
            if h & cdc.mask_small == 0 {
                return i + 1;
            }
            i += 1;
        }
        while i < end {
            h = (h << 1).wrapping_add(cdc.gear[buf[i] as usize]);
            if h & cdc.mask_large == 0 {
                return i + 1;
            }
            i += 1;
        }
        end
    }

    fn small() -> ChunkerParams {
        ChunkerParams {
            min: 2048,
            avg: 8192,
            max: 32768,
        }
    }

    #[test]
    fn sizes_respect_bounds_and_average() {
        let cdc = Cdc::new(&[1; 32], small());
        let d = data(4 << 20, 7);
        let c = cuts(&cdc, &d);
        let mut prev = 0;
        for (i, &p) in c.iter().enumerate() {
            let len = p - prev;
            assert!(len <= 32768);
            if i + 1 < c.len() {
                assert!(len > 2048);
            }
            prev = p;
        }
        let avg = d.len() / c.len();
        assert!((5000..14000).contains(&avg), "average {avg}");
    }

    #[test]
    fn boundaries_resynchronise_after_an_insert() {
        let cdc = Cdc::new(&[1; 32], small());
        let d = data(1 << 20, 9);
        let mut e = d[..100_000].to_vec();
        e.extend_from_slice(b"inserted bytes");
        e.extend_from_slice(&d[100_000..]);
        let a: std::collections::HashSet<usize> = cuts(&cdc, &d).into_iter().collect();
        let b: Vec<usize> = cuts(&cdc, &e).into_iter().map(|p| p - 14).collect();
        let shared = b.iter().filter(|p| a.contains(p)).count();
        assert!(shared * 10 > a.len() * 8, "{shared} of {}", a.len());
    }

    #[test]
    fn boundaries_depend_on_the_key() {
        let d = data(1 << 20, 11);
        let a = cuts(&Cdc::new(&[1; 32], small()), &d);
        let b = cuts(&Cdc::new(&[2; 32], small()), &d);
        let sa: std::collections::HashSet<_> = a.iter().collect();
        let shared = b.iter().filter(|p| sa.contains(p)).count();
        assert!(shared * 5 < a.len(), "{shared} shared of {}", a.len());
    }

    #[test]
    fn cuts_where_the_per_byte_loop_cuts() {
        // Small parameters so that both masks fire often, lengths around every edge.
        for (seed, p) in [
            (1u64, small()),
            (
                2,
                ChunkerParams {
                    min: 64,
                    avg: 128,
                    max: 1024,
                },
            ),
        ] {
            let cdc = Cdc::new(&[seed as u8; 32], p);
            let d = data(1 << 20, seed);
            let (mut pos, mut cuts) = (0, 0);
            while pos < d.len() {
                let n = cdc.cut(&d[pos..]);
                assert_eq!(n, cut_reference(&cdc, &d[pos..]), "at {pos}");
                pos += n;
                cuts += 1;
            }
            assert!(cuts > 30, "{cuts} cuts");
            for len in (0..p.max as usize + 20).step_by(7) {
                assert_eq!(
                    cdc.cut(&d[..len]),
                    cut_reference(&cdc, &d[..len]),
                    "len {len}"
                );
            }
        }
    }

    /// `cargo test --release -p arca-format chunker::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn speed() {
        let cdc = Cdc::new(&[5; 32], ChunkerParams::default());
        let d = data(256 << 20, 3);
        for _ in 0..3 {
            for (name, f) in [
                ("unrolled", Cdc::cut as fn(&Cdc, &[u8]) -> usize),
                ("per byte", cut_reference),
            ] {
                let t = std::time::Instant::now();
                let (mut pos, mut cuts) = (0, 0);
                while pos < d.len() {
                    pos += f(&cdc, &d[pos..]);
                    cuts += 1;
                }
                let s = t.elapsed().as_secs_f64();
                println!("{name}: {:.0} MiB/s, {cuts} cuts", 256.0 / s);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn cuts_where_the_per_byte_loop_cuts_on_any_bytes(
            d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40_000),
            key in proptest::prelude::any::<u8>(),
        ) {
            // The first with stretches too short to be rolled as two halves, the second with
            // long ones, where a cut in the second half must wait for the first.
            for p in [
                ChunkerParams { min: 64, avg: 256, max: 2048 },
                ChunkerParams { min: 256, avg: 4096, max: 16384 },
            ] {
                let cdc = Cdc::new(&[key; 32], p);
                let mut pos = 0;
                while pos < d.len() {
                    let n = cdc.cut(&d[pos..]);
                    proptest::prop_assert_eq!(n, cut_reference(&cdc, &d[pos..]));
                    pos += n;
                }
            }
        }
    }

    proptest::proptest! {
        /// Read in pieces of any lengths, a file is cut where `cut` cuts it whole.
        #[test]
        fn cuts_in_pieces_where_the_whole_is_cut(
            d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40_000),
            steps in proptest::collection::vec(1usize..5000, 1..40),
            key in proptest::prelude::any::<u8>(),
        ) {
            // The third with the largest size just past the average, so that most chunks end
            // there (random bytes hardly ever go without a boundary up to the others' largest).
            for p in [
                ChunkerParams { min: 64, avg: 256, max: 2048 },
                ChunkerParams { min: 256, avg: 4096, max: 16384 },
                ChunkerParams { min: 64, avg: 4096, max: 4200 },
            ] {
                let cdc = Cdc::new(&[key; 32], p);
                let (mut pos, mut held, mut k) = (0, 0, 0);
                let mut state = CutState::default();
                while pos < d.len() {
                    // The chunk's bytes so far are d[pos..pos + held]; read one more piece.
                    let left = d.len() - pos;
                    held = (held + steps[k % steps.len()]).min(left);
                    k += 1;
                    let cut = match cdc.cut_more(&d[pos..pos + held], &mut state) {
                        Some(n) => n,
                        None if held == left => held,
                        None => continue,
                    };
                    proptest::prop_assert_eq!(cut, cdc.cut(&d[pos..]), "at {}", pos);
                    pos += cut;
                    held -= cut;
                    state = CutState::default();
                }
            }
        }
    }

    #[test]
    fn sqlite_header_detection() {
        let mut h = vec![0u8; 100];
        h[..16].copy_from_slice(SQLITE_MAGIC);
        h[16..18].copy_from_slice(&4096u16.to_be_bytes());
        assert_eq!(sqlite_page_size(&h), Some(4096));
        h[16..18].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(sqlite_page_size(&h), Some(65536));
        h[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(sqlite_page_size(&h), None);
        assert_eq!(sqlite_page_size(&h[..50]), None);
        assert_eq!(sqlite_chunk_len(1024), 4096);
    }
}
