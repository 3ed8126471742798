//! A response frame as a list of `Bytes` chunks, written to the socket with `writev` (tokio's
//! `write_all_buf` on a [`Buf`] with many chunks). It lets a Fetch response send record data straight
//! from the mapped segments: the encoded fields sit in small chunks between the record slices, so no
//! record byte is copied in user space (see `api::fetch_response`).

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// One whole response frame, length prefix included, in send order.
#[derive(Debug, Default)]
pub struct ResponseFrame {
    /// Unsent chunks; the front one may be partly sent already (it is advanced in place).
    chunks: VecDeque<Bytes>,
    /// Unsent bytes over all chunks.
    remaining: usize,
}

impl ResponseFrame {
    /// A frame made of `chunks` in order; empty chunks are dropped.
    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> ResponseFrame {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(Bytes::len).sum();
        ResponseFrame { chunks, remaining }
    }

    /// Bytes of the frame not yet sent (all of it before writing starts).
    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Number of chunks left (tests check that record data stayed a chunk of its own).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The unsent chunks, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        self.chunks.iter()
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(b: Bytes) -> ResponseFrame {
        ResponseFrame::from_chunks([b])
    }
}

impl Buf for ResponseFrame {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map(|c| &c[..]).unwrap_or(&[])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance {cnt} past the {} bytes left", self.remaining);
        self.remaining -= cnt;
        while cnt > 0 {
            // The assert above guarantees a chunk holds the bytes still to skip.
            let Some(front) = self.chunks.front_mut() else { break };
            if cnt < front.len() {
                front.advance(cnt);
                break;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.chunks.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_across_chunks_and_lists_them_vectored() {
        let mut f = ResponseFrame::from_chunks([Bytes::from_static(b"abc"), Bytes::new(), Bytes::from_static(b"defg")]);
        assert_eq!((f.len(), f.chunk_count()), (7, 2));
        f.advance(2);
        assert_eq!(f.chunk(), b"c");
        let mut slots = [IoSlice::new(&[]); 4];
        assert_eq!(f.chunks_vectored(&mut slots), 2);
        assert_eq!((&*slots[0], &*slots[1]), (&b"c"[..], &b"defg"[..]));
        f.advance(3);
        assert_eq!(f.chunk(), b"fg");
        f.advance(2);
        assert!(!f.has_remaining());
        assert_eq!(f.chunk(), b"");
    }

    #[tokio::test]
    async fn write_all_buf_sends_every_chunk_in_order() {
        use tokio::io::AsyncWriteExt;
        let mut out: Vec<u8> = Vec::new();
        let mut f = ResponseFrame::from_chunks((0..200u8).map(|i| Bytes::from(vec![i; usize::from(i % 7) + 1])));
        let expected: Vec<u8> = f.chunks().flat_map(|c| c.iter().copied()).collect();
        out.write_all_buf(&mut f).await.unwrap();
        assert_eq!(out, expected);
    }
}
