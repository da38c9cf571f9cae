//! Compressed file formats, known by their first bytes.
//!
//! zstd cannot shrink a JPEG thumbnail or an Opus voice note, but finding that out costs as much
//! as compressing it. Chunks larger than a sample are tried on the sample first
//! ([`crate::blob`]); a small file of one of these formats is stored without a trial. On a
//! folder of 30 k thumbnails, stickers and caches, the failed trials were about 15% of a first
//! backup's CPU time (BENCHMARKS.md, "Memory across file counts").

/// Whether `head`, the first bytes of a file, starts like a format that is compressed already:
/// images, audio and video containers, archives.
pub fn is_compressed_format(head: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"\xff\xd8\xff",       // JPEG
        b"\x89PNG\r\n\x1a\n",  // PNG
        b"GIF87a",             // GIF
        b"GIF89a",             // GIF
        b"OggS",               // Ogg: Opus and Vorbis voice notes
        b"\x1a\x45\xdf\xa3",   // Matroska, WebM
        b"fLaC",               // FLAC
        b"ID3",                // MP3 with a tag
        b"PK\x03\x04",         // ZIP, and DOCX, XLSX, APK, JAR
        b"\x1f\x8b",           // gzip
        b"\x28\xb5\x2f\xfd",   // zstd
        b"\xfd7zXZ\x00",       // xz
        b"7z\xbc\xaf\x27\x1c", // 7-Zip
        b"Rar!\x1a\x07",       // RAR
    ];
    PREFIXES.iter().any(|p| head.starts_with(p))
        // WebP: a RIFF container of kind WEBP.
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
        // ISO media (MP4, MOV, M4A, 3GP, HEIC, AVIF): a box of kind `ftyp` first.
        || head.get(4..8) == Some(b"ftyp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_and_archives_are_known() {
        let webp = b"RIFF\x10\x00\x00\x00WEBPVP8 ";
        let mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00";
        for head in [
            &b"\xff\xd8\xff\xe0\x00\x10JFIF"[..],
            b"\x89PNG\r\n\x1a\n\x00\x00",
            b"OggS\x00\x02",
            b"PK\x03\x04\x14\x00",
            webp,
            mp4,
        ] {
            assert!(is_compressed_format(head), "{head:?}");
        }
    }

    #[test]
    fn text_databases_and_short_heads_are_not() {
        for head in [
            &b"SQLite format 3\x00"[..],
            b"{\"id\": 1}",
            b"%PDF-1.7",
            b"RIFF\x10\x00\x00\x00WAVEfmt ",
            b"",
            b"\xff\xd8",
            b"PK",
        ] {
            assert!(!is_compressed_format(head), "{head:?}");
        }
    }
}
