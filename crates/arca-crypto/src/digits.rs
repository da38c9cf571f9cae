//! The 64-digit key: K written as 64 hexadecimal digits in 16 groups of four.

use crate::BackupKey;

/// Why a typed key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigitsError {
    #[error(
        "the key has {0} digits but must have 64 (16 groups of 4); check for a missing or extra group"
    )]
    WrongLength(usize),
    #[error(
        "the key contains {ch:?} at digit {position}; only 0-9 and a-f are key digits (spaces and dashes are ignored)"
    )]
    NotHex { ch: char, position: usize },
}

/// `"1a2b 3c4d ..."`: 16 groups of 4 lowercase hex digits separated by spaces.
pub fn format_digits(key: &BackupKey) -> String {
    let hex: Vec<char> = key
        .expose()
        .iter()
        .flat_map(|b| {
            let s = format!("{b:02x}");
            s.chars().collect::<Vec<_>>()
        })
        .collect();
    hex.chunks(4)
        .map(|g| g.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Accepts the key with any whitespace, dashes, or case.
pub fn parse_digits(text: &str) -> Result<BackupKey, DigitsError> {
    let mut nibbles = Vec::with_capacity(64);
    for ch in text.chars() {
        if ch.is_whitespace() || ch == '-' {
            continue;
        }
        match ch.to_digit(16) {
            Some(v) => nibbles.push(v as u8),
            None => {
                return Err(DigitsError::NotHex {
                    ch,
                    position: nibbles.len() + 1,
                });
            }
        }
    }
    if nibbles.len() != 64 {
        return Err(DigitsError::WrongLength(nibbles.len()));
    }
    let mut bytes = [0u8; 32];
    for (i, pair) in nibbles.chunks(2).enumerate() {
        bytes[i] = (pair[0] << 4) | pair[1];
    }
    nibbles.iter_mut().for_each(|n| *n = 0);
    Ok(BackupKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shape_is_16_groups_of_4() {
        let s = format_digits(&BackupKey::from_bytes([0xab; 32]));
        let groups: Vec<&str> = s.split(' ').collect();
        assert_eq!(groups.len(), 16);
        assert!(groups.iter().all(|g| g.len() == 4 && g == &"abab"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse_digits("abcd"), Err(DigitsError::WrongLength(4)));
        let mut s = "0".repeat(63);
        s.push('g');
        assert_eq!(
            parse_digits(&s),
            Err(DigitsError::NotHex {
                ch: 'g',
                position: 64
            })
        );
        assert_eq!(parse_digits(""), Err(DigitsError::WrongLength(0)));
    }

    proptest! {
        #[test]
        fn round_trips_with_any_spacing_and_case(bytes in any::<[u8; 32]>(), upper in any::<bool>(), sep in prop::sample::select(vec![" ", "-", "", "  ", "\n", " - "])) {
            let key = BackupKey::from_bytes(bytes);
            let mut text = format_digits(&key).replace(' ', sep);
            if upper { text = text.to_uppercase(); }
            prop_assert_eq!(parse_digits(&text).unwrap(), key);
        }

        #[test]
        fn parser_never_panics(text in ".{0,200}") {
            let _ = parse_digits(&text);
        }
    }
}
