//! Length-prefixed frames: a 4-byte big-endian size, then the request. A size above `frame_bytes_max`
//! (or negative) is refused before anything is allocated for it.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds frame_bytes_max {max}")]
    TooLarge { size: i64, max: usize },
    #[error("frame of {size} bytes is too short for a request header")]
    TooShort { size: i64 },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Smallest request: api key, api version, correlation id, client id length.
const REQUEST_HEADER_BYTES_MIN: i64 = 10;

/// Reads one frame. `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, frame_bytes_max: usize) -> Result<Option<Bytes>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i64::from(i32::from_be_bytes(len));
    if size < REQUEST_HEADER_BYTES_MIN {
        return Err(FrameError::TooShort { size });
    }
    if size as u64 > frame_bytes_max as u64 {
        return Err(FrameError::TooLarge { size, max: frame_bytes_max });
    }
    // Read into spare capacity rather than a zero-filled buffer (zeroing showed in the produce
    // profile); `take` stops exactly at the frame end.
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size);
    let mut body = (&mut *reader).take(size as u64);
    while buf.len() < size {
        if body.read_buf(&mut buf).await? == 0 {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(buf.freeze()))
}

/// A response buffer with room reserved for the length prefix; [`finish`] fills it in.
pub fn response_buffer(capacity_hint: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity_hint + 4);
    buf.put_i32(0);
    buf
}

/// Writes the length prefix of a buffer made by [`response_buffer`].
pub fn finish(mut buf: BytesMut) -> Bytes {
    let body_len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&body_len.to_be_bytes());
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut input, 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn negative_and_tiny_frames_are_refused() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut input, 1024).await, Err(FrameError::TooShort { .. })));
        let mut input: &[u8] = &[0, 0, 0, 2, 0, 0];
        assert!(matches!(read_frame(&mut input, 1024).await, Err(FrameError::TooShort { .. })));
    }

    #[tokio::test]
    async fn clean_eof_and_whole_frame() {
        let mut input: &[u8] = &[];
        assert!(read_frame(&mut input, 1024).await.unwrap().is_none());
        let mut input: &[u8] = &[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0];
        let frame = read_frame(&mut input, 1024).await.unwrap().unwrap();
        assert_eq!(frame.len(), 10);
    }

    /// Random cases per property (each drawn from its seed, printed on failure).
    const CASES: u64 = 2_000;
    const MAX: usize = 512;

    #[tokio::test]
    async fn arbitrary_bytes_never_panic_and_frames_respect_the_limits() {
        for seed in 0..CASES {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut bytes = vec![0u8; rng.usize(0..700)];
            rng.fill(&mut bytes);
            if bytes.len() >= 4 && rng.bool() {
                // A plausible size, so the body is read too.
                let size = rng.i32(-1..(MAX as i32 + 2));
                bytes[..4].copy_from_slice(&size.to_be_bytes());
            }
            let mut input: &[u8] = &bytes;
            while let Ok(Some(frame)) = read_frame(&mut input, MAX).await {
                assert!((REQUEST_HEADER_BYTES_MIN as usize..=MAX).contains(&frame.len()), "seed {seed}: {} bytes", frame.len());
            }
        }
    }

    #[tokio::test]
    async fn valid_frames_round_trip() {
        for seed in 0..CASES {
            let mut rng = fastrand::Rng::with_seed(seed);
            let bodies: Vec<Vec<u8>> = (0..rng.usize(1..5))
                .map(|_| {
                    let mut body = vec![0u8; rng.usize(REQUEST_HEADER_BYTES_MIN as usize..=MAX)];
                    rng.fill(&mut body);
                    body
                })
                .collect();
            let mut stream = Vec::new();
            for body in &bodies {
                let mut out = response_buffer(body.len());
                out.extend_from_slice(body);
                stream.extend_from_slice(&finish(out));
            }
            let mut input: &[u8] = &stream;
            for body in &bodies {
                let frame = read_frame(&mut input, MAX).await.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert_eq!(frame.as_deref(), Some(body.as_slice()), "seed {seed}");
            }
            assert!(read_frame(&mut input, MAX).await.unwrap().is_none(), "seed {seed}");
        }
    }
}
