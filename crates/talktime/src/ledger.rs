//! The shell's side of billing: answers the engine's lookups and authorizations from the
//! store, with the billing crate's one rating function deciding both the talk-time limit
//! and, at settlement, the charge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use talktime_billing::{
    AccountFee, CallFacts, Charge, Currency, DestinationPolicy, LocalStart, Money, RateDeck,
    RatingContext, RatingError, TariffSettings, TaxProfile, max_talk_time, rate_call,
};
use talktime_engine::{
    AccountId, AccountInfo, Authorization, CallerIdLookup, CardId, Language, PinLookup, Refusal,
};
use talktime_pii::Pii;
use talktime_store::{
    AccountRules, Cdr, Decision, FirstUse, LockoutPolicy, Payer, PayerProfile,
    Refusal as StoreRefusal, ResellerLevel, SettleExtras, SettleOutcome, Store, StoreError,
};
use tracing::{info, warn};

use crate::config::BillingConfig;

/// Decks are re-read from the database after this long, so an import reaches a running switch.
const DECK_LIFETIME: Duration = Duration::from_secs(60);

pub use talktime_b2bua::Rated;
pub use talktime_b2bua::ledger::LevelPrice;

#[derive(Debug)]
pub struct Ledger {
    store: Store,
    config: BillingConfig,
    decks: Mutex<HashMap<i64, (Arc<RateDeck>, Instant)>>,
}

