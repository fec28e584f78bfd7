//! Runs the switch's ledger requests, each as its own task, and brings every answer back to
//! the core loop as an [`Input::Ledger`], so the core never waits on the database. A settle
//! the database refuses for now is retried here with back-off; the reservation stays open
//! meanwhile (and, if this process dies, is billed from its checkpoint).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use talktime_b2bua::{Input, LedgerReply, LedgerRequest};
use talktime_engine::Input as CallInput;
use tracing::{debug, info, warn};

use crate::ledger::Ledger;
use crate::server::{CoreSender, wall_clock_ms};

/// The name of the ledger's thread (the SQLite writer's is `talktime_store::SQLITE_WRITER_THREAD`).
pub const LEDGER_THREAD: &str = "ledger";

/// A settle the database could not take is tried again after this, doubling up to the max.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(200);
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Where ledger requests run: a thread of their own (a one-thread tokio runtime).
///
/// A call's write transaction is a chain of statements, each a hand-off to sqlx's connection
/// thread and back, and the SQLite writer is one such chain at a time. On the shell's runtime
/// each step of the chain waited for a worker that the core loop and the HTTP tasks kept
/// busy, so the writer sat idle most of the time under load (issue 19); on its own thread
/// the next statement follows at once.
#[derive(Debug)]
pub struct LedgerTasks {
    /// One thread for every core thread's requests.
    runtime: Arc<LedgerRuntime>,
    ledger: Arc<Ledger>,
    core: CoreSender,
    /// Settlements the database refused for now, being retried (for the log).
    settlements_waiting: Arc<AtomicUsize>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Requests of this turn of the core loop, handed to the ledger's thread together by
    /// [`LedgerTasks::hand_over`]: one wake-up of that thread a turn, not one a request.
    pending: Vec<Pending>,
}

/// A request not yet on the ledger's thread, and when the core asked.
#[derive(Debug)]
struct Pending {
    call: u64,
    request: LedgerRequest,
    asked: std::time::Instant,
}

impl LedgerTasks {
    /// The ledger's store (for work beside the calls, such as queueing a mail).
    pub fn store(&self) -> &talktime_store::Store {
        self.ledger.store()
    }

    /// `cpu`: where the ledger's thread runs (`[database] writer_cpu`; checked at start).
    pub fn new(
        ledger: Arc<Ledger>,
        core: CoreSender,
        metrics: Arc<crate::metrics::Metrics>,
        cpu: Option<usize>,
    ) -> std::io::Result<LedgerTasks> {
        Ok(LedgerTasks {
            runtime: Arc::new(LedgerRuntime::start(cpu)?),
            ledger,
            core,
            settlements_waiting: Arc::new(AtomicUsize::new(0)),
            metrics,
            pending: Vec::new(),
        })
    }

    /// The same ledger thread for another core thread's requests (answers come back to the
    /// core of each request's call key through the shared sender).
    pub fn for_another_core(&self) -> LedgerTasks {
        LedgerTasks {
            runtime: self.runtime.clone(),
            ledger: self.ledger.clone(),
            core: self.core.clone(),
            settlements_waiting: self.settlements_waiting.clone(),
            metrics: self.metrics.clone(),
            pending: Vec::new(),
        }
    }

    /// Queues one request; [`LedgerTasks::hand_over`] starts it, and its answer comes back to
    /// the core.
    pub fn queue(&mut self, call: u64, request: LedgerRequest) {
        self.pending.push(Pending {
            call,
            request,
            // From here: a request waiting for the ledger's thread is part of its time.
            asked: std::time::Instant::now(),
        });
    }

    /// Starts this turn's requests on the ledger's thread, each its own task.
    pub fn hand_over(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let ledger = self.ledger.clone();
        let core = self.core.clone();
        let waiting = self.settlements_waiting.clone();
        let metrics = self.metrics.clone();
        self.runtime.handle.spawn(async move {
            for pending in batch {
                // On the ledger's thread: a local spawn, no wake-up.
                tokio::spawn(run_request(
                    pending,
                    ledger.clone(),
                    core.clone(),
                    waiting.clone(),
                    metrics.clone(),
                ));
            }
        });
    }
}

