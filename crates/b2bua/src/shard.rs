//! Calls spread over core threads (issue 19, `[sip] core_threads`). Each core thread runs a
//! [`Switch`] of its own (transactions, dialogs, calls, a slice of the RTP ports); a call
//! belongs to the core that a hash of its Call-ID names, so every message of both its legs
//! (a caller's INVITE, ACK, CANCEL and BYE; a carrier's responses and requests) reaches the
//! same core: the caller chose the caller leg's Call-ID, and the switch draws its own
//! Call-IDs until one hashes to itself. A call key carries its core as `key % cores`, so a
//! ledger answer, a media report or an operator's hang-up finds its core without a table.
//!
//! What one node must count once is [`Shared`] by every core behind a lock held for a
//! look-up: the per-source admission buckets and calls, the abuse alarms, the subscribers'
//! digest nonces, and the router (carrier capacity, call rates and OPTIONS health; core 0
//! alone pings and registers).
//! What is split evenly instead: `[admission] max_calls`, `max_transactions` and the RTP
//! ports, each a capacity of the core that holds them.
//!
//! Pure functions and plain data: the shell asks [`route`] where an input goes and
//! [`shard_of_datagram`] where a datagram goes.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::switch::Input;

/// More core threads than this is a typing error, not a machine.
pub const MAX_CORE_THREADS: usize = 64;

/// A switch's place among the node's cores.
#[derive(Debug, Clone)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
    pub shared: Arc<Shared>,
}

/// What the cores of one node count together.
#[derive(Debug)]
pub struct Shared {
    pub(crate) admission: Mutex<crate::admission::Admission>,
    pub(crate) alarms: Mutex<crate::alarms::Alarms>,
    pub(crate) router: Mutex<talktime_routing::Router>,
    pub(crate) nonces: Mutex<crate::subscribers::Nonces>,
}

impl Shared {
    pub fn new(router: talktime_routing::Router, alarms: crate::alarms::AlarmConfig) -> Shared {
        Shared {
            admission: Mutex::default(),
            alarms: Mutex::new(crate::alarms::Alarms::new(alarms)),
            router: Mutex::new(router),
            nonces: Mutex::default(),
        }
    }
}

/// A held lock; a core that panicked while holding it left plain counters, still usable.
pub(crate) fn hold<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The core a Call-ID belongs to: FNV-1a of its bytes, modulo the cores.
pub fn shard_of_call_id(call_id: &str, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in call_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % count as u64) as usize
}

/// The core of a call key (a core hands out keys `index + count × n`).
pub fn shard_of_key(key: u64, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    (key % count as u64) as usize
}

/// The core a datagram goes to, by its Call-ID read without parsing the message; `None`
/// when it has none (the receiving core drops it as unparseable).
pub fn shard_of_datagram(bytes: &[u8], count: usize) -> Option<usize> {
    if count <= 1 {
        return Some(0);
    }
    talktime_sip::peek_call_id(bytes).map(|call_id| shard_of_call_id(call_id, count))
}

/// Each core's RTP ports: the range cut into `count` slices of whole even/odd pairs; one
/// core keeps the range as configured.
pub fn port_ranges(first: u16, last: u16, count: usize) -> Result<Vec<(u16, u16)>, String> {
    if count <= 1 {
        return Ok(vec![(first, last)]);
    }
    let first_even = u32::from(first) + u32::from(first % 2);
    let pairs = (u32::from(last) + 1).saturating_sub(first_even) / 2;
    let per_core = pairs / count as u32;
    // A call holds two pairs (caller and carrier): a core needs room for one call at least.
    if per_core < 2 {
        return Err(format!(
            "ports {first}-{last} hold {pairs} RTP pairs, too few for {count} core threads"
        ));
    }
    Ok((0..count as u32)
        .map(|index| {
            let start = first_even + index * per_core * 2;
            let end = start + per_core * 2 - 1;
            // Within u16: both are inside first..=last.
            (start as u16, end as u16)
        })
        .collect())
}

