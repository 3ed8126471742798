//! Properties of the batch decoder over seeded random inputs: arbitrary or damaged bytes never panic
//! `split_batches`, `BatchView::whole` or `stored_headers`; a valid record set splits back into exactly
//! the batches it was made of; damage to a batch's checked bytes is always refused.
//!
//! Each case is drawn from a seed printed on failure, so a failing case is rerun with that seed.
#![allow(clippy::unwrap_used)]
mod common;

use chronik_wal::{split_batches, stored_headers, BatchError, BatchView, BATCH_HEADER_BYTES};
use common::*;

/// Random cases per property.
const CASES: u64 = 2_000;

/// A record set of 1..=5 valid batches with random record counts and payloads, and the batches.
fn record_set(rng: &mut fastrand::Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
    let batches: Vec<Vec<u8>> = (0..rng.usize(1..=5)).map(|_| batch(rng.i32(1..=50), rng.i64(0..1 << 40), rng.usize(0..200))).collect();
    (batches.concat(), batches)
}

/// Calls every decoder on `bytes`; they may refuse, never panic. What they accept is self-consistent.
fn decode_all(bytes: &[u8]) {
    if let Ok(views) = split_batches(bytes) {
        assert_eq!(views.iter().map(|v| v.len()).sum::<usize>(), bytes.len());
        assert!(views.iter().all(|v| v.len() >= BATCH_HEADER_BYTES));
    }
    if let Ok(view) = BatchView::whole(bytes) {
        assert_eq!(view.len(), bytes.len());
    }
    let covered: usize = stored_headers(bytes).map(|h| h.size as usize).sum();
    assert!(covered <= bytes.len());
}

#[test]
fn arbitrary_bytes_never_panic() {
    for seed in 0..CASES {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut bytes = vec![0u8; rng.usize(0..400)];
        rng.fill(&mut bytes);
        // Half the cases get a plausible length and magic, so the decoders get past the first checks.
        if bytes.len() >= BATCH_HEADER_BYTES && rng.bool() {
            let length = rng.i32(-2..=(bytes.len() as i32));
            bytes[8..12].copy_from_slice(&length.to_be_bytes());
            bytes[16] = 2;
        }
        std::panic::catch_unwind(|| decode_all(&bytes)).unwrap_or_else(|_| panic!("seed {seed}: {bytes:?}"));
    }
}

#[test]
fn damaged_record_sets_never_panic() {
    for seed in 0..CASES {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut set, _) = record_set(&mut rng);
        match rng.u8(0..3) {
            0 => set.truncate(rng.usize(0..set.len())),
            1 => {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(0..set.len());
                    set[at] = rng.u8(..);
                }
            }
            _ => {
                // A length field anywhere in the first batch's header area, the most dangerous field.
                let at = rng.usize(0..set.len().saturating_sub(4).max(1));
                set[at..at + 4].copy_from_slice(&rng.i32(..).to_be_bytes());
            }
        }
        std::panic::catch_unwind(|| decode_all(&set)).unwrap_or_else(|_| panic!("seed {seed}"));
    }
}

#[test]
fn a_valid_record_set_splits_into_its_batches() {
    for seed in 0..CASES {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (set, batches) = record_set(&mut rng);
        let views = split_batches(&set).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(views.len(), batches.len(), "seed {seed}");
        let mut at = 0;
        for (view, b) in views.iter().zip(&batches) {
            assert_eq!((view.bytes(), view.start()), (b.as_slice(), at), "seed {seed}");
            let records = i32::from_be_bytes(b[57..61].try_into().unwrap());
            assert_eq!(view.header().last_offset_delta, records - 1, "seed {seed}");
            let mut alone = *view.header();
            alone.position = 0;
            assert_eq!(BatchView::whole(b).unwrap().header(), &alone, "seed {seed}");
            at += b.len();
        }
        let stored: Vec<_> = stored_headers(&set).collect();
        assert_eq!(stored, views.iter().map(|v| *v.header()).collect::<Vec<_>>(), "seed {seed}");
    }
}

#[test]
fn damage_to_checked_bytes_is_refused() {
    for seed in 0..CASES {
        let mut rng = fastrand::Rng::with_seed(seed);
        let b = batch(rng.i32(1..=50), rng.i64(0..1 << 40), rng.usize(0..200));
        // Everything from the magic byte on is checked (magic, CRC, CRC-covered bytes); the base
        // offset and the leader epoch before it are stamped by the broker and not covered.
        let at = rng.usize(16..b.len());
        let mut damaged = b.clone();
        damaged[at] ^= rng.u8(1..);
        assert!(matches!(split_batches(&damaged), Err(BatchError::Invalid { at: 0, .. })), "seed {seed}: byte {at}");
    }
}