/// One request on the ledger's thread, its answer sent to the core.
async fn run_request(
    pending: Pending,
    ledger: Arc<Ledger>,
    core: CoreSender,
    waiting: Arc<AtomicUsize>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let Pending {
        call,
        request,
        asked: started,
    } = pending;
    let kind = match &request {
        LedgerRequest::LookupCallerId { .. } | LedgerRequest::LookupPin { .. } => {
            crate::metrics::LedgerKind::Lookup
        }
        LedgerRequest::Authorize { .. } => crate::metrics::LedgerKind::Authorize,
        LedgerRequest::Settle { .. } => crate::metrics::LedgerKind::Settle,
        _ => crate::metrics::LedgerKind::Other,
    };
    let reply = answer(&ledger, call, request, &waiting).await;
    metrics.ledger_took(kind, started.elapsed());
    metrics.set_settlements_waiting(waiting.load(Ordering::Relaxed));
    // The core gone means the switch has stopped.
    let _ = core.send(Input::Ledger { call, reply }).await;
}

/// The ledger's thread. Dropping it lets the thread go without waiting for its tasks (it
/// may be dropped inside the shell's runtime, where waiting is not allowed; the graceful
/// stop has waited for the requests in flight before).
#[derive(Debug)]
struct LedgerRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl LedgerRuntime {
    fn start(cpu: Option<usize>) -> std::io::Result<LedgerRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(LEDGER_THREAD)
            .on_thread_start(move || {
                if let Some(cpu) = cpu
                    && let Err(error) = crate::placement::place_this_thread(cpu)
                {
                    warn!(%error, "the ledger's thread stays where the kernel puts it");
                }
            })
            .enable_all()
            .build()?;
        Ok(LedgerRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }
}

impl Drop for LedgerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `*N`: the number dialled in this call, or else the account's last one, under key `slot`.
async fn store_speed_dial(
    ledger: &Ledger,
    call: u64,
    account: i64,
    slot: u8,
    number: Option<talktime_pii::Pii<String>>,
    now_ms: i64,
) -> bool {
    let store = ledger.store();
    let number = match number {
        Some(number) => Some(number),
        None => match store.stored_number(account, 0).await {
            Ok(last) => last,
            Err(error) => {
                warn!(call, %error, "cannot read the last number dialled");
                None
            }
        },
    };
    let Some(number) = number else {
        return false;
    };
    match store.set_speed_dial(account, slot, &number, now_ms).await {
        Ok(()) => true,
        Err(error) => {
            warn!(call, %error, "cannot store a speed dial");
            false
        }
    }
}

/// A new portal login code for calls from `caller_id` (none without one: the code logs in
/// with the number it was read out to).
async fn issue_portal_code(
    ledger: &Ledger,
    call: u64,
    account: i64,
    caller_id: Option<talktime_pii::Pii<String>>,
    expires_at_ms: i64,
    now_ms: i64,
) -> Option<talktime_pii::Pii<String>> {
    let Some(number) = caller_id else {
        info!(call, account, "no portal code: the call has no caller ID");
        return None;
    };
    let code = talktime_pii::Pii::new(crate::portal::login_code());
    let issued = ledger
        .store()
        .issue_portal_code(account, &number, &code, expires_at_ms, now_ms)
        .await;
    match issued {
        Ok(()) => {
            info!(call, account, "portal login code read out");
            Some(code)
        }
        Err(error) => {
            warn!(call, %error, "cannot issue a portal code");
            None
        }
    }
}

async fn redeem_voucher(
    ledger: &Ledger,
    call: u64,
    account: i64,
    code: &talktime_pii::Pii<String>,
    call_id: &str,
    now_ms: i64,
) -> talktime_engine::VoucherOutcome {
    use talktime_engine::VoucherOutcome as Outcome;
    use talktime_store::Redemption;
    let redeemed = ledger
        .store()
        .redeem_voucher(account, code, Some(call_id), now_ms)
        .await;
    match redeemed {
        Ok(Redemption::Credited {
            voucher_id,
            amount_micros,
            balance_micros,
        }) => {
            info!(call, account, voucher_id, amount_micros, "voucher redeemed");
            Outcome::Credited {
                amount_micros,
                balance_micros,
            }
        }
        Ok(Redemption::Unknown) => Outcome::Unknown,
        Ok(Redemption::AlreadyUsed) => Outcome::AlreadyUsed,
        Ok(Redemption::Expired | Redemption::WrongCurrency) => Outcome::NotUsable,
        Ok(Redemption::NotRefillable) => Outcome::NotRefillable,
        Err(error) => {
            warn!(call, %error, "cannot redeem a voucher");
            Outcome::Unavailable
        }
    }
}

