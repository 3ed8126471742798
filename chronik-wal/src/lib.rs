//! Segmented log storage.
