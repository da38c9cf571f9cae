//! XChaCha20-Poly1305 with a random 192-bit nonce per message.
//!
//! A random nonce needs no counter, so two devices holding the same K, or one device that crashed
//! and forgot where it was, cannot reuse a nonce except by a 2^-96-scale accident after 2^48
//! messages. See `docs/FORMAT.md`, "AEAD and nonces".
//!
//! The construction is the one draft-irtf-cfrg-xchacha defines, built from two audited parts:
//! HChaCha20 (RustCrypto's `chacha20`) turns the key and the nonce's first 16 bytes into a
//! subkey, and ChaCha20-Poly1305 (RFC 8439) from `ring` seals under that subkey with the nonce
//! `0u32 || nonce[16..24]`. The bytes are exactly those of RustCrypto's `XChaCha20Poly1305`
//! (a property test below compares the two on random keys, nonces, data and associated data);
//! `ring`'s ChaCha20-Poly1305 is BoringSSL's assembly, which encrypts and authenticates in one
//! pass and ran at about twice the speed of RustCrypto's on the benchmark machine, where the
//! AEAD was half of a restore's CPU time (see BENCHMARKS.md, session 7).
//!
//! The subkey is a function of K and one nonce: it opens that one message and nothing else. It
//! is held in a zeroize-on-drop array; `ring`'s key schedule copies it into a stack value that
//! `ring` does not wipe.

use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use chacha20::hchacha;
use rand_core::{OsRng, RngCore};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, SecretBytes};

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// An AEAD key.
#[derive(Clone)]
pub struct AeadKey {
    secret: SecretBytes,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

impl AeadKey {
    pub fn new(secret: SecretBytes) -> Self {
        AeadKey { secret }
    }