async fn answer(
    ledger: &Ledger,
    call: u64,
    request: LedgerRequest,
    waiting: &AtomicUsize,
) -> LedgerReply {
    match request {
        LedgerRequest::LastCall { account } => {
            // A failed read only loses the last call's words: the balance is still said.
            let last = match ledger.store().last_answered_call(account.0).await {
                Ok(last) => last,
                Err(error) => {
                    tracing::warn!(call, %error, "cannot read the last call");
                    None
                }
            };
            LedgerReply::Input(CallInput::LastCall(last.map(|(cost_micros, talk_ms)| {
                talktime_engine::LastCall {
                    cost_micros,
                    talk_ms: u64::try_from(talk_ms).unwrap_or(0),
                }
            })))
        }
        LedgerRequest::StoredNumber { account, slot } => {
            let number = match ledger.store().stored_number(account.0, slot).await {
                Ok(number) => number,
                Err(error) => {
                    warn!(call, %error, "cannot read a stored number");
                    None
                }
            };
            LedgerReply::Input(CallInput::StoredNumber(number))
        }
        LedgerRequest::StoreSpeedDial {
            account,
            slot,
            number,
            now_ms,
        } => LedgerReply::Input(CallInput::SpeedDialStored(
            store_speed_dial(ledger, call, account.0, slot, number, now_ms).await,
        )),
        LedgerRequest::PortalCode {
            account,
            caller_id,
            expires_at_ms,
            now_ms,
        } => LedgerReply::Input(CallInput::PortalCodeIssued(
            issue_portal_code(ledger, call, account.0, caller_id, expires_at_ms, now_ms).await,
        )),
        LedgerRequest::RedeemVoucher {
            account,
            code,
            call_id,
            now_ms,
        } => {
            let outcome = redeem_voucher(ledger, call, account.0, &code, &call_id, now_ms).await;
            LedgerReply::Input(CallInput::VoucherRedeemed(outcome))
        }
        LedgerRequest::RetailRecharge {
            agent,
            number,
            amount_micros,
            key,
            now_ms,
        } => {
            let outcome = crate::resellers::retail_recharge(
                ledger.store(),
                agent.0,
                &number,
                amount_micros,
                &key,
                now_ms,
            )
            .await;
            info!(call, ?outcome, "retail recharge");
            LedgerReply::Input(CallInput::RetailRecharged(outcome))
        }
        LedgerRequest::ChangePin { card, new_pin } => {
            use talktime_engine::PinChangeOutcome as Outcome;
            let outcome = match ledger.store().change_pin(card.0, &new_pin).await {
                Ok(talktime_store::PinChange::Changed) => {
                    info!(call, card = card.0, "PIN changed by its holder");
                    Outcome::Changed
                }
                Ok(talktime_store::PinChange::Taken) => Outcome::Taken,
                Ok(talktime_store::PinChange::NotRefillable) => Outcome::NotRefillable,
                Err(error) => {
                    warn!(call, %error, "cannot change a PIN");
                    Outcome::Unavailable
                }
            };
            LedgerReply::Input(CallInput::PinChanged(outcome))
        }
        LedgerRequest::RememberLanguage {
            account,
            caller_id,
            language,
            now_ms,
        } => {
            let account = account.map(|account| account.0);
            let remembered = ledger
                .store()
                .remember_language(account, caller_id.as_ref(), language.code(), now_ms)
                .await;
            if let Err(error) = remembered {
                warn!(%error, "cannot remember a caller's language");
            }
            LedgerReply::Done
        }
        LedgerRequest::LookupSubscriber { username } => {
            LedgerReply::Subscriber(crate::subscribers::lookup(ledger.store(), &username).await)
        }
        LedgerRequest::LookupCallerId {
            caller_id,
            remembered_language,
        } => {
            let lookup = ledger
                .lookup_caller_id(&caller_id, remembered_language)
                .await;
            LedgerReply::Input(CallInput::CallerIdLookup(lookup))
        }
        LedgerRequest::LookupPin {
            pin,
            caller_id,
            guess_keys,
            now_ms,
            agent,
        } => {
            let lookup = if agent {
                ledger.lookup_agent(&pin, &guess_keys, now_ms).await
            } else {
                ledger
                    .lookup_pin(&pin, caller_id.as_ref(), &guess_keys, now_ms)
                    .await
            };
            debug!(call, ?lookup, "PIN looked up");
            LedgerReply::Input(CallInput::PinLookup(lookup))
        }
        LedgerRequest::PinFailed { guess_keys, now_ms } => {
            for guess_key in &guess_keys {
                ledger.pin_failed(guess_key, now_ms).await;
            }
            LedgerReply::Done
        }
        LedgerRequest::Authorize {
            attempt,
            reservation,
            account,
            card,
            number,
            toll_free,
            now_ms,
            beside,
        } => {
            let result = ledger
                .authorize_beside(
                    &reservation,
                    account,
                    card,
                    &number,
                    toll_free,
                    now_ms,
                    beside.as_deref(),
                )
                .await;
            match result {
                Ok(rated) => LedgerReply::Authorized {
                    attempt,
                    rated: Box::new(rated),
                    reservation,
                },
                Err(refusal) => {
                    LedgerReply::Input(CallInput::AuthorizationRefused { attempt, refusal })
                }
            }
        }
        LedgerRequest::Settle {
            reservation,
            rated,
            answered_ms,
            buy_per_minute,
            mut cdrs,
        } => {
            let rated = rated.map(|rated| *rated);
            settle(
                ledger,
                &reservation,
                rated.as_ref(),
                answered_ms,
                buy_per_minute,
                &mut cdrs,
                waiting,
            )
            .await;
            LedgerReply::Done
        }
        LedgerRequest::Release {
            reservation,
            now_ms,
        } => {
            match ledger.store().release(&reservation, now_ms).await {
                Ok(_) => info!(%reservation, "late reservation released"),
                Err(error) => warn!(%reservation, %error, "cannot release a late reservation"),
            }
            LedgerReply::Done
        }
        LedgerRequest::Checkpoint {
            reservation,
            answered_at_ms,
            checkpoint,
        } => {
            if let Err(error) = ledger
                .store()
                .checkpoint_answer(&reservation, answered_at_ms, &checkpoint)
                .await
            {
                warn!(%reservation, %error, "cannot write the answer checkpoint");
            }
            LedgerReply::Done
        }
        other => {
            warn!(?other, "a ledger request this shell does not know");
            LedgerReply::Done
        }
    }
}

