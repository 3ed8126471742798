//! Which brokers the controller counts alive, as plain code over a monotonic clock (`Instant`; the
//! caller passes `now`, so tests drive time by hand).
//!
//! A broker is alive when the leader saw a heartbeat within the session timeout. Two moments give every
//! broker a fresh session instead: the start of a leadership (a new leader, or a new term, has no
//! heartbeat history) and the controller's own stall — when its previous tick lies more than a session
//! in the past, this process was paused (SIGSTOP, a VM or GC pause, a stuck disk) and the missing
//! heartbeats say nothing about the other brokers. Fencing then waits one full session of ticks that
//! run on time.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The controller's view of broker sessions while it leads one term.
#[derive(Debug)]
pub struct Sessions {
    session: Duration,
    /// Term this view belongs to; a different term starts over.
    term: Option<u64>,
    /// Heartbeats older than this do not count against a broker: the start of the leadership or of the
    /// last recovery from a stall.
    grace_from: Option<Instant>,
    last_tick: Option<Instant>,
}

/// What one tick found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub alive: BTreeSet<i32>,
    /// The controller's own previous tick was longer ago than a session: it was paused, and every
    /// broker got a fresh session.
    pub stalled_for: Option<Duration>,
}

impl Sessions {
    pub fn new(session: Duration) -> Self {
        Sessions { session, term: None, grace_from: None, last_tick: None }
    }

    /// This node stopped leading: forget everything.
    pub fn stop_leading(&mut self) {
        *self = Sessions::new(self.session);
    }

    /// One tick at `now` while leading in `term`: the brokers counted alive. `me` always is;
    /// `last_seen` gives a broker's last heartbeat.
    pub fn tick(&mut self, now: Instant, term: u64, me: i32, brokers: impl IntoIterator<Item = i32>, last_seen: impl Fn(i32) -> Option<Instant>) -> Tick {
        if self.term != Some(term) {
            self.term = Some(term);
            self.grace_from = Some(now);
            self.last_tick = None;
        }
        let stalled_for = self.last_tick.map(|t| now.saturating_duration_since(t)).filter(|gap| *gap > self.session);
        if stalled_for.is_some() {
            self.grace_from = Some(now);
        }
        self.last_tick = Some(now);
        let grace_from = *self.grace_from.get_or_insert(now);
        let alive = brokers
            .into_iter()
            .filter(|id| {
                if *id == me {
                    return true;
                }
                let seen = last_seen(*id).map_or(grace_from, |t| t.max(grace_from));
                now.saturating_duration_since(seen) < self.session
            })
            .collect();
        Tick { alive, stalled_for }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_millis(6_000);
    const TICK: Duration = Duration::from_millis(500);

    fn ids(v: &[i32]) -> BTreeSet<i32> {
        v.iter().copied().collect()
    }

    #[test]
    fn a_new_leader_gives_everyone_a_full_session() {
        let t0 = Instant::now();
        let mut s = Sessions::new(SESSION);
        assert_eq!(s.tick(t0, 3, 1, [1, 2, 3], |_| None).alive, ids(&[1, 2, 3]));
        // Broker 2 heartbeats, broker 3 never does.
        let mut now = t0;
        while now < t0 + SESSION - TICK {
            now += TICK;
            assert_eq!(s.tick(now, 3, 1, [1, 2, 3], |_| None).alive, ids(&[1, 2, 3]), "within the first session");
        }
        now += 2 * TICK;
        assert_eq!(s.tick(now, 3, 1, [1, 2, 3], |id| (id == 2).then_some(now)).alive, ids(&[1, 2]));
    }

    #[test]
    fn after_a_tick_gap_longer_than_the_session_it_fences_nobody() {
        let t0 = Instant::now();
        let mut s = Sessions::new(SESSION);
        let mut now = t0;
        // Leading steadily, everyone heartbeating.
        for _ in 0..20 {
            now += TICK;
            let seen = now;
            assert_eq!(s.tick(now, 3, 1, [1, 2, 3], |_| Some(seen)).alive, ids(&[1, 2, 3]));
        }
        // The process is frozen for 15 s: the last heartbeats it has are 15 s old when it wakes.
        let frozen_at = now;
        now += Duration::from_secs(15);
        let tick = s.tick(now, 3, 1, [1, 2, 3], |_| Some(frozen_at));
        assert_eq!(tick.alive, ids(&[1, 2, 3]), "a stall of its own is no evidence against the others");
        assert_eq!(tick.stalled_for, Some(Duration::from_secs(15)));
        // Ticks on time again: a broker that really is gone is fenced one session later, not before.
        while now < frozen_at + Duration::from_secs(15) + SESSION - TICK {
            now += TICK;
            let seen = now;
            let tick = s.tick(now, 3, 1, [1, 2, 3], |id| if id == 3 { Some(frozen_at) } else { Some(seen) });
            assert_eq!(tick.alive, ids(&[1, 2, 3]));
            assert_eq!(tick.stalled_for, None);
        }
        now += 2 * TICK;
        let seen = now;
        assert_eq!(s.tick(now, 3, 1, [1, 2, 3], |id| if id == 3 { Some(frozen_at) } else { Some(seen) }).alive, ids(&[1, 2]));
    }

    #[test]
    fn a_gap_shorter_than_the_session_changes_nothing() {
        let t0 = Instant::now();
        let mut s = Sessions::new(SESSION);
        s.tick(t0, 3, 1, [1, 2], |_| Some(t0));
        let later = t0 + SESSION + TICK;
        // Ticking on time through a long silence of broker 2 fences it.
        let mut now = t0;
        while now < later {
            now += TICK;
            s.tick(now, 3, 1, [1, 2], |_| Some(t0));
        }
        assert_eq!(s.tick(now, 3, 1, [1, 2], |_| Some(t0)).alive, ids(&[1]));
    }

    #[test]
    fn a_new_term_starts_over() {
        let t0 = Instant::now();
        let mut s = Sessions::new(SESSION);
        s.tick(t0, 3, 1, [1, 2], |_| None);
        let now = t0 + SESSION + TICK;
        assert_eq!(s.tick(t0 + SESSION - TICK, 3, 1, [1, 2], |_| None).alive, ids(&[1, 2]));
        assert_eq!(s.tick(now, 3, 1, [1, 2], |_| None).alive, ids(&[1]));
        assert_eq!(s.tick(now + TICK, 4, 1, [1, 2], |_| None).alive, ids(&[1, 2]), "re-elected in term 4: a fresh session");
        s.stop_leading();
        assert_eq!(s.tick(now + 2 * TICK, 4, 1, [1, 2], |_| None).alive, ids(&[1, 2]));
    }
}
