//! Framing of peer RPCs on the raft port: `[len u32 big-endian][serde_json body]`, one request then
//! one response on a connection at a time.
//!
//! The length is checked against [`PEER_FRAME_BYTES_MAX`] before the body is allocated, so a
//! corrupt or hostile length cannot make a node allocate gigabytes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::peer::error::WireError;

/// Largest frame body accepted or sent. A snapshot chunk (openraft's default 3 MiB of bytes) grows
/// about four times as a JSON number array, so 64 MiB leaves ample room while still bounding memory.
pub const PEER_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Size of the length prefix.
const LEN_BYTES: usize = 4;

/// Encode `msg` and write it as one frame (a single buffered write, then flush).
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), WireError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut buf = vec![0u8; LEN_BYTES];
    serde_json::to_writer(&mut buf, msg).map_err(WireError::Encode)?;
    let body = buf.len() - LEN_BYTES;
    if body > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge { bytes: body, max_bytes: PEER_FRAME_BYTES_MAX });
    }
    // `body <= PEER_FRAME_BYTES_MAX` (64 MiB) was checked above, so it fits in a u32.
    let len = body as u32;
    buf[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    w.write_all(&buf).await.map_err(|source| WireError::Io { verb: "write frame", source })?;
    w.flush().await.map_err(|source| WireError::Io { verb: "flush frame", source })
}

/// Read one frame and decode it. `Ok(None)` when the peer closed the connection cleanly between
/// frames (an expected end, not an error).
pub async fn read_frame<R, T>(r: &mut R) -> Result<Option<T>, WireError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; LEN_BYTES];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => return Err(WireError::Io { verb: "read frame length", source }),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > PEER_FRAME_BYTES_MAX {
        return Err(WireError::TooLarge { bytes: len, max_bytes: PEER_FRAME_BYTES_MAX });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|source| WireError::Io { verb: "read frame body", source })?;
    serde_json::from_slice(&body).map(Some).map_err(WireError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_clean_eof_is_none() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, &vec!["x".to_string(), "yz".to_string()]).await.expect("write");
        write_frame(&mut a, &7u32).await.expect("write");
        drop(a);
        let first: Option<Vec<String>> = read_frame(&mut b).await.expect("read");
        assert_eq!(first, Some(vec!["x".to_string(), "yz".to_string()]));
        assert_eq!(read_frame::<_, u32>(&mut b).await.expect("read"), Some(7));
        assert_eq!(read_frame::<_, u32>(&mut b).await.expect("eof"), None);
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_reading_the_body() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let len = (PEER_FRAME_BYTES_MAX as u32) + 1;
        a.write_all(&len.to_be_bytes()).await.expect("write");
        match read_frame::<_, u32>(&mut b).await {
            Err(WireError::TooLarge { bytes, max_bytes }) => {
                assert_eq!(bytes, PEER_FRAME_BYTES_MAX + 1);
                assert_eq!(max_bytes, PEER_FRAME_BYTES_MAX);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn torn_body_is_an_error_not_eof() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&10u32.to_be_bytes()).await.expect("write");
        a.write_all(b"{\"a").await.expect("write");
        drop(a);
        assert!(matches!(read_frame::<_, u32>(&mut b).await, Err(WireError::Io { verb: "read frame body", .. })));
    }
}
