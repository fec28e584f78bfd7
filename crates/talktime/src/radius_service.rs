//! The RADIUS service (issue 17): gateways that run the IVR themselves ask the ledger for
//! credit as Cisco's debit-card application does. One task owns the sans-IO
//! `talktime_radius::Server` and both sockets; each request is answered by a task of its own
//! against the same [`Ledger`] the SIP calls use (the same rating function gives the credit
//! time and, at Accounting-Stop, the charge, once per call whatever the gateway repeats).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use talktime_b2bua::config::RadiusConfig;
use talktime_engine::{AccountInfo, CallerIdLookup, PinLookup, Refusal};
use talktime_pii::Pii;
use talktime_radius::{
    AccountingRecord, AccountingStatus, Action, Credentials, Handle, Received, Reply, ReturnCode,
    Server,
};
use talktime_routing::NumberRules;
use talktime_store::Cdr;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::ledger::{Ledger, Rated};
use crate::server::wall_clock_ms;

/// An authorized call waiting for its accounting, by reservation key.
#[derive(Debug)]
struct RadiusCall {
    rated: Rated,
    currency: String,
    nas: String,
    caller: Option<Pii<String>>,
    authorized_at_ms: i64,
    answered_at_ms: Option<i64>,
}

/// What the request tasks share.
#[derive(Debug)]
struct Shared {
    ledger: Arc<Ledger>,
    rules: NumberRules,
    calls: Mutex<HashMap<String, RadiusCall>>,
}

/// Which socket a request came in on (the answer leaves from it).
#[derive(Debug, Clone, Copy)]
enum Port {
    Auth,
    Acct,
}

/// Binds the configured sockets and serves them in a task; the addresses bound (tests bind
/// port 0). Nothing is bound when both listen addresses are empty.
pub async fn start(
    config: &RadiusConfig,
    ledger: Arc<Ledger>,
    rules: NumberRules,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    let server = Server::new(&config.clients).context("radius clients")?;
    let auth = bind(config.auth_address()?).await?;
    let acct = bind(config.acct_address()?).await?;
    if auth.is_none() && acct.is_none() {
        return Ok((None, None));
    }
    if config.clients.is_empty() {
        warn!("RADIUS listens but [[radius.clients]] is empty: every request will be dropped");
    }
    let addresses = (
        auth.as_ref().and_then(|socket| socket.local_addr().ok()),
        acct.as_ref().and_then(|socket| socket.local_addr().ok()),
    );
    info!(auth = ?addresses.0, acct = ?addresses.1, "RADIUS listening");
    let shared = Arc::new(Shared {
        ledger,
        rules,
        calls: Mutex::new(HashMap::new()),
    });
    tokio::spawn(serve(server, auth, acct, shared.clone(), metrics));
    tokio::spawn(close_forgotten_calls(
        shared,
        Duration::from_secs(config.stop_grace_s),
    ));
    Ok(addresses)
}

async fn bind(address: Option<SocketAddr>) -> anyhow::Result<Option<UdpSocket>> {
    match address {
        Some(address) => {
            Ok(Some(UdpSocket::bind(address).await.with_context(|| {
                format!("cannot bind RADIUS on {address}")
            })?))
        }
        None => Ok(None),
    }
}

async fn receive(socket: &Option<UdpSocket>, buffer: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buffer).await.ok(),
        None => std::future::pending().await,
    }
}