    /// ChaCha20-Poly1305 under the subkey HChaCha20(K, nonce[..16]), and its 96-bit nonce.
    fn message_key(&self, nonce: &[u8]) -> (LessSafeKey, Nonce) {
        let mut subkey = Zeroizing::new([0u8; 32]);
        // HChaCha20: 20 rounds, that is 10 double rounds.
        let mut out = hchacha::<U10>(
            GenericArray::from_slice(self.secret.expose()),
            GenericArray::from_slice(&nonce[..16]),
        );
        subkey.copy_from_slice(&out);
        out.as_mut_slice().zeroize();
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &subkey[..])
                .expect("a 32-byte key is a ChaCha20-Poly1305 key"),
        );
        let mut short = [0u8; 12];
        short[4..].copy_from_slice(&nonce[16..NONCE_LEN]);
        (key, Nonce::assume_unique_for_key(short))
    }

    /// Appends `nonce || ciphertext || tag` of `plaintext` to `out`.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        self.seal_parts_into(aad, &[plaintext], out);
    }

    /// Appends `nonce || ciphertext || tag` of the concatenation of `parts` to `out`, copying
    /// each part once (straight into `out`, where it is encrypted in place).
    pub fn seal_parts_into(&self, aad: &[u8], parts: &[&[u8]], out: &mut Vec<u8>) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let at = out.len();
        out.reserve(len + OVERHEAD);
        out.resize(at + NONCE_LEN, 0);
        for p in parts {
            out.extend_from_slice(p);
        }
        self.seal_in_place_at(aad, out, at);
    }

    /// Seals `buf[NONCE_LEN..]` where it lies: writes a fresh nonce over `buf[..NONCE_LEN]`,
    /// encrypts the rest in place and appends the tag, so `buf` becomes `nonce || ciphertext ||
    /// tag`, the same layout as [`AeadKey::seal_into`] makes, with no copy of the plaintext.
    ///
    /// # Panics
    /// If `buf` is shorter than `NONCE_LEN` (a caller that did not reserve the nonce's room).
    pub fn seal_in_place(&self, aad: &[u8], buf: &mut Vec<u8>) {
        self.seal_in_place_at(aad, buf, 0);
    }

    /// Seals `buf[at + NONCE_LEN..]` in place, its nonce at `buf[at..]`, and appends the tag;
    /// `buf[..at]` (a header the caller wrote) is left as it is.
    ///
    /// # Panics
    /// If `buf` is shorter than `at + NONCE_LEN`.
    pub fn seal_in_place_at(&self, aad: &[u8], buf: &mut Vec<u8>, at: usize) {
        assert!(buf.len() >= at + NONCE_LEN, "no room for the nonce");
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        buf[at..at + NONCE_LEN].copy_from_slice(&nonce);
        let (key, short) = self.message_key(&nonce);
        let tag = key
            .seal_in_place_separate_tag(short, Aad::from(aad), &mut buf[at + NONCE_LEN..])
            .expect("ChaCha20-Poly1305 accepts messages of any size this program makes");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens `nonce || ciphertext || tag`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < OVERHEAD {
            return Err(CryptoError::TooShort(sealed.len()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buf = ct.to_vec();
        self.open_detached(aad, nonce, &mut buf, tag)?;
        Ok(buf)
    }

    /// Opens `nonce || ciphertext || tag` where it lies, and returns the plaintext: the
    /// ciphertext's place in `sealed`, decrypted. On a wrong tag that place is zeroed: no
    /// unauthenticated plaintext is returned or left behind.
    pub fn open_in_place<'a>(
        &self,
        aad: &[u8],
        sealed: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        if sealed.len() < OVERHEAD {
            return Err(CryptoError::TooShort(sealed.len()));
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let (ct, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        self.open_detached(aad, nonce, ct, tag)?;
        Ok(ct)
    }

    /// Decrypts `ct` in place and checks `tag`. `ring` decrypts while it authenticates and
    /// zeroes `ct` when the tag is wrong.
    fn open_detached(
        &self,
        aad: &[u8],
        nonce: &[u8],
        ct: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let tag: [u8; TAG_LEN] = tag.try_into().expect("TAG_LEN bytes");
        let (key, short) = self.message_key(nonce);
        key.open_in_place_separate_tag(short, Aad::from(aad), Tag::from(tag), ct, 0..)
            .map(|_| ())
            .map_err(|_| CryptoError::Authentication)
    }
}

/// Seals `plaintext` into a new vector.
pub fn seal(key: &AeadKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    key.seal_into(aad, plaintext, &mut out);
    out
}

/// Opens what [`seal`] made.
pub fn open(key: &AeadKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    key.open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackupKey;

    fn key(b: u8) -> AeadKey {
        AeadKey::new(BackupKey::from_bytes([b; 32]).derive("test"))
    }

    #[test]
    fn round_trip_and_nonce_freshness() {
        let k = key(1);
        let a = seal(&k, b"ad", b"secret text");
        let b = seal(&k, b"ad", b"secret text");
        assert_ne!(a, b, "each seal draws a new nonce");
        assert_eq!(a.len(), 11 + OVERHEAD);
        assert_eq!(open(&k, b"ad", &a).unwrap(), b"secret text");
    }

    /// Sealing in place gives the layout `seal` gives: it opens with the same key and aad, and
    /// with nothing else; two seals of the same text draw different nonces.
    #[test]
    fn sealing_in_place_matches_seal() {
        let k = key(5);
        let mut a = vec![0xAA; NONCE_LEN];
        a.extend_from_slice(b"secret text");
        let mut b = a.clone();
        k.seal_in_place(b"ad", &mut a);
        k.seal_in_place(b"ad", &mut b);
        assert_ne!(a[..NONCE_LEN], [0xAA; NONCE_LEN]);
        assert_ne!(a, b);
        assert_eq!(a.len(), seal(&k, b"ad", b"secret text").len());
        assert_eq!(open(&k, b"ad", &a).unwrap(), b"secret text");
        assert_eq!(open(&k, b"AD", &a), Err(CryptoError::Authentication));
        assert_eq!(open(&key(6), b"ad", &a), Err(CryptoError::Authentication));
        let mut empty = vec![0; NONCE_LEN];
        k.seal_in_place(b"", &mut empty);
        assert_eq!(open(&k, b"", &empty).unwrap(), b"");
    }

    proptest::proptest! {
        /// The same bytes as RustCrypto's XChaCha20Poly1305 (the reference), both ways.
        #[test]
        fn same_bytes_as_the_reference(
            k in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            aad in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        ) {
            use chacha20poly1305::aead::{Aead, KeyInit, Payload};
            use chacha20poly1305::{XChaCha20Poly1305, XNonce};
            let ours = AeadKey::new(SecretBytes(k));
            let sealed = seal(&ours, &aad, &text);
            let reference = XChaCha20Poly1305::new_from_slice(&k).unwrap();
            let nonce = XNonce::from_slice(&sealed[..NONCE_LEN]);
            let theirs = reference.encrypt(nonce, Payload { msg: &text, aad: &aad }).unwrap();
            proptest::prop_assert_eq!(&sealed[NONCE_LEN..], &theirs[..]);
            let mut by_reference = sealed[..NONCE_LEN].to_vec();
            by_reference.extend_from_slice(&theirs);
            proptest::prop_assert_eq!(open(&ours, &aad, &by_reference).unwrap(), text);
        }
    }

    #[test]
    fn a_failed_open_in_place_leaves_no_plaintext() {
        let k = key(7);
        let mut sealed = seal(&k, b"ad", b"secret text");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            k.open_in_place(b"ad", &mut sealed),
            Err(CryptoError::Authentication)
        );
        assert!(
            sealed[NONCE_LEN..last - TAG_LEN + 1]
                .iter()
                .all(|&b| b == 0)
        );
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let k = key(2);
        let sealed = seal(&k, b"ad", b"0123456789");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut t = sealed.clone();
                t[i] ^= 1 << bit;
                assert_eq!(open(&k, b"ad", &t), Err(CryptoError::Authentication));
            }
        }
    }

    #[test]
    fn wrong_key_aad_or_length_fails() {
        let sealed = seal(&key(3), b"ad", b"x");
        assert_eq!(
            open(&key(4), b"ad", &sealed),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            open(&key(3), b"AD", &sealed),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            open(&key(3), b"ad", &sealed[..sealed.len() - 1]),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            open(&key(3), b"ad", &sealed[..10]),
            Err(CryptoError::TooShort(10))
        );
    }
}