impl Ledger {
    pub fn new(store: Store, config: BillingConfig) -> Ledger {
        Ledger {
            store,
            config,
            decks: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A registered caller ID's account (with the language its holder chose last), or with
    /// `remembered_language` the language an unregistered caller ID chose last.
    pub async fn lookup_caller_id(
        &self,
        caller_id: &Pii<String>,
        remembered_language: bool,
    ) -> CallerIdLookup {
        match self.try_lookup_caller_id(caller_id).await {
            Ok(Some(info)) => CallerIdLookup::Found(info),
            Ok(None) if remembered_language => self.remembered_language(caller_id).await,
            Ok(None) => CallerIdLookup::NotRegistered,
            Err(error) => {
                warn!(%error, "caller ID lookup failed; asking for the PIN");
                CallerIdLookup::NotRegistered
            }
        }
    }

    /// An unregistered caller ID: the language it chose last time, if any.
    async fn remembered_language(&self, caller_id: &Pii<String>) -> CallerIdLookup {
        match self.store.remembered_language(None, Some(caller_id)).await {
            Ok(Some(code)) => match Language::from_code(&code) {
                Some(language) => CallerIdLookup::Remembered(language),
                None => CallerIdLookup::NotRegistered,
            },
            Ok(None) => CallerIdLookup::NotRegistered,
            Err(error) => {
                warn!(%error, "remembered language lookup failed; offering the menu");
                CallerIdLookup::NotRegistered
            }
        }
    }

    async fn try_lookup_caller_id(
        &self,
        caller_id: &Pii<String>,
    ) -> Result<Option<AccountInfo>, StoreError> {
        let Some(found) = self.store.lookup_caller_id(caller_id).await? else {
            return Ok(None);
        };
        if !found.active {
            return Ok(None);
        }
        let language = found.ivr_language.as_deref().and_then(Language::from_code);
        Ok(Some(AccountInfo {
            account: AccountId(found.account_id),
            card: found.card_id.map(CardId),
            balance_micros: found.balance_micros,
            minimum_micros: found.minimum_micros,
            currency: found.currency,
            language,
            forward_destination: found.forward_destination,
        }))
    }

    /// A PIN's card, unless one of `guess_keys` (the caller ID, the source address) is locked
    /// out for wrong PINs.
    pub async fn lookup_pin(
        &self,
        pin: &Pii<String>,
        caller_id: Option<&Pii<String>>,
        guess_keys: &[Pii<String>],
        now_ms: i64,
    ) -> PinLookup {
        match self
            .try_lookup_pin(pin, caller_id, guess_keys, now_ms)
            .await
        {
            Ok(lookup) => lookup,
            // A database error is never a wrong PIN: the caller hears "call failed".
            Err(error) => {
                warn!(%error, "PIN lookup failed");
                PinLookup::Unavailable
            }
        }
    }

    async fn try_lookup_pin(
        &self,
        pin: &Pii<String>,
        caller_id: Option<&Pii<String>>,
        guess_keys: &[Pii<String>],
        now_ms: i64,
    ) -> Result<PinLookup, StoreError> {
        for guess_key in guess_keys {
            if self.store.pin_lockout(guess_key, now_ms).await?.is_some() {
                return Ok(PinLookup::LockedOut);
            }
        }
        let Some(card) = self.store.card_by_pin(pin).await? else {
            return self.confirm_caller_id(pin, caller_id, now_ms).await;
        };
        if card.is_expired(now_ms) {
            return Ok(PinLookup::CardExpired);
        }
        if card.status.as_str() == "blocked" {
            return Ok(PinLookup::Rejected);
        }
        let account = self.store.account(card.account_id).await?;
        let open = self.store.open_reservations(account.id).await?.len();
        if account.concurrency_limit > 0 && open as i64 >= account.concurrency_limit {
            return Ok(PinLookup::CardInUse);
        }
        // A right PIN clears its caller ID's count, never a source's: one valid card must not
        // reset an address that is guessing others.
        for guess_key in guess_keys {
            if !guess_key.expose().starts_with(talktime_b2bua::SOURCE_KEY) {
                self.store.clear_pin_failures(guess_key).await?;
            }
        }
        Ok(PinLookup::Found(AccountInfo {
            account: AccountId(account.id),
            card: Some(CardId(card.id)),
            balance_micros: account.balance_micros,
            minimum_micros: account.caller_id_min_balance_micros,
            currency: account.currency,
            language: None,
            forward_destination: None,
        }))
    }

    /// Digits that are no card's PIN may be the code the portal showed for registering this
    /// caller ID: then the number is the account's from now on and the call goes on as the
    /// account's pinless call; else they are a wrong PIN.
    async fn confirm_caller_id(
        &self,
        code: &Pii<String>,
        caller_id: Option<&Pii<String>>,
        now_ms: i64,
    ) -> Result<PinLookup, StoreError> {
        let Some(caller_id) = caller_id else {
            return Ok(PinLookup::Rejected);
        };
        let Some(account_id) = self
            .store
            .confirm_caller_id(caller_id, code, now_ms)
            .await?
        else {
            return Ok(PinLookup::Rejected);
        };
        info!(account_id, "caller ID confirmed by a call");
        Ok(match self.try_lookup_caller_id(caller_id).await? {
            Some(info) => PinLookup::Found(info),
            None => PinLookup::Rejected,
        })
    }

    /// A retail line's agent PIN: the reseller's own account, unless a guess key is locked
    /// out. A wrong agent PIN counts as a wrong PIN (the engine reports it).
    pub async fn lookup_agent(
        &self,
        pin: &Pii<String>,
        guess_keys: &[Pii<String>],
        now_ms: i64,
    ) -> PinLookup {
        let found = async {
            for guess_key in guess_keys {
                if self.store.pin_lockout(guess_key, now_ms).await?.is_some() {
                    return Ok(PinLookup::LockedOut);
                }
            }
            let Some(reseller) = self.store.reseller_by_agent_pin(pin).await? else {
                return Ok(PinLookup::Rejected);
            };
            if reseller.status != "active" {
                return Ok(PinLookup::Rejected);
            }
            Ok::<_, StoreError>(PinLookup::Found(AccountInfo {
                account: AccountId(reseller.account_id),
                card: None,
                balance_micros: reseller.balance_micros,
                minimum_micros: 0,
                currency: reseller.currency,
                language: None,
                forward_destination: None,
            }))
        };
        match found.await {
            Ok(lookup) => lookup,
            Err(error) => {
                warn!(%error, "agent PIN lookup failed");
                PinLookup::Unavailable
            }
        }
    }

    /// Counts a wrong PIN against the caller ID for lock-out.
    pub async fn pin_failed(&self, caller_id: &Pii<String>, now_ms: i64) {
        let policy = LockoutPolicy {
            max_failures: self.config.pin_lockout_failures,
            window_ms: self.config.pin_lockout_window_ms,
            lockout_ms: self.config.pin_lockout_ms,
        };
        if let Err(error) = self
            .store
            .record_pin_failure(caller_id, policy, now_ms)
            .await
        {
            warn!(%error, "cannot record a PIN failure");
        }
    }

    /// Rates the destination and reserves credit under the ledger's lock. `key` is the
    /// reservation's id (one per attempt).
    pub async fn authorize(
        &self,
        key: &str,
        account: AccountId,
        card: Option<CardId>,
        destination: &str,
        toll_free: bool,
        now_ms: i64,
    ) -> Result<Rated, Refusal> {
        self.authorize_beside(key, account, card, destination, toll_free, now_ms, None)
            .await
    }

    /// [`Ledger::authorize`] for the called leg of a callback: the limit is what the credit
    /// pays for both legs (`beside`, the leg to the caller, keeps running), and the caller
    /// leg's hold is resized to cover it up to that limit, in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn authorize_beside(
        &self,
        key: &str,
        account: AccountId,
        card: Option<CardId>,
        destination: &str,
        toll_free: bool,
        now_ms: i64,
        beside: Option<&talktime_b2bua::ledger::CallbackLeg>,
    ) -> Result<Rated, Refusal> {
        let profile = self.payer_profile(account, card).await?;
        let activation_fee_micros = profile.activation_fee_due_micros;
        let card_first_used = profile.card_first_used;
        let package_seconds = if profile.has_plan {
            self.package_seconds(account, destination, now_ms)
                .await
                .map_err(|error| store_refusal(&error, "cannot read the account's plan"))?
        } else {
            0
        };
        let payer_facts = PayerFacts {
            fees: account_fees(activation_fee_micros),
            package_seconds,
        };
        let (chain, deck, rules) = self.payer_terms(account, profile).await?;
        if !deck.settings().destinations.permits(destination)
            || !rules.destinations.permits(destination)
        {
            return Err(Refusal::BlockedDestination);
        }
        let context = self.rate_with(&deck, &rules, destination, toll_free, now_ms, payer_facts)?;
        let levels = self
            .level_prices(&chain, destination, toll_free, now_ms)
            .await?;
        check_margins(&context, &chain, &levels)?;
        let without_activation = if activation_fee_micros > 0 {
            let payer_facts = PayerFacts {
                fees: Vec::new(),
                package_seconds,
            };
            Some(Box::new(self.rate_with(
                &deck,
                &rules,
                destination,
                toll_free,
                now_ms,
                payer_facts,
            )?))
        } else {
            None
        };
        let payer = match card {
            Some(CardId(card)) => Payer::Card(card),
            None => Payer::Account(account.0),
        };
        let caps = self
            .caps(account, now_ms)
            .await
            .map_err(|error| store_refusal(&error, "cannot read the account's spend"))?;
        let mut granted = None;
        let result = match beside {
            None => {
                self.store
                    .authorize(key, payer, now_ms, |available| {
                        let (mut decision, mut announced, cause) =
                            decide(&context, available, &caps)?;
                        hold_levels(&context, &levels, available, &mut decision, &mut announced)?;
                        granted = Some((announced, cause));
                        Ok(decision)
                    })
                    .await
            }
            Some(leg) => self
                .store
                .authorize_beside(key, &leg.reservation, payer, now_ms, |available, _held| {
                    let (mut decision, mut announced, cause, companion) =
                        decide_beside(&context, available, &caps, leg)?;
                    let beside = Some(leg);
                    hold_levels_for(
                        &context,
                        &levels,
                        available,
                        &mut decision,
                        &mut announced,
                        beside,
                    )?;
                    granted = Some((announced, cause));
                    Ok((decision, companion))
                })
                .await
                .map(|(reservation, _)| reservation),
        };
        let (announced, limit_cause) =
            granted.unwrap_or((0, talktime_engine::DisconnectCause::CreditExhausted));
        match result {
            Ok(reservation) => Ok(Rated {
                authorization: Authorization {
                    limit_ms: u64::try_from(reservation.max_duration_ms).unwrap_or(0),
                    announced_limit_ms: announced,
                    reserved_micros: reservation.amount_micros,
                    limit_cause,
                },
                context,
                dial_plan: deck.settings().dial_plan.clone(),
                refuse_loss: deck.settings().refuse_loss_making_routes,
                number: destination.to_owned(),
                rated_at_ms: now_ms,
                toll_free,
                account,
                card,
                activation_fee_micros,
                card_first_used,
                without_activation,
                levels,
            }),
            Err(error) => Err(store_refusal(&error, "authorization failed")),
        }
    }

    /// The payer's deck and the rating of `destination` for a call starting at `at_ms`: the
    /// one home of the rating inputs, for authorization and for billing a recovered call.
    pub async fn rating_context(
        &self,
        account: AccountId,
        card: Option<CardId>,
        destination: &str,
        toll_free: bool,
        at_ms: i64,
        payer: PayerFacts,
    ) -> Result<(RatingContext, Vec<LevelPrice>), Refusal> {
        let profile = self.payer_profile(account, card).await?;
        let (chain, deck, rules) = self.payer_terms(account, profile).await?;
        let context = self.rate_with(&deck, &rules, destination, toll_free, at_ms, payer)?;
        let levels = self
            .level_prices(&chain, destination, toll_free, at_ms)
            .await?;
        Ok((context, levels))
    }

    /// The resellers above `account`, its own first; none for the vendor's own customers
    /// (no query: most calls).
    async fn reseller_chain(
        &self,
        account: AccountId,
        profile: &PayerProfile,
    ) -> Result<Vec<ResellerLevel>, Refusal> {
        if profile.reseller_id.is_none() {
            return Ok(Vec::new());
        }
        self.store
            .reseller_chain(account.0)
            .await
            .map_err(|error| store_refusal(&error, "cannot read the account's resellers"))
    }

    /// The rating each reseller level pays by (its own tariff's, without the customer's fees,
    /// taxes or rules; `None` without a tariff: the level below's price). A level whose tariff
    /// has no rate for the destination refuses the call: a reseller does not sell what it
    /// cannot buy.
    async fn level_prices(
        &self,
        chain: &[ResellerLevel],
        destination: &str,
        toll_free: bool,
        at_ms: i64,
    ) -> Result<Vec<LevelPrice>, Refusal> {
        let mut levels = Vec::with_capacity(chain.len());
        for level in chain {
            let context = match level.tariff_id {
                Some(tariff) => {
                    let deck = self.deck(tariff).await.map_err(|error| {
                        warn!(%error, reseller = level.reseller_id, "cannot load a reseller's tariff");
                        tariff_refusal(&error)
                    })?;
                    let rules = OwnRules {
                        taxes: None,
                        destinations: DestinationPolicy::default(),
                    };
                    let facts = PayerFacts::default();
                    Some(self.rate_with(&deck, &rules, destination, toll_free, at_ms, facts)?)
                }
                None => None,
            };
            levels.push(LevelPrice {
                depth: level.depth,
                reseller_id: level.reseller_id,
                context,
            });
        }
        Ok(levels)
    }

    /// The rating of `destination` on `deck` with the account's own rules (no database).
    fn rate_with(
        &self,
        deck: &RateDeck,
        rules: &OwnRules,
        destination: &str,
        toll_free: bool,
        at_ms: i64,
        payer: PayerFacts,
    ) -> Result<RatingContext, Refusal> {
        let start = LocalStart::from_unix_ms(at_ms, self.config.utc_offset_minutes)
            .ok_or(Refusal::UnknownDestination)?;
        let mut facts = CallFacts::new(start);
        facts.toll_free_access = toll_free;
        facts.taxes = match &rules.taxes {
            Some(own) => own.clone(),
            None => deck.settings().tax_profile(),
        };
        facts.account_fees = payer.fees;
        facts.package_seconds_available = payer.package_seconds;
        let rate = deck
            .find(destination, start.date)
            .ok_or(Refusal::UnknownDestination)?;
        RatingContext::new(deck.settings(), rate, &facts).map_err(|_| Refusal::UnknownDestination)
    }

    /// What the payer is rated by: its resellers, its tariff's deck and its own rules.
    async fn payer_terms(
        &self,
        account: AccountId,
        profile: PayerProfile,
    ) -> Result<(Vec<ResellerLevel>, Arc<RateDeck>, OwnRules), Refusal> {
        let chain = self.reseller_chain(account, &profile).await?;
        let deck = self.deck_for(&profile, &chain).await.map_err(|error| {
            warn!(%error, "cannot load the tariff");
            tariff_refusal(&error)
        })?;
        let rules = own_rules(account, profile.rules)?;
        Ok((chain, deck, rules))
    }

    /// What rating needs of the payer (tariffs, activation fee due, own rules): one read.
    async fn payer_profile(
        &self,
        account: AccountId,
        card: Option<CardId>,
    ) -> Result<PayerProfile, Refusal> {
        let card = card.map(|CardId(card)| card);
        self.store
            .payer_profile(account.0, card)
            .await
            .map_err(|error| store_refusal(&error, "cannot read the account and card"))
    }

    /// The payer's tariff: the card's, else the account's, else its reseller's white-label
    /// tariff, else the switch's default.
    async fn deck_for(
        &self,
        profile: &PayerProfile,
        chain: &[ResellerLevel],
    ) -> Result<Arc<RateDeck>, LedgerError> {
        let tariff = profile
            .card_tariff_id
            .or(profile.account_tariff_id)
            .or_else(|| chain.first().and_then(|own| own.sell_tariff_id));
        let tariff = match tariff {
            Some(tariff) => tariff,
            None => self.default_tariff().await?,
        };
        self.deck(tariff).await
    }

    async fn default_tariff(&self) -> Result<i64, LedgerError> {
        let name = &self.config.default_tariff;
        match self.store.tariff_by_name(name).await? {
            Some(tariff) => Ok(tariff.id),
            None => Err(LedgerError::NoTariff(name.clone())),
        }
    }

    /// The tariff's deck, from the cache while it is fresh.
    pub async fn deck(&self, tariff: i64) -> Result<Arc<RateDeck>, LedgerError> {
        if let Ok(decks) = self.decks.lock()
            && let Some((deck, loaded)) = decks.get(&tariff)
            && loaded.elapsed() < DECK_LIFETIME
        {
            return Ok(deck.clone());
        }
        let deck = Arc::new(load_deck(&self.store, tariff).await?);
        if let Ok(mut decks) = self.decks.lock() {
            decks.insert(tariff, (deck.clone(), Instant::now()));
        }
        Ok(deck)
    }

    /// Charges `answered_ms` of talk (0 releases the hold) and writes the attempt's CDRs in
    /// the same database transaction. Safe to repeat: the store charges a key once.
    #[allow(clippy::too_many_arguments)]
    pub async fn settle(
        &self,
        key: &str,
        context: Option<&RatingContext>,
        levels: &[LevelPrice],
        answered_ms: u64,
        carrier_buy_per_minute: Option<Decimal>,
        cdrs: &mut [Cdr],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let rating = Rating { context, levels };
        self.settle_first_use(
            key,
            rating,
            answered_ms,
            carrier_buy_per_minute,
            cdrs,
            now_ms,
            None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn settle_first_use(
        &self,
        key: &str,
        rating: Rating<'_>,
        answered_ms: u64,
        carrier_buy_per_minute: Option<Decimal>,
        cdrs: &mut [Cdr],
        now_ms: i64,
        first_use: Option<FirstUse>,
    ) -> Result<i64, StoreError> {
        let context = rating.context;
        let charge = context.map(|context| rate_call(context, answered_ms));
        if let (Some(charge), Some(answered)) =
            (&charge, cdrs.iter_mut().find(|cdr| cdr.answer_ms.is_some()))
        {
            fill_charge(answered, charge, carrier_buy_per_minute);
        }
        let cost = charge
            .as_ref()
            .and_then(|charge| charge.total_micros().ok())
            .unwrap_or(0);
        if context.is_none() {
            for cdr in cdrs.iter() {
                self.store.write_cdr(cdr, now_ms).await?;
            }
            return Ok(0);
        }
        let package_seconds = charge
            .as_ref()
            .map_or(0, |charge| i64::from(charge.package_seconds_used));
        let level_charges = context.map_or_else(Vec::new, |context| {
            level_charges(context, rating.levels, answered_ms)
        });
        let extras = SettleExtras {
            first_use,
            package_seconds,
            level_charges: &level_charges,
        };
        match self
            .store
            .settle_call(key, cost, cdrs, now_ms, extras)
            .await?
        {
            SettleOutcome::Charged { charged_micros, .. } => Ok(charged_micros),
            SettleOutcome::Replayed { charged_micros } => Ok(charged_micros),
        }
    }

    /// Settles an attempt rated by [`Ledger::authorize`]: an answered call on a card records
    /// its first use, and pays the card's activation fee if the rating included it and no
    /// other call activated the card first (then it is rated again without the fee).
    pub async fn settle_rated(
        &self,
        key: &str,
        rated: Option<&Rated>,
        answered_ms: u64,
        carrier_buy_per_minute: Option<Decimal>,
        cdrs: &mut [Cdr],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let Some(rated) = rated else {
            return self
                .settle(
                    key,
                    None,
                    &[],
                    answered_ms,
                    carrier_buy_per_minute,
                    cdrs,
                    now_ms,
                )
                .await;
        };
        let first_use = rated
            .card
            .filter(|_| answered_ms > 0 && !rated.card_first_used)
            .map(|CardId(card_id)| FirstUse {
                card_id,
                activation_fee_micros: rated.activation_fee_micros,
            });
        let settled = self
            .settle_first_use(
                key,
                Rating {
                    context: Some(&rated.context),
                    levels: &rated.levels,
                },
                answered_ms,
                carrier_buy_per_minute,
                cdrs,
                now_ms,
                first_use,
            )
            .await;
        let Err(StoreError::AlreadyActivated { .. }) = settled else {
            return settled;
        };
        let without = rated
            .without_activation
            .as_deref()
            .unwrap_or(&rated.context);
        let first_use = first_use.map(|first_use| FirstUse {
            activation_fee_micros: 0,
            ..first_use
        });
        self.settle_first_use(
            key,
            Rating {
                context: Some(without),
                levels: &rated.levels,
            },
            answered_ms,
            carrier_buy_per_minute,
            cdrs,
            now_ms,
            first_use,
        )
        .await
    }
}

/// The rating a settle charges by: the payer's (`None`: nothing to charge, only CDRs) and the
/// reseller levels'.
#[derive(Debug, Clone, Copy)]
struct Rating<'a> {
    context: Option<&'a RatingContext>,
    levels: &'a [LevelPrice],
}

/// What the payer brings to a call's rating besides the tariff.
#[derive(Debug, Clone, Default)]
pub struct PayerFacts {
    /// Account fees due with this call (a card's activation).
    pub fees: Vec<AccountFee>,
    /// Free package seconds left for this destination, used before money.
    pub package_seconds: u32,
}

impl Ledger {
    /// The free seconds the account's package still has for `destination` now.
    async fn package_seconds(
        &self,
        account: AccountId,
        destination: &str,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        package_seconds_for(&self.store, account.0, destination, now_ms).await
    }
}

/// The free seconds an account's package still has for `destination` (E.164 digits) now:
/// what authorization rates with and `talktime rate --pin` shows.
pub async fn package_seconds_for(
    store: &Store,
    account_id: i64,
    destination: &str,
    now_ms: i64,
) -> Result<u32, StoreError> {
    let Some(plan) = store.account_plan(account_id).await? else {
        return Ok(0);
    };
    if !plan.package_covers(destination) {
        return Ok(0);
    }
    Ok(u32::try_from(plan.package_seconds_left(now_ms)).unwrap_or(u32::MAX))
}

/// The account fees a call carries into its rating: the activation fee while it is due.
pub fn account_fees(activation_fee_micros: i64) -> Vec<AccountFee> {
    if activation_fee_micros <= 0 {
        return Vec::new();
    }
    vec![AccountFee {
        name: "activation".into(),
        amount: Decimal::new(activation_fee_micros, 6),
    }]
}

/// An account's own rules, parsed.
struct OwnRules {
    taxes: Option<TaxProfile>,
    destinations: DestinationPolicy,
}

/// Toll-fraud caps on what a call may spend, besides the credit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    /// The most one call may cost.
    pub per_call_micros: Option<i64>,
    /// What the account may still be charged today (before its open calls' holds).
    pub daily_left_micros: Option<i64>,
}

impl Caps {
    /// The money this call may use and why it would stop there.
    fn credit(
        &self,
        available: &talktime_store::Available,
    ) -> (i64, talktime_engine::DisconnectCause) {
        use talktime_engine::DisconnectCause;
        let mut credit = (available.available_micros, DisconnectCause::CreditExhausted);
        if let Some(cap) = self.per_call_micros
            && cap < credit.0
        {
            credit = (cap, DisconnectCause::CostCap);
        }
        if let Some(left) = self.daily_left_micros {
            let left = (left - available.reserved_micros).max(0);
            if left < credit.0 {
                credit = (left, DisconnectCause::DailySpendCap);
            }
        }
        credit
    }
}

impl Ledger {
    /// The configured caps for a call of `account` now.
    async fn caps(&self, account: AccountId, now_ms: i64) -> Result<Caps, StoreError> {
        let per_call_micros = optional_amount(&self.config.max_call_cost);
        let daily_left_micros = match optional_amount(&self.config.max_daily_spend) {
            Some(limit) => {
                let midnight = local_midnight_ms(now_ms, self.config.utc_offset_minutes);
                Some(limit - self.store.spent_since(account.0, midnight).await?)
            }
            None => None,
        };
        Ok(Caps {
            per_call_micros,
            daily_left_micros,
        })
    }
}

/// The account's own taxes (`accounts set --taxes`, replacing its tariff's) and destination
/// lists (`accounts set --allow/--deny`, checked beside its tariff's), as stored.
fn own_rules(account: AccountId, stored: AccountRules) -> Result<OwnRules, Refusal> {
    let unreadable = |what: &str, error: serde_json::Error| {
        warn!(account = account.0, %error, "the account's {what} do not parse");
        Refusal::UnknownDestination
    };
    let taxes = match stored.taxes_json {
        Some(json) => Some(serde_json::from_str(&json).map_err(|e| unreadable("taxes", e))?),
        None => None,
    };
    let destinations = match stored.destinations_json {
        Some(json) => serde_json::from_str(&json).map_err(|e| unreadable("destinations", e))?,
        None => DestinationPolicy::default(),
    };
    Ok(OwnRules {
        taxes,
        destinations,
    })
}

/// A decimal-text amount of the configuration; empty (or unreadable, refused at start) is none.
fn optional_amount(text: &str) -> Option<i64> {
    let text = text.trim();
    (!text.is_empty())
        .then(|| talktime_store::parse_micros(text).ok())
        .flatten()
}

/// The start of the local day of `now_ms`, in epoch ms.
fn local_midnight_ms(now_ms: i64, utc_offset_minutes: i32) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let offset_ms = i64::from(utc_offset_minutes) * 60_000;
    (now_ms + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms
}

/// The limit and the hold for one call, both from [`max_talk_time`] over [`rate_call`], within
/// the credit and the caps; also why the call would end at the limit.
fn decide(
    context: &RatingContext,
    available: &talktime_store::Available,
    caps: &Caps,
) -> Result<(Decision, u64, talktime_engine::DisconnectCause), StoreRefusal> {
    let currency = Currency::new(&available.currency)
        .map_err(|error| StoreRefusal::Other(error.to_string()))?;
    let (credit_micros, limit_cause) = caps.credit(available);
    let credit = Money::from_micros(credit_micros, currency);
    match max_talk_time(context, credit) {
        Ok(talk_time) => {
            let reserve = talk_time
                .cost_at_limit
                .to_micros()
                .map_err(|error| StoreRefusal::Other(error.to_string()))?;
            let decision = Decision::new(
                reserve.min(available.available_micros),
                i64::try_from(talk_time.limit_ms).unwrap_or(i64::MAX),
            );
            Ok((decision, talk_time.announced_ms, limit_cause))
        }
        Err(RatingError::InsufficientCredit {
            first_unit_cost, ..
        }) => Err(StoreRefusal::InsufficientCredit {
            available_micros: credit_micros,
            needed_micros: first_unit_cost.to_micros().unwrap_or(i64::MAX),
        }),
        Err(error) => Err(StoreRefusal::Other(error.to_string())),
    }
}

/// [`decide`] for a callback's called leg: the talk time both legs' cost fits in, this leg's
/// hold, and the caller leg's new hold (what it costs up to this leg's limit).
fn decide_beside(
    context: &RatingContext,
    available: &talktime_store::Available,
    caps: &Caps,
    leg: &talktime_b2bua::ledger::CallbackLeg,
) -> Result<(Decision, u64, talktime_engine::DisconnectCause, i64), StoreRefusal> {
    let currency = Currency::new(&available.currency)
        .map_err(|error| StoreRefusal::Other(error.to_string()))?;
    let (credit_micros, limit_cause) = caps.credit(available);
    let credit = Money::from_micros(credit_micros, currency);
    let companion = talktime_billing::CompanionLeg {
        context: &leg.context,
        elapsed_ms: leg.elapsed_ms,
    };
    let micros = |money: Money| {
        money
            .to_micros()
            .map_err(|error| StoreRefusal::Other(error.to_string()))
    };
    match talktime_billing::max_talk_time_beside(context, credit, companion) {
        Ok(talk_time) => {
            let decision = Decision::new(
                micros(talk_time.cost_at_limit)?,
                i64::try_from(talk_time.limit_ms).unwrap_or(i64::MAX),
            );
            let companion_micros = micros(companion.cost_with(talk_time.limit_seconds))?;
            Ok((
                decision,
                talk_time.announced_ms,
                limit_cause,
                companion_micros,
            ))
        }
        Err(RatingError::InsufficientCredit {
            first_unit_cost, ..
        }) => Err(StoreRefusal::InsufficientCredit {
            available_micros: credit_micros,
            needed_micros: first_unit_cost.to_micros().unwrap_or(i64::MAX),
        }),
        Err(error) => Err(StoreRefusal::Other(error.to_string())),
    }
}

/// Shortens `decision` to what every reseller level above the payer pays for, and sets each
/// level's hold (issue 16). The levels priced before the lock must be the ones read under it.
fn hold_levels(
    customer: &RatingContext,
    levels: &[LevelPrice],
    available: &talktime_store::Available,
    decision: &mut Decision,
    announced: &mut u64,
) -> Result<(), StoreRefusal> {
    hold_levels_for(customer, levels, available, decision, announced, None)
}

/// [`hold_levels`], and for a callback's called leg (`beside`) each level pays for the caller
/// leg too: the limit is what both legs cost at the level's prices within its credit (the
/// caller leg's old hold there counted back by the store), and the caller leg's level holds
/// are resized to its cost up to that limit. Without this the caller leg kept the hold of its
/// own authorization (all a nearly spent reseller had, so the called leg was refused), while
/// the called leg's authorization could stretch the caller leg past what that hold paid for.
fn hold_levels_for(
    customer: &RatingContext,
    levels: &[LevelPrice],
    available: &talktime_store::Available,
    decision: &mut Decision,
    announced: &mut u64,
    beside: Option<&talktime_b2bua::ledger::CallbackLeg>,
) -> Result<(), StoreRefusal> {
    if levels.is_empty() && available.levels.is_empty() {
        return Ok(());
    }
    let unchanged = levels.len() == available.levels.len()
        && levels
            .iter()
            .zip(&available.levels)
            .all(|(priced, locked)| priced.reseller_id == locked.level.reseller_id);
    if !unchanged {
        return Err(StoreRefusal::Other(
            "the account's resellers changed while the call was being authorized".into(),
        ));
    }
    let other = |error: &dyn std::fmt::Display| StoreRefusal::Other(error.to_string());
    let currency = Currency::new(&available.currency).map_err(|error| other(&error))?;
    let priced: Vec<talktime_billing::Level<'_>> = levels
        .iter()
        .zip(&available.levels)
        .map(|(priced, locked)| talktime_billing::Level {
            context: priced.context.as_ref(),
            credit: Money::from_micros(locked.available_micros.max(0), currency),
        })
        .collect();
    let customer_limit_ms = u64::try_from(decision.max_duration_ms).unwrap_or(0);
    let limited = match beside {
        None => talktime_billing::level_limit(customer, customer_limit_ms, &priced)
            .map(|limit| (limit, Vec::new())),
        Some(leg) => {
            let companion = talktime_billing::CompanionLevels {
                customer: &leg.context,
                levels: leg
                    .levels
                    .iter()
                    .map(|level| level.context.as_ref())
                    .collect(),
                elapsed_ms: leg.elapsed_ms,
            };
            talktime_billing::level_limit_beside(customer, customer_limit_ms, &priced, &companion)
        }
    };
    let (limit, companion_holds) = match limited {
        Ok(limited) => limited,
        Err(RatingError::InsufficientCredit {
            first_unit_cost,
            available,
        }) => {
            return Err(StoreRefusal::InsufficientCredit {
                available_micros: available.to_micros().unwrap_or(0),
                needed_micros: first_unit_cost.to_micros().unwrap_or(i64::MAX),
            });
        }
        Err(error) => return Err(other(&error)),
    };
    if limit.limit_ms < customer_limit_ms {
        let cost = rate_call(customer, limit.limit_ms)
            .total_micros()
            .map_err(|error| other(&error))?;
        decision.reserve_micros = decision.reserve_micros.min(cost);
        decision.max_duration_ms = i64::try_from(limit.limit_ms).unwrap_or(0);
        *announced = (*announced).min(limit.limit_ms);
    }
    decision.level_holds = limit
        .holds
        .iter()
        .map(|hold| hold.to_micros().map_err(|error| other(&error)))
        .collect::<Result<_, _>>()?;
    decision.companion_level_holds = companion_holds
        .iter()
        .map(|hold| hold.to_micros().map_err(|error| other(&error)))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// Refuses a call a reseller would sell below its minimum margin (issue 16): per minute of the
/// destination, what the level below pays must be at least the level's own price plus its
/// `min_margin_percent` (0: never at a loss). Levels without a tariff of their own pay what
/// they are paid and are not checked.
fn check_margins(
    customer: &RatingContext,
    chain: &[ResellerLevel],
    levels: &[LevelPrice],
) -> Result<(), Refusal> {
    const MINUTE_MS: u64 = 60_000;
    let mut sold = rate_call(customer, MINUTE_MS).total.amount;
    for (level, price) in chain.iter().zip(levels) {
        let Some(own) = &price.context else {
            continue;
        };
        let bought = rate_call(own, MINUTE_MS).total.amount;
        let least = bought * Decimal::from(100 + level.min_margin_percent) / Decimal::from(100);
        if sold < least {
            warn!(
                reseller = level.reseller_id,
                %sold, %bought, margin = level.min_margin_percent,
                "refused: the reseller would sell below its margin"
            );
            return Err(Refusal::BlockedDestination);
        }
        sold = bought;
    }
    Ok(())
}

/// What each reseller level pays for `answered_ms` of talk, its own reseller first.
fn level_charges(customer: &RatingContext, levels: &[LevelPrice], answered_ms: u64) -> Vec<i64> {
    if levels.is_empty() {
        return Vec::new();
    }
    let contexts: Vec<Option<&RatingContext>> =
        levels.iter().map(|level| level.context.as_ref()).collect();
    talktime_billing::level_charges(customer, &contexts, answered_ms)
        .iter()
        .map(|charge| charge.to_micros().unwrap_or(0))
        .collect()
}

/// What the caller is told when the store refuses or fails an authorization step. Only the
/// ledger's own answers speak of credit or the number; a database that could not answer
/// (or anything unforeseen) is `Unavailable`: "the call failed", and the CDR says
/// `system_error`, never `no_credit`.
fn store_refusal(error: &StoreError, failed: &str) -> Refusal {
    match error {
        StoreError::ConcurrencyLimit { .. }
        | StoreError::CallRateLimit { .. }
        | StoreError::AlreadyActivated { .. } => Refusal::CardInUse,
        StoreError::Refused(StoreRefusal::InsufficientCredit { .. }) => Refusal::NoCredit,
        StoreError::Refused(StoreRefusal::NoRate) => Refusal::UnknownDestination,
        StoreError::NotUsable { .. } => Refusal::NoCredit,
        other => {
            warn!(error = %other, "{failed}");
            Refusal::Unavailable
        }
    }
}

/// A tariff that cannot be loaded: the database's failure is `Unavailable`; a tariff that is
/// missing or unreadable leaves the destination without a price, as before.
fn tariff_refusal(error: &LedgerError) -> Refusal {
    match error {
        LedgerError::Store(store) if store.is_transient() => Refusal::Unavailable,
        _ => Refusal::UnknownDestination,
    }
}

/// What the carrier charges for the billed seconds, rounded half-up to the micro-unit (the
/// ledger's resolution). The carrier's own deck, when routing found one, beats the sell
/// tariff's buy column.
fn buy_cost(charge: &Charge, carrier_buy_per_minute: Option<Decimal>) -> Decimal {
    let exact = match carrier_buy_per_minute {
        Some(per_minute) => per_minute * Decimal::from(charge.billed_seconds) / Decimal::from(60),
        None => charge.buy_cost.amount,
    };
    exact.round_dp_with_strategy(6, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

fn to_micros(amount: Decimal) -> i64 {
    (amount * Decimal::from(1_000_000))
        .trunc()
        .try_into()
        .unwrap_or(0)
}

/// Copies the rated amounts into the answered attempt's CDR.
fn fill_charge(cdr: &mut Cdr, charge: &Charge, carrier_buy_per_minute: Option<Decimal>) {
    let buy = buy_cost(charge, carrier_buy_per_minute);
    cdr.billed_seconds = i64::from(charge.billed_seconds);
    cdr.total_micros = charge.total.to_micros().unwrap_or(0);
    cdr.tax_micros = charge.tax_total.to_micros().unwrap_or(0);
    cdr.buy_cost_micros = to_micros(buy);
    cdr.fees_json = serde_json::json!({
        "connection_fee": charge.connection_fee.amount.to_string(),
        "time_charge": charge.time_charge.amount.to_string(),
        "toll_free_surcharge": charge.toll_free_surcharge.amount.to_string(),
        "disconnect_fee": charge.disconnect_fee.amount.to_string(),
        "disconnect_factor_fee": charge.disconnect_factor_fee.amount.to_string(),
        "minimum_cost_topup": charge.minimum_cost_topup.amount.to_string(),
        "account_fees": charge
            .account_fees
            .iter()
            .map(|fee| serde_json::json!({"name": fee.name, "amount": fee.amount.to_string()}))
            .collect::<Vec<_>>(),
        "margin": (charge.call_charges.amount - buy).to_string(),
    })
    .to_string();
    cdr.taxes_json = serde_json::to_string(&charge.taxes).unwrap_or_else(|_| "[]".into());
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no tariff named {0}")]
    NoTariff(String),
    #[error("tariff {tariff} has invalid settings: {reason}")]
    Settings { tariff: i64, reason: String },
}

/// Reads a tariff and its rates into a billing deck.
pub async fn load_deck(store: &Store, tariff: i64) -> Result<RateDeck, LedgerError> {
    let row = store.tariff(tariff).await?;
    let settings =
        TariffSettings::from_json(&row.settings_json).map_err(|error| LedgerError::Settings {
            tariff,
            reason: error.to_string(),
        })?;
    let rates = store.rates(tariff).await?;
    let rates = rates
        .iter()
        .map(billing_rate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| LedgerError::Settings { tariff, reason })?;
    RateDeck::build(settings, rates).map_err(|error| LedgerError::Settings {
        tariff,
        reason: error.to_string(),
    })
}

/// A ledger rate row as a billing rate (micro-units become exact decimals), with every
/// optional per-destination field of its `extras_json`.
pub fn billing_rate(row: &talktime_store::Rate) -> Result<talktime_billing::Rate, String> {
    let mut rate = talktime_billing::Rate::new(
        &row.prefix,
        Decimal::new(row.sell_rate_micros, 6),
        u32::try_from(row.initial_block_s).unwrap_or(u32::MAX),
        u32::try_from(row.increment_s).unwrap_or(u32::MAX),
    );
    rate.description = row.description.clone();
    rate.buy_per_minute = Decimal::new(row.buy_rate_micros, 6);
    rate.connection_fee = Decimal::new(row.connection_fee_micros, 6);
    let extras: talktime_billing::RateExtras = serde_json::from_str(&row.extras_json)
        .map_err(|error| format!("rate {}: extras: {error}", row.prefix))?;
    extras.apply_to(&mut rate);
    Ok(rate)
}

/// The optional tariff CSV columns, read by the billing crate for the store's import.
pub fn rate_extras_columns() -> talktime_store::RateExtrasColumns<'static> {
    talktime_store::RateExtrasColumns {
        names: &talktime_billing::RATE_EXTRA_COLUMNS,
        parse: &parse_rate_extras,
    }
}

fn parse_rate_extras(cells: &[(&'static str, &str)]) -> Result<String, (&'static str, String)> {
    let extras = talktime_billing::RateExtras::from_columns(cells)
        .map_err(|error| (error.column, error.message))?;
    // The same checks a deck makes when it loads, so a bad value fails the import.
    let mut probe = talktime_billing::Rate::new("1", Decimal::ONE, 1, 1);
    extras.apply_to(&mut probe);
    probe
        .validate()
        .map_err(|talktime_billing::TariffError::Invalid { field, reason }| (field, reason))?;
    serde_json::to_string(&extras).map_err(|error| ("extras", error.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use talktime_billing::{CallFacts, Date, LocalStart, Rate, TariffSettings, TimeOfDay};

    fn charge_for(seconds: u64, buy_per_minute: &str) -> Charge {
        let settings = TariffSettings::default();
        let mut rate = Rate::new("44", Decimal::new(3, 0), 1, 1);
        rate.buy_per_minute = buy_per_minute.parse().unwrap();
        let start = LocalStart::new(
            Date::new(2026, 11, 23).unwrap(),
            TimeOfDay::new(12, 0, 0).unwrap(),
        );
        let context = RatingContext::new(&settings, &rate, &CallFacts::new(start)).unwrap();
        rate_call(&context, seconds * 1000)
    }

    #[test]
    fn buy_cost_is_rounded_to_the_micro_unit_on_both_paths() {
        // 13 s at 1.00/min = 0.2166666...: half-up to 0.216667 whichever rate is used.
        let charge = charge_for(13, "1.00");
        assert_eq!(
            buy_cost(&charge, None),
            "0.216667".parse::<Decimal>().unwrap()
        );
        let carrier = "1.00".parse().ok();
        assert_eq!(
            buy_cost(&charge, carrier),
            "0.216667".parse::<Decimal>().unwrap()
        );
    }

    #[test]
    fn the_carrier_rate_beats_the_tariff_buy_column() {
        let charge = charge_for(60, "1.00");
        let carrier = "0.30".parse().ok();
        assert_eq!(
            buy_cost(&charge, carrier),
            "0.3".parse::<Decimal>().unwrap()
        );
    }
}
