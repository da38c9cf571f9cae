//! A buffer that holds the bytes of one read range and is reused from read to read.

use std::ops::{Deref, DerefMut};

/// The bytes of the last range read into it: `&buf[..]` is exactly them.
///
/// They need not sit at the front of the allocation. A read past the page cache (`O_DIRECT`,
/// see [`crate::direct`]) lands whole aligned blocks at an aligned address, and the range
/// starts a little way in; handing out that slice saves moving every byte read to the front.
#[derive(Default)]
pub struct RangeBuf {
    pub(crate) bytes: Vec<u8>,
    pub(crate) start: usize,
}

impl RangeBuf {
    pub fn new() -> Self {
        RangeBuf::default()
    }

    /// The allocation, emptied, for a read that puts the range at its front; a read that puts
    /// it further in sets `start` afterwards.
    pub(crate) fn reset(&mut self) -> &mut Vec<u8> {
        self.start = 0;
        self.bytes.clear();
        &mut self.bytes
    }

    /// The range as a vector of its own (moved to the front of the allocation if needed).
    pub fn into_vec(mut self) -> Vec<u8> {
        self.bytes.drain(..self.start);
        self.bytes
    }
}

impl Deref for RangeBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

impl DerefMut for RangeBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..]
    }
}

impl std::fmt::Debug for RangeBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RangeBuf({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_what_is_seen_and_kept() {
        let r = RangeBuf {
            bytes: b"..hello".to_vec(),
            start: 2,
        };
        assert_eq!(&r[..], b"hello");
        assert_eq!(r.into_vec(), b"hello");
    }
}
