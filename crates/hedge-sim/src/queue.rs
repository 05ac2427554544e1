//! The event queue and the virtual clock.
//!
//! Events are kept in a min-heap ordered by `(time, seq)` — the classic `BinaryHeap<(Reverse<time>, seq,
//! event)>` loop, implemented as a 4-ary heap over packed integer keys for speed (see [`EventQueue`]).
//!
//! **Ordering guarantee.** Events pop in increasing time. Events scheduled for the *same* time pop in the
//! order they were scheduled (FIFO), because every push takes the next value of a monotonically increasing
//! sequence number and ties on time are broken by that number. The event payload never takes part in the
//! ordering, so two runs that push the same events in the same order pop them in the same order, whatever
//! the payload's own `Ord` (or lack of one). An event scheduled "now" (at the current time) while events
//! of the current time are being processed pops after all of those already queued for that time. Time
//! never goes backwards: scheduling an event in the past is clamped to the current time (and counted in
//! [`EventQueue::clamped`]), so a buggy model cannot reorder history.

/// Virtual time: whole seconds since the start of the simulation.
pub type SimTime = i64;

/// Packs (time, seq) into one integer whose order is (time, seq) order: the time's sign bit is flipped so
/// that signed order becomes unsigned order, and the sequence number fills the low 64 bits.
fn key(t: SimTime, seq: u64) -> u128 {
    (((t as u64) ^ (1 << 63)) as u128) << 64 | seq as u128
}
fn key_time(k: u128) -> SimTime {
    (((k >> 64) as u64) ^ (1 << 63)) as i64
}

const ARITY: usize = 4;

/// A deterministic priority queue of timed events with a virtual clock: a 4-ary min-heap over packed
/// (time, seq) keys, with keys and payloads in separate arrays so that sifting compares 16-byte keys only.
pub struct EventQueue<E> {
    keys: Vec<u128>,
    events: Vec<E>,
    seq: u64,
    now: SimTime,
    popped: u64,
    clamped: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            keys: Vec::new(),
            events: Vec::new(),
            seq: 0,
            now: 0,
            popped: 0,
            clamped: 0,
        }
    }
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            keys: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            ..Self::new()
        }
    }
    /// The virtual clock: the time of the last popped event (0 before the first).
    pub fn now(&self) -> SimTime {
        self.now
    }
    /// Schedules `event` at absolute time `at` (clamped to [`now`](Self::now)).
    pub fn schedule(&mut self, at: SimTime, event: E) {
        let at = if at < self.now {
            self.clamped += 1;
            self.now
        } else {
            at
        };
        let k = key(at, self.seq);
        self.seq += 1;
        // Sift up with a hole.
        let mut i = self.keys.len();
        self.keys.push(k);
        self.events.push(event);
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.keys[parent] <= k {
                break;
            }
            self.keys.swap(i, parent);
            self.events.swap(i, parent);
            i = parent;
        }
    }
    /// Schedules `event` `delay` seconds from now.
    pub fn schedule_in(&mut self, delay: i64, event: E) {
        self.schedule(self.now.saturating_add(delay.max(0)), event);
    }
    /// Pops the next event and advances the clock to its time.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(SimTime, E)> {
        let n = self.keys.len();
        if n == 0 {
            return None;
        }
        self.keys.swap(0, n - 1);
        self.events.swap(0, n - 1);
        let k = self.keys.pop().expect("non-empty");
        let e = self.events.pop().expect("non-empty");
        let n = n - 1;
        let mut i = 0;
        loop {
            let first = i * ARITY + 1;
            if first >= n {
                break;
            }
            let last = (first + ARITY).min(n);
            let mut m = first;
            for c in first + 1..last {
                if self.keys[c] < self.keys[m] {
                    m = c;
                }
            }
            if self.keys[m] >= self.keys[i] {
                break;
            }
            self.keys.swap(i, m);
            self.events.swap(i, m);
            i = m;
        }
        self.now = key_time(k);
        self.popped += 1;
        Some((self.now, e))
    }
    /// Time of the next event, if any, without popping it.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.keys.first().map(|&k| key_time(k))
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.popped
    }
    /// Schedules that asked for a time in the past and were clamped to now.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_time_is_fifo_and_clock_advances() {
        let mut q = EventQueue::new();
        q.schedule(10, "b1");
        q.schedule(5, "a");
        q.schedule(10, "b2");
        q.schedule(10, "b0-later-pushed");
        assert_eq!(q.next(), Some((5, "a")));
        assert_eq!(q.now(), 5);
        q.schedule(1, "past"); // clamped to 5
        assert_eq!(q.clamped(), 1);
        assert_eq!(q.next(), Some((5, "past")));
        let rest: Vec<_> = std::iter::from_fn(|| q.next()).collect();
        assert_eq!(rest, vec![(10, "b1"), (10, "b2"), (10, "b0-later-pushed")]);
        assert_eq!(q.processed(), 5);
    }

    #[test]
    fn negative_and_extreme_times_order() {
        let mut q = EventQueue::new();
        q.now = i64::MIN;
        for t in [5, -3, i64::MAX, 0, i64::MIN + 1, -3] {
            q.schedule(t, t);
        }
        let got: Vec<i64> = std::iter::from_fn(|| q.next().map(|e| e.1)).collect();
        assert_eq!(got, vec![i64::MIN + 1, -3, -3, 0, 5, i64::MAX]);
    }

    proptest! {
        /// Pop order is exactly a stable sort of the pushes by time.
        #[test]
        fn pops_in_stable_time_order(times in proptest::collection::vec(0i64..50, 0..2000)) {
            let mut q = EventQueue::new();
            for (i, t) in times.iter().enumerate() {
                q.schedule(*t, i);
            }
            let mut want: Vec<(i64, usize)> = times.iter().copied().zip(0..).collect();
            want.sort_by_key(|&(t, _)| t); // stable
            let got: Vec<_> = std::iter::from_fn(|| q.next()).collect();
            prop_assert_eq!(got, want);
        }

        /// Interleaved schedules and pops match a reference model (a sorted set of (time, seq)).
        #[test]
        fn interleaved_matches_reference(ops in proptest::collection::vec((any::<bool>(), 0i64..100), 0..3000)) {
            let mut q = EventQueue::new();
            let mut model = std::collections::BTreeSet::new();
            let mut seq = 0u64;
            for (push, dt) in ops {
                if push {
                    let at = q.now() + dt;
                    q.schedule(at, seq);
                    model.insert((at, seq));
                    seq += 1;
                } else {
                    let want = model.pop_first();
                    prop_assert_eq!(q.next(), want);
                }
            }
            prop_assert_eq!(q.len(), model.len());
        }
    }
}
