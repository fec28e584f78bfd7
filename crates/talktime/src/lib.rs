//! The Talktime tokio shell: sockets, the clock, the media threads, the database pool, the
//! HTTP API and the operator CLI around the sans-IO switch (`talktime-b2bua`, which drives
//! `talktime-sip`, `-sdp`, `-media`, `-engine`, `-billing` and `-routing`) and the ledger
//! (`talktime-store`). The `talktime` binary is a thin `main` over this library;
//! benchmarks and in-process tests use it directly.

pub mod admin;
pub mod admin_http;
pub mod admin_routing;
pub mod backup;
pub mod board;
pub mod callbacks;
pub mod cdr_export;
pub mod config;
pub mod console;
pub mod core_loop;
pub mod coupons;
pub mod http_serve;
pub mod ledger;
pub mod ledger_tasks;
pub mod media_session;
pub mod media_workers;
pub mod metrics;
pub mod nodes;
pub mod notify;
pub mod openapi;
pub mod placement;
pub mod plans;
pub mod points;
pub mod portal;
pub mod radius_service;
pub mod recovery;
pub mod resellers;
pub mod rewards;
pub mod routing_live;
pub mod server;
pub mod startup;
pub mod subscribers;
pub mod tariff_admin;
pub mod tls;
pub mod transport;
pub mod vouchers;
pub mod xlsx;
