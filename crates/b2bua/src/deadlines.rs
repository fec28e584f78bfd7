//! One deadline per call, replaced (never added to) whenever the call's next deadline moves.
//!
//! Why not a heap of `(deadline, call)` entries: a heap cannot drop an entry, so a shell that
//! pushes only deadlines earlier than the one it armed loses every deadline that moves later
//! (issue 11: an entry timeout replaced by the credit limit left the limit unarmed and the
//! call ran past its credit). Here a call has exactly one entry, the last one `set`, in an
//! ordered set: moving it earlier or later is a remove and an insert, and a popped call has no
//! entry until the shell sets the next one. The shell re-sets a call's deadline after every
//! input it feeds the call, including the expiry itself, so no order of moves can lose one.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Deadlines keyed by call; `T` is the time type (the shell's `Instant`, a test's virtual one).
#[derive(Debug, Clone)]
pub struct Deadlines<K, T> {
    by_key: HashMap<K, T>,
    ordered: BTreeSet<(T, K)>,
}

impl<K, T> Default for Deadlines<K, T> {
    fn default() -> Self {
        Deadlines {
            by_key: HashMap::new(),
            ordered: BTreeSet::new(),
        }
    }
}

impl<K, T> Deadlines<K, T>
where
    K: Copy + Ord + Hash,
    T: Copy + Ord,
{
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `due` the call's only deadline (`None`: the call waits for nothing).
    pub fn set(&mut self, key: K, due: Option<T>) {
        let previous = match due {
            Some(due) => self.by_key.insert(key, due),
            None => self.by_key.remove(&key),
        };
        if previous == due {
            return;
        }
        if let Some(previous) = previous {
            self.ordered.remove(&(previous, key));
        }
        if let Some(due) = due {
            self.ordered.insert((due, key));
        }
    }

    /// Forgets a call that has ended.
    pub fn remove(&mut self, key: K) {
        self.set(key, None);
    }

    /// The call's armed deadline.
    pub fn get(&self, key: K) -> Option<T> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline of all calls: when the shell must wake up next.
    pub fn next(&self) -> Option<T> {
        self.ordered.first().map(|(due, _)| *due)
    }

    /// Takes out one call whose deadline is at or before `now`, earliest first. The call has
    /// no deadline afterwards: the shell handles the expiry and sets the next one.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        let (due, key) = *self.ordered.first()?;
        if due > now {
            return None;
        }
        self.ordered.pop_first();
        self.by_key.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_moved_later_is_the_one_that_fires() {
        let mut deadlines = Deadlines::new();
        deadlines.set(1u64, Some(10u64));
        deadlines.set(1, Some(50));
        assert_eq!(deadlines.pop_due(10), None, "the earlier deadline is gone");
        assert_eq!(deadlines.next(), Some(50));
        assert_eq!(deadlines.pop_due(50), Some(1));
        assert!(deadlines.is_empty());
    }

    #[test]
    fn calls_fire_in_deadline_order() {
        let mut deadlines = Deadlines::new();
        deadlines.set(1u64, Some(30u64));
        deadlines.set(2, Some(10));
        deadlines.set(3, Some(20));
        deadlines.set(3, None);
        assert_eq!(deadlines.pop_due(100), Some(2));
        assert_eq!(deadlines.pop_due(100), Some(1));
        assert_eq!(deadlines.pop_due(100), None);
    }
}