/// Charges an attempt once, retrying while the database is unavailable.
async fn settle(
    ledger: &Ledger,
    reservation: &str,
    rated: Option<&talktime_b2bua::Rated>,
    answered_ms: u64,
    buy_per_minute: Option<rust_decimal::Decimal>,
    cdrs: &mut [talktime_store::Cdr],
    waiting: &AtomicUsize,
) {
    let mut delay = SETTLE_RETRY_FIRST;
    let mut counted = false;
    loop {
        let settled = ledger
            .settle_rated(
                reservation,
                rated,
                answered_ms,
                buy_per_minute,
                cdrs,
                wall_clock_ms(),
            )
            .await;
        match settled {
            Ok(charged) => {
                info!(%reservation, answered_ms, charged_micros = charged, "attempt settled");
                break;
            }
            Err(error) if error.is_transient() => {
                if !counted {
                    counted = true;
                    waiting.fetch_add(1, Ordering::Relaxed);
                }
                let now_waiting = waiting.load(Ordering::Relaxed);
                warn!(%reservation, %error, waiting = now_waiting, retry_in_ms = delay.as_millis(),
                      "settlement failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(SETTLE_RETRY_MAX);
            }
            Err(error) => {
                warn!(%reservation, %error, "settlement refused");
                break;
            }
        }
    }
    if counted {
        waiting.fetch_sub(1, Ordering::Relaxed);
    }
}