async fn serve(
    mut server: Server,
    auth: Option<UdpSocket>,
    acct: Option<UdpSocket>,
    shared: Arc<Shared>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut numbers = crate::metrics::RadiusNumbers::default();
    let (answers, mut answered) = mpsc::unbounded_channel::<(Handle, Option<Reply>, Port)>();
    let mut auth_buffer = vec![0u8; 8192];
    let mut acct_buffer = vec![0u8; 8192];
    loop {
        let (bytes, source, port) = tokio::select! {
            Some((length, source)) = receive(&auth, &mut auth_buffer) => {
                (auth_buffer[..length].to_vec(), source, Port::Auth)
            }
            Some((length, source)) = receive(&acct, &mut acct_buffer) => {
                (acct_buffer[..length].to_vec(), source, Port::Acct)
            }
            Some((handle, reply, port)) = answered.recv() => {
                let socket = match port { Port::Auth => &auth, Port::Acct => &acct };
                match &reply {
                    Some(Reply::Accept { .. }) => numbers.accepts += 1,
                    Some(Reply::Reject(_)) => numbers.rejects += 1,
                    Some(Reply::AccountingResponse) => numbers.accounting += 1,
                    None => {}
                }
                match reply {
                    Some(reply) => {
                        if let (Some((octets, to)), Some(socket)) =
                            (server.respond(handle, reply, Instant::now()), socket)
                        {
                            let _ = socket.send_to(&octets, to).await;
                        }
                    }
                    None => server.abandon(handle),
                }
                numbers.counters = server.counters();
                metrics.publish_radius(numbers);
                continue;
            }
        };
        match server.handle_datagram(&bytes, source, Instant::now()) {
            Received::Request(request) => {
                let (shared, answers) = (shared.clone(), answers.clone());
                tokio::spawn(async move {
                    let reply = answer(&shared, request.nas, request.action).await;
                    let _ = answers.send((request.handle, reply, port));
                });
            }
            Received::Again(octets, to) => {
                let socket = match port {
                    Port::Auth => &auth,
                    Port::Acct => &acct,
                };
                if let Some(socket) = socket {
                    let _ = socket.send_to(&octets, to).await;
                }
            }
            Received::Dropped(reason) => {
                debug!(%source, ?reason, counters = ?server.counters(), "RADIUS datagram dropped");
            }
        }
        numbers.counters = server.counters();
        metrics.publish_radius(numbers);
    }
}

/// The reply to one request; `None` drops it (the ledger could not answer: the gateway
/// retries, and a database error is never a wrong PIN).
async fn answer(shared: &Shared, nas: String, action: Action) -> Option<Reply> {
    let now_ms = wall_clock_ms();
    match action {
        Action::Status => Some(Reply::Accept {
            credit_amount: None,
            currency: None,
            credit_time_s: None,
            language: None,
        }),
        Action::Authenticate(credentials) => {
            let account = match payer(shared, &credentials, now_ms).await? {
                Ok(account) => account,
                Err(code) => return Some(Reply::Reject(code)),
            };
            Some(Reply::Accept {
                credit_amount: Some(talktime_store::format_micros(account.balance_micros)),
                currency: Some(account.currency.clone()),
                credit_time_s: None,
                language: account.language.map(|language| language.code().to_owned()),
            })
        }
        Action::Authorize {
            credentials,
            destination,
            session,
        } => authorize(shared, &nas, &credentials, &destination, &session, now_ms).await,
        // Unanswered when the charge could not be written: the gateway sends the Stop again.
        Action::Accounting(record) => accounting(shared, &nas, record, now_ms)
            .await
            .then_some(Reply::AccountingResponse),
    }
}

/// The card (PIN in User-Password, else in User-Name) or, when User-Name is the caller's
/// number, the pinless account registered for it.
async fn payer(
    shared: &Shared,
    credentials: &Credentials,
    now_ms: i64,
) -> Option<Result<AccountInfo, ReturnCode>> {
    let ani_mode = credentials.password.is_none()
        && credentials
            .calling
            .as_ref()
            .is_some_and(|calling| calling.expose() == credentials.user_name.expose());
    if ani_mode {
        return match shared
            .ledger
            .lookup_caller_id(&credentials.user_name, false)
            .await
        {
            CallerIdLookup::Found(account) => Some(Ok(account)),
            CallerIdLookup::NotRegistered | CallerIdLookup::Remembered(_) => {
                Some(Err(ReturnCode::InvalidAccount))
            }
        };
    }
    let pin = credentials
        .password
        .as_ref()
        .unwrap_or(&credentials.user_name);
    // Wrong PINs count against the caller's number when the gateway sends one.
    let guess_keys: Vec<Pii<String>> = credentials.calling.iter().cloned().collect();
    match shared
        .ledger
        .lookup_pin(pin, credentials.calling.as_ref(), &guess_keys, now_ms)
        .await
    {
        PinLookup::Found(account) => Some(Ok(account)),
        PinLookup::Rejected => {
            if let Some(calling) = &credentials.calling {
                shared.ledger.pin_failed(calling, now_ms).await;
            }
            Some(Err(ReturnCode::InvalidAccount))
        }
        PinLookup::LockedOut => Some(Err(ReturnCode::RetriesExceeded)),
        PinLookup::CardInUse => Some(Err(ReturnCode::AccountInUse)),
        PinLookup::CardExpired => Some(Err(ReturnCode::CardExpired)),
        PinLookup::Unavailable => None,
    }
}

