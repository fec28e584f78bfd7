//! The deadline queue against the simplest model: a map of each call's last deadline.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use talktime_b2bua::Deadlines;

#[derive(Debug, Clone)]
enum Step {
    Set(u8, Option<u16>),
    Remove(u8),
    PopDue(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..8, prop::option::of(0u16..1000)).prop_map(|(key, due)| Step::Set(key, due)),
        1 => (0u8..8).prop_map(Step::Remove),
        3 => (0u16..1000).prop_map(Step::PopDue),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Every call fires at its last deadline set, never at an earlier or later one, once.
    #[test]
    fn the_queue_fires_each_calls_last_deadline(steps in prop::collection::vec(step(), 0..80)) {
        let mut deadlines = Deadlines::new();
        let mut model: HashMap<u8, u16> = HashMap::new();
        for step in steps {
            match step {
                Step::Set(key, due) => {
                    deadlines.set(key, due);
                    match due {
                        Some(due) => model.insert(key, due),
                        None => model.remove(&key),
                    };
                }
                Step::Remove(key) => {
                    deadlines.remove(key);
                    model.remove(&key);
                }
                Step::PopDue(now) => {
                    while let Some(key) = deadlines.pop_due(now) {
                        let due = model.remove(&key);
                        prop_assert!(due.is_some_and(|due| due <= now), "{key} popped early");
                    }
                    prop_assert!(model.values().all(|due| *due > now), "a due call was not popped");
                }
            }
            prop_assert_eq!(deadlines.next(), model.values().min().copied());
            prop_assert_eq!(deadlines.len(), model.len());
            for (key, due) in &model {
                prop_assert_eq!(deadlines.get(*key), Some(*due));
            }
        }
    }
}
