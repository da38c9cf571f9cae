//! BLAKE3 of a stream that arrives in pieces of any size, at the speed of whole buffers.
//!
//! `blake3::Hasher` hashes many 1 KiB chunks at once (16 with AVX-512) only when they arrive
//! together at a position aligned to their number. A pack fed to it one sealed blob at a time
//! is not: a sealed SQLite page is about 4 KiB and starts anywhere in a chunk, so most of it
//! was hashed one chunk at a time. On session 16's machine, 256 MiB fed in pieces of 4,136
//! bytes hashed at 912 MiB/s and in pieces of 16,424 bytes at 1,977 MiB/s, against 7,300 MiB/s
//! in pieces of 1 MiB (BENCHMARKS.md). [`StreamHash`] gives the hasher only whole multiples of
//! [`ALIGN`] (gathering the small pieces and the ends of large ones in a buffer of [`STAGE`]
//! bytes), which makes the same pieces hash at 7,100 and 6,800 MiB/s. The hash is the same.

/// What the hasher is given at a time: a multiple of this many bytes (16 chunks of 1 KiB).
const ALIGN: usize = 16 << 10;

/// The buffer that gathers small pieces; a multiple of [`ALIGN`].
const STAGE: usize = 64 << 10;

/// An unkeyed BLAKE3 hash fed in pieces (see the module docs).
pub(crate) struct StreamHash {
    hasher: blake3::Hasher,
    /// Bytes not yet given to the hasher, always fewer than [`STAGE`]. Everything given to it
    /// so far is a multiple of [`ALIGN`] long.
    staged: Vec<u8>,
}

impl StreamHash {
    pub(crate) fn new() -> Self {
        StreamHash {
            hasher: blake3::Hasher::new(),
            staged: Vec::with_capacity(STAGE),
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        if !self.staged.is_empty() || bytes.len() < ALIGN {
            let take = (STAGE - self.staged.len()).min(bytes.len());
            self.staged.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.staged.len() < STAGE {
                return;
            }
            self.hasher.update(&self.staged);
            self.staged.clear();
        }
        // The stage is empty and the hasher aligned: whole multiples go straight in.
        let whole = bytes.len() / ALIGN * ALIGN;
        self.hasher.update(&bytes[..whole]);
        self.staged.extend_from_slice(&bytes[whole..]);
    }

    pub(crate) fn finalize(mut self) -> [u8; 32] {
        self.hasher.update(&self.staged);
        *self.hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `data` hashed in pieces of the lengths `cuts`, then the rest. After every piece, the
    /// hasher has been given only whole multiples of [`ALIGN`] (what makes it fast), and the
    /// stage holds the rest: fewer than [`STAGE`] bytes.
    fn streamed(data: &[u8], cuts: &[usize]) -> [u8; 32] {
        let mut h = StreamHash::new();
        let mut rest = data;
        let mut given = 0;
        for &c in cuts.iter().chain([&usize::MAX]) {
            let n = c.min(rest.len());
            h.update(&rest[..n]);
            rest = &rest[n..];
            given += n as u64;
            assert_eq!(
                h.hasher.count() % ALIGN as u64,
                0,
                "the hasher was fed unaligned"
            );
            assert!(h.staged.len() < STAGE, "the stage holds {}", h.staged.len());
            assert_eq!(h.hasher.count() + h.staged.len() as u64, given);
        }
        h.finalize()
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn pieces_at_and_around_the_stage_and_alignment_hash_as_one_buffer() {
        let data = bytes(5 * STAGE + 3 * ALIGN + 77);
        let want = *blake3::hash(&data).as_bytes();
        let sizes = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            STAGE - 1,
            STAGE,
            STAGE + 1,
            4136,
            16424,
            (1 << 20) + 40,
        ];
        for &a in &sizes {
            for &b in &sizes {
                // Pieces alternating between two sizes, so the stage is met full, part full
                // and empty.
                let cuts: Vec<usize> = (0..40).map(|i| if i % 2 == 0 { a } else { b }).collect();
                assert_eq!(streamed(&data, &cuts), want, "pieces of {a} and {b}");
            }
        }
        assert_eq!(StreamHash::new().finalize(), *blake3::hash(b"").as_bytes());
    }

    proptest! {
        #[test]
        fn any_pieces_hash_as_one_buffer(
            len in 0usize..300_000,
            cuts in proptest::collection::vec(0usize..70_000, 0..40),
        ) {
            let data = bytes(len);
            prop_assert_eq!(streamed(&data, &cuts), *blake3::hash(&data).as_bytes());
        }
    }
}