fn reservation_key(nas: &str, session: &str) -> String {
    format!("radius:{nas}:{session}#1")
}

async fn authorize(
    shared: &Shared,
    nas: &str,
    credentials: &Credentials,
    destination: &Pii<String>,
    session: &str,
    now_ms: i64,
) -> Option<Reply> {
    let key = reservation_key(nas, session);
    let granted = |call: &RadiusCall| Reply::Accept {
        credit_amount: None,
        currency: Some(call.currency.clone()),
        credit_time_s: Some(call.rated.authorization.limit_ms / 1000),
        language: None,
    };
    // The gateway asking again for the same call gets the same answer, not a second hold.
    if let Some(call) = shared.calls.lock().ok()?.get(&key) {
        return Some(granted(call));
    }
    let account = match payer(shared, credentials, now_ms).await? {
        Ok(account) => account,
        Err(code) => return Some(Reply::Reject(code)),
    };
    let number = match talktime_routing::normalize(destination.expose(), &shared.rules) {
        Ok(number) => number,
        Err(talktime_routing::NormalizeError::BlockedPrefix { .. }) => {
            return Some(Reply::Reject(ReturnCode::CalledNumberBlocked));
        }
        Err(_) => return Some(Reply::Reject(ReturnCode::InvalidArgument)),
    };
    let authorized = shared
        .ledger
        .authorize(&key, account.account, account.card, &number, false, now_ms)
        .await;
    match authorized {
        Ok(rated) => {
            info!(
                nas,
                credit_s = rated.authorization.limit_ms / 1000,
                "RADIUS call authorized"
            );
            let call = RadiusCall {
                rated,
                currency: account.currency.clone(),
                nas: nas.to_owned(),
                caller: credentials.calling.clone(),
                authorized_at_ms: now_ms,
                answered_at_ms: None,
            };
            let reply = granted(&call);
            shared.calls.lock().ok()?.insert(key, call);
            Some(reply)
        }
        Err(refusal) => Some(Reply::Reject(return_code(refusal))),
    }
}

/// Closes calls whose Stop never came (a gateway that rebooted, a lost packet past its
/// retries): once the credit time and the grace have passed, the call is settled as a Stop
/// would have settled it at the limit.
async fn close_forgotten_calls(shared: Arc<Shared>, grace: Duration) {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let now_ms = wall_clock_ms();
        let overdue: Vec<String> = match shared.calls.lock() {
            Ok(calls) => calls
                .iter()
                .filter(|(_, call)| {
                    let limit_ms = i64::try_from(call.rated.authorization.limit_ms).unwrap_or(0);
                    let from = call.answered_at_ms.unwrap_or(call.authorized_at_ms);
                    now_ms > from.saturating_add(limit_ms).saturating_add(grace_ms)
                })
                .map(|(key, _)| key.clone())
                .collect(),
            Err(_) => return,
        };
        for key in overdue {
            warn!(
                key,
                "RADIUS call without an Accounting-Stop closed at its limit"
            );
            let record = AccountingRecord {
                status: AccountingStatus::Stop,
                session: None,
                session_time_s: None,
                disconnect_cause: None,
                destination: None,
            };
            stop(&shared, &key, &record, now_ms, "radius_no_stop").await;
        }
    }
}

/// What recovery needs to bill an answered RADIUS call (no legs to hang up: the gateway owns
/// the call).
fn checkpoint_of(call: &RadiusCall) -> Option<String> {
    let checkpoint = talktime_b2bua::recovery::Checkpoint {
        account: call.rated.account.0,
        card: call.rated.card.map(|card| card.0),
        destination: call.rated.number.clone(),
        toll_free: call.rated.toll_free,
        rated_at_ms: call.rated.rated_at_ms,
        caller_id: call.caller.as_ref().map(|caller| caller.expose().clone()),
        access_number: format!("radius:{}", call.nas),
        carrier: String::new(),
        started_ms: call.authorized_at_ms,
        buy_per_minute: None,
        byes: Vec::new(),
    };
    serde_json::to_string(&checkpoint).ok()
}

