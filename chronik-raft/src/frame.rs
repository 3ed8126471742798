//! The frame format of the metadata log file, as pure functions over bytes.
//!
//! A frame is `[payload length: u32 LE][crc32 (IEEE, crc32fast) of payload: u32 LE][payload]`.
//! [`scan`] walks a file image and tells valid frames from a torn tail (the last write of a crash:
//! a short header, a length running past the end, a bad checksum on the very last frame, or a zeroed
//! tail) and from corruption in the middle, which it refuses.

use std::ops::Range;

/// Bytes of the frame header (length + checksum).
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest payload a frame may carry; a bigger length is garbage, not an entry.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 64 << 20;

/// Append one frame holding `payload` to `out`.
///
/// The caller keeps payloads non-empty (a zero length marks a zeroed tail) and under
/// [`FRAME_PAYLOAD_BYTES_MAX`]; anything else would be read back as corruption. Log entries are JSON,
/// never empty, and the log store checks the size before writing.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    // Payloads are bounded by FRAME_PAYLOAD_BYTES_MAX (64 MiB) < u32::MAX, checked by the caller.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// A valid frame found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset of the frame header in the file.
    pub offset: u64,
    /// Where the payload lies in the scanned buffer.
    pub payload: Range<usize>,
}

/// The result of scanning a log file image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub frames: Vec<Frame>,
    /// Length of the valid prefix; the file is truncated here when it is longer.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were dropped, when there were any.
    pub torn_tail: Option<&'static str>,
}

/// A frame failed its checks with more data behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub offset: u64,
    pub reason: String,
}

/// Split `buf` into frames, dropping a torn tail and refusing corruption in the middle.
pub fn scan(buf: &[u8]) -> Result<Scan, Corruption> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    let torn = |pos: usize, frames: Vec<Frame>, why| Ok(Scan { frames, valid_len: pos as u64, torn_tail: Some(why) });
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < FRAME_HEADER_BYTES {
            return torn(pos, frames, "short frame header");
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 {
            if rest.iter().all(|b| *b == 0) {
                return torn(pos, frames, "zeroed tail");
            }
            return Err(Corruption { offset: pos as u64, reason: "zero-length frame".into() });
        }
        let end = FRAME_HEADER_BYTES.saturating_add(len);
        if end > rest.len() {
            return torn(pos, frames, "frame runs past the end of the file");
        }
        if len > FRAME_PAYLOAD_BYTES_MAX {
            return Err(Corruption { offset: pos as u64, reason: format!("frame length {len} over the limit") });
        }
        let payload = pos + FRAME_HEADER_BYTES..pos + end;
        if crc32fast::hash(&buf[payload.clone()]) != crc {
            if pos + end == buf.len() {
                return torn(pos, frames, "checksum mismatch in the last frame");
            }
            return Err(Corruption { offset: pos as u64, reason: "checksum mismatch".into() });
        }
        frames.push(Frame { offset: pos as u64, payload });
        pos += end;
    }
    Ok(Scan { frames, valid_len: pos as u64, torn_tail: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    fn payloads<'a>(buf: &'a [u8], scan: &Scan) -> Vec<&'a [u8]> {
        scan.frames.iter().map(|f| &buf[f.payload.clone()]).collect()
    }

    #[test]
    fn round_trip() {
        let buf = image(&[b"one", b"two", b"three"]);
        let s = scan(&buf).expect("a clean image scans");
        assert_eq!(payloads(&buf, &s), vec![&b"one"[..], b"two", b"three"]);
        assert_eq!(s.valid_len, buf.len() as u64);
        assert_eq!(s.torn_tail, None);
        assert_eq!(s.frames[1].offset, 11);
    }

    /// Each case damages the tail of a three-frame image; recovery keeps exactly the whole frames.
    #[test]
    fn torn_tails_are_cut_at_the_last_whole_frame() {
        let good = image(&[b"aaaa", b"bbbb"]);
        let whole = image(&[b"aaaa", b"bbbb", b"cccccccc"]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short header", whole[..good.len() + 5].to_vec()),
            ("payload cut", whole[..whole.len() - 3].to_vec()),
            ("bad crc on last", {
                let mut b = whole.clone();
                let last = b.len() - 1;
                b[last] ^= 0xff;
                b
            }),
            ("zeroed tail", [good.clone(), vec![0; 40]].concat()),
            ("huge length past end", [good.clone(), vec![0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5]].concat()),
        ];
        for (what, buf) in cases {
            let s = scan(&buf).unwrap_or_else(|c| panic!("{what}: {c:?}"));
            assert_eq!(s.valid_len, good.len() as u64, "{what}");
            assert_eq!(payloads(&buf, &s), vec![&b"aaaa"[..], b"bbbb"], "{what}");
            assert!(s.torn_tail.is_some(), "{what}");
        }
    }

    #[test]
    fn corruption_in_the_middle_is_refused() {
        let mut buf = image(&[b"aaaa", b"bbbb", b"cccc"]);
        buf[FRAME_HEADER_BYTES + 1] ^= 0x01;
        assert_eq!(scan(&buf).map(|s| s.frames.len()), Err(Corruption { offset: 0, reason: "checksum mismatch".into() }));
        let mut buf = image(&[b"aaaa"]);
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&image(&[b"bbbb"]));
        assert!(scan(&buf).is_err(), "a zero header followed by data is not a torn tail");
    }

    #[test]
    fn crc_is_ieee() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
    }

    /// A small deterministic generator (xorshift64*), so the property cases repeat exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, most: u64) -> Vec<u8> {
            let n = self.next() % most;
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Arbitrary bytes never panic the scanner, and whatever it accepts lies inside the buffer;
    /// valid frames followed by arbitrary bytes are always found whole, in order.
    #[test]
    fn arbitrary_bytes_never_panic_and_valid_prefixes_survive() {
        let mut rng = Rng(0x5eed_1234_abcd_9876);
        for round in 0..20_000 {
            let garbage = rng.bytes(96);
            if let Ok(s) = scan(&garbage) {
                assert!(s.valid_len as usize <= garbage.len());
                assert!(s.frames.iter().all(|f| f.payload.end <= garbage.len()), "round {round}");
            }
            let count = rng.next() % 4;
            let payloads: Vec<Vec<u8>> = (0..count).map(|_| [vec![b'{'], rng.bytes(40)].concat()).collect();
            let mut buf = Vec::new();
            for p in &payloads {
                encode(p, &mut buf);
            }
            let prefix = buf.len();
            buf.extend(rng.bytes(24));
            match scan(&buf) {
                Ok(s) => {
                    assert!(s.valid_len as usize >= prefix, "round {round}: a valid prefix was cut: {s:?}");
                    let found: Vec<&[u8]> = s.frames.iter().take(payloads.len()).map(|f| &buf[f.payload.clone()]).collect();
                    let want: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
                    assert_eq!(found, want, "round {round}");
                }
                // Garbage that happens to look like a frame header with data behind it.
                Err(c) => assert!(c.offset as usize >= prefix, "round {round}: corruption reported inside the valid prefix: {c:?}"),
            }
        }
    }
}
