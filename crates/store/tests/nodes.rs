//! The switches on one ledger (issue 19): registration, heartbeats, a drain asked for by an
//! operator and read back by the node, a clean stop, and the state `talktime nodes list`
//! shows. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use talktime_store::*;

const NOW: i64 = 1_700_000_000_000;
const LEASE: i64 = 10_000;

fn state_of(nodes: &[NodeRow], name: &str, now: i64) -> NodeState {
    nodes
        .iter()
        .find(|node| node.node_id == name)
        .unwrap()
        .state(now, LEASE)
}

ledger_test!(a_drain_reaches_its_node_and_a_restart_clears_it, |store| {
    let first = store.clone().with_node("node-a");
    let second = store.clone().with_node("node-b");
    first.register_node(NOW).await.unwrap();
    second.register_node(NOW).await.unwrap();
    assert!(!first.heartbeat(NOW + 1_000).await.unwrap());

    // Anyone on the ledger may ask; only the named node hears it.
    assert!(store.request_drain("node-a", NOW + 1_500).await.unwrap());
    assert!(!store.request_drain("node-z", NOW + 1_500).await.unwrap());
    assert!(first.heartbeat(NOW + 2_000).await.unwrap());
    assert!(!second.heartbeat(NOW + 2_000).await.unwrap());
    // Asked again: the first request's time stays.
    assert!(store.request_drain("node-a", NOW + 2_500).await.unwrap());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].drain_requested_ms, Some(NOW + 1_500));
    assert_eq!(state_of(&nodes, "node-a", NOW + 2_000), NodeState::Draining);
    assert_eq!(state_of(&nodes, "node-b", NOW + 2_000), NodeState::Up);

    // It stops by itself: stopped, not dead, even long after its last heartbeat.
    first.node_stopped(NOW + 3_000).await.unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!(state_of(&nodes, "node-a", NOW + 60_000), NodeState::Stopped);
    // The other went silent past the lease: dead.
    assert_eq!(state_of(&nodes, "node-b", NOW + 60_000), NodeState::Dead);

    // Started again, it takes calls: no drain, not stopped.
    first.register_node(NOW + 70_000).await.unwrap();
    assert!(!first.heartbeat(NOW + 71_000).await.unwrap());
    let nodes = store.nodes().await.unwrap();
    assert_eq!(state_of(&nodes, "node-a", NOW + 71_000), NodeState::Up);
    assert_eq!(nodes[0].started_at_ms, NOW + 70_000);
});

ledger_test!(a_node_counts_its_open_calls, |store| {
    let node = store.clone().with_node("node-a");
    node.register_node(NOW).await.unwrap();
    let card = node
        .create_card(
            &NewCard::new(
                talktime_pii::Pii::new("4711000001".to_owned()),
                "USD",
                10_000_000,
            ),
            NOW,
        )
        .await
        .unwrap();
    node.authorize("call-1#1", Payer::Card(card.id), NOW, |_| {
        Ok(Decision::new(1_000_000, 60_000))
    })
    .await
    .unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes[0].open_calls, 1);
    node.release("call-1#1", NOW + 1_000).await.unwrap();
    assert_eq!(store.nodes().await.unwrap()[0].open_calls, 0);
});