fn return_code(refusal: Refusal) -> ReturnCode {
    match refusal {
        Refusal::NoCredit => ReturnCode::ZeroBalance,
        Refusal::BlockedDestination => ReturnCode::CalledNumberBlocked,
        Refusal::CardInUse => ReturnCode::AccountInUse,
        Refusal::UnknownDestination => ReturnCode::InvalidArgument,
        Refusal::Unavailable => ReturnCode::ServiceUnavailable,
    }
}

/// Records one accounting request; false when a Stop's charge could not be written.
async fn accounting(shared: &Shared, nas: &str, record: AccountingRecord, now_ms: i64) -> bool {
    let Some(session) = record.session.as_deref() else {
        return true;
    };
    let key = reservation_key(nas, session);
    match record.status {
        AccountingStatus::Start | AccountingStatus::Interim => {
            let checkpoint = shared.calls.lock().ok().and_then(|mut calls| {
                let call = calls.get_mut(&key)?;
                let first = call.answered_at_ms.is_none();
                let talked_ms = i64::from(record.session_time_s.unwrap_or(0)) * 1000;
                let answered_at = *call.answered_at_ms.get_or_insert(now_ms - talked_ms);
                first.then(|| (answered_at, checkpoint_of(call)))
            });
            // As for a SIP call: if this process dies, a restart (or another node) bills the
            // call from its Start to the last heartbeat.
            if let Some((answered_at, Some(checkpoint))) = checkpoint
                && let Err(error) = shared
                    .ledger
                    .store()
                    .checkpoint_answer(&key, answered_at, &checkpoint)
                    .await
            {
                warn!(key, %error, "cannot write the RADIUS call's checkpoint");
            }
        }
        AccountingStatus::Stop => return stop(shared, &key, &record, now_ms, "radius_stop").await,
        _ => {}
    }
    true
}

/// Charges the call once: a Stop for a call already charged (a replay, or one the gateway
/// sends again under a new identifier) finds nothing and charges nothing.
async fn stop(
    shared: &Shared,
    key: &str,
    record: &AccountingRecord,
    now_ms: i64,
    cause: &str,
) -> bool {
    let Some(call) = shared
        .calls
        .lock()
        .ok()
        .and_then(|mut calls| calls.remove(key))
    else {
        debug!(key, "RADIUS Stop for no open call");
        return true;
    };
    let answered_ms = match (record.session_time_s, call.answered_at_ms) {
        (Some(seconds), _) => u64::from(seconds) * 1000,
        (None, Some(at)) => u64::try_from(now_ms - at).unwrap_or(0),
        (None, None) => 0,
    };
    let now_ms = match call.answered_at_ms {
        // A call closed late ended at its limit, not when the sweep found it.
        Some(at) if record.session_time_s.is_none() => now_ms
            .min(at.saturating_add(i64::try_from(call.rated.authorization.limit_ms).unwrap_or(0))),
        _ => now_ms,
    };
    // Never more than the gateway was granted: a late Stop is billed at the limit.
    let answered_ms = answered_ms.min(call.rated.authorization.limit_ms);
    let answered_at = now_ms - i64::try_from(answered_ms).unwrap_or(0);
    let q850 = record
        .disconnect_cause
        .as_deref()
        .and_then(|cause| i64::from_str_radix(cause.trim(), 16).ok());
    let mut cdrs = vec![Cdr {
        call_id: key.to_owned(),
        attempt: 1,
        account_id: Some(call.rated.account.0),
        card_id: call.rated.card.map(|card| card.0),
        caller_id: call.caller.clone(),
        access_number: Some(format!("radius:{}", call.nas)),
        destination: Pii::new(format!("+{}", call.rated.number)),
        carrier: None,
        start_ms: call.authorized_at_ms,
        answer_ms: (answered_ms > 0).then_some(answered_at),
        end_ms: now_ms,
        billed_seconds: 0,
        fees_json: "{}".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: 0,
        buy_cost_micros: 0,
        sip_code: None,
        q850_cause: q850,
        hangup_by: Some("gateway".into()),
        disconnect_cause: Some(cause.into()),
    }];
    match shared
        .ledger
        .settle_rated(key, Some(&call.rated), answered_ms, None, &mut cdrs, now_ms)
        .await
    {
        Ok(charged) => {
            info!(key, answered_ms, charged, "RADIUS call settled");
            true
        }
        Err(error) => {
            warn!(key, %error, "RADIUS settle failed; kept for the gateway's retry");
            if let Ok(mut calls) = shared.calls.lock() {
                calls.insert(key.to_owned(), call);
            }
            false
        }
    }
}
