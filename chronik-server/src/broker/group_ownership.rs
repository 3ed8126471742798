//! What the group coordinator's last ownership sync (`groups::ownership::sync`) saw, kept with the
//! broker so the next sync notices topics deleted meanwhile.

use std::collections::BTreeSet;

use parking_lot::Mutex;

#[derive(Default)]
pub struct GroupOwnership {
    /// Topic names at the last sync; `None` before the first one (nothing is "deleted" at start).
    pub known_topics: Mutex<Option<BTreeSet<String>>>,
}