/// Where an input from outside the cores goes: one core (a call's, by its key; a failed
/// delivery's, by its transaction id, which names its core as a key does), or each (a stop, a
/// drain, a routing change, an operator's hang-up of an account, a new prompt).
pub fn route(input: Input, count: usize) -> Vec<(usize, Input)> {
    if count <= 1 {
        return vec![(0, input)];
    }
    let every = |make: &dyn Fn() -> Input| (0..count).map(|index| (index, make())).collect();
    match input {
        Input::Ledger { call, .. }
        | Input::Media { call, .. }
        | Input::OperatorHangup { call, .. } => vec![(shard_of_key(call, count), input)],
        Input::Callback(ref request) => {
            vec![(shard_of_call_id(&request.call_id, count), input)]
        }
        Input::Datagram { ref bytes, .. } => {
            vec![(shard_of_datagram(bytes, count).unwrap_or(0), input)]
        }
        Input::Message { ref message, .. } => {
            let call_id = message.headers().get("Call-ID").unwrap_or_default();
            vec![(shard_of_call_id(call_id, count), input)]
        }
        Input::RecoveredByes(byes) => {
            let mut by_core: Vec<Vec<crate::recovery::LegBye>> = vec![Vec::new(); count];
            for bye in byes {
                by_core[bye.core(count)].push(bye);
            }
            by_core
                .into_iter()
                .enumerate()
                .filter(|(_, byes)| !byes.is_empty())
                .map(|(index, byes)| (index, Input::RecoveredByes(byes)))
                .collect()
        }
        Input::Stop => every(&|| Input::Stop),
        Input::Drain => every(&|| Input::Drain),
        Input::Lease { current } => every(&|| Input::Lease { current }),
        Input::DeliveryFailed(transaction) => {
            vec![(shard_of_key(transaction.as_u64(), count), input)]
        }
        Input::OperatorHangupAccount { account, by } => every(&|| Input::OperatorHangupAccount {
            account,
            by: by.clone(),
        }),
        Input::PromptUploaded { name, prompt } => every(&|| Input::PromptUploaded {
            name: name.clone(),
            prompt: prompt.clone(),
        }),
        Input::RoutingChanged(update) => {
            every(&|| Input::RoutingChanged(Box::new((*update).clone())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_always_lands_on_one_core_and_they_all_get_calls() {
        let mut seen = [0usize; 4];
        for n in 0..4000 {
            let call_id = format!("{n}-caller@10.0.0.1");
            let core = shard_of_call_id(&call_id, 4);
            assert_eq!(core, shard_of_call_id(&call_id, 4));
            seen[core] += 1;
        }
        assert!(
            seen.iter().all(|calls| (800..1200).contains(calls)),
            "{seen:?}"
        );
        assert_eq!(shard_of_call_id("anything", 1), 0);
    }

    #[test]
    fn a_datagram_goes_where_its_parsed_call_id_goes() {
        let datagram = b"INVITE sip:100@switch SIP/2.0\r\nVia: SIP/2.0/UDP gw;branch=z9hG4bK1\r\n\
            From: <sip:a@gw>;tag=1\r\nTo: <sip:100@switch>\r\ni:  abc@gw \r\nCSeq: 1 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let parsed = talktime_sip::Message::parse(datagram).unwrap();
        let call_id = parsed.headers().get("Call-ID").unwrap().to_owned();
        for count in 2..9 {
            assert_eq!(
                shard_of_datagram(datagram, count),
                Some(shard_of_call_id(&call_id, count))
            );
        }
        assert_eq!(shard_of_datagram(b"garbage", 2), None);
    }

    #[test]
    fn ports_are_cut_into_disjoint_even_slices_and_a_short_range_is_refused() {
        assert_eq!(port_ranges(10000, 20000, 1).unwrap(), vec![(10000, 20000)]);
        let slices = port_ranges(10001, 10020, 2).unwrap();
        assert_eq!(slices, vec![(10002, 10009), (10010, 10017)]);
        for (start, end) in port_ranges(10000, 20000, 3).unwrap() {
            assert_eq!(start % 2, 0);
            assert_eq!(end % 2, 1);
            assert!(start >= 10000 && end <= 20000);
        }
        assert!(port_ranges(10000, 10005, 2).is_err());
    }

    #[test]
    fn inputs_for_a_call_go_to_its_core_and_a_stop_to_every_core() {
        let routed = route(
            Input::OperatorHangup {
                call: 7,
                by: "admin".into(),
            },
            3,
        );
        assert_eq!(routed.len(), 1);
        assert_eq!(routed[0].0, 1);
        let routed = route(Input::Stop, 3);
        let cores: Vec<usize> = routed.iter().map(|(core, _)| *core).collect();
        assert_eq!(cores, vec![0, 1, 2]);
        assert_eq!(route(Input::Stop, 1).len(), 1);
    }
}
