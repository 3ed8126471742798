//! Placement planning.
