//! Resellers for operators (issue 16): `talktime resellers add|list|show|recharge|credit-limit|
//! statement|customer` and the same over the admin API. The money rules live in the store
//! (holds on every level) and in billing (each level's price); see crates/store/src/resellers.rs.

use anyhow::Context;
use clap::Subcommand;
use talktime_store::{
    DEFAULT_MAX_RESELLER_DEPTH, NewReseller, Reseller, StatementLine, Store, format_micros,
    parse_micros,
};

use crate::admin::{AccountArgs, LedgerArgs};
use crate::server::wall_clock_ms;

#[derive(Debug, Subcommand)]
pub enum ResellersCommand {
    /// Add a reseller (below the vendor, or below --parent), with an account of its own.
    Add {
        #[command(flatten)]
        ledger: LedgerArgs,
        name: String,
        /// The reseller it buys from (name or id); without: the vendor.
        #[arg(long)]
        parent: Option<String>,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// The tariff it buys at (what its parent or the vendor charges it); without: it pays
        /// what its customers pay.
        #[arg(long)]
        tariff: Option<String>,
        /// How far below zero its balance may go (a postpaid reseller), e.g. 50.00.
        #[arg(long = "credit-limit", default_value = "0")]
        credit_limit: String,
        /// Calls at once over all its customers; 0 = no limit.
        #[arg(long = "concurrency-limit", default_value_t = 0)]
        concurrency_limit: i64,
        /// The deepest a reseller may sit below the vendor.
        #[arg(long = "max-depth", default_value_t = DEFAULT_MAX_RESELLER_DEPTH)]
        max_depth: i64,
        /// What its customers without a tariff of their own pay (its white-label tariff).
        #[arg(long = "sell-tariff")]
        sell_tariff: Option<String>,
        /// Refuse its customers' calls to destinations it would sell less than this many
        /// percent above its own price (0: never at a loss).
        #[arg(long = "min-margin", default_value_t = 0)]
        min_margin: i64,
    },
    /// Change what a reseller's customers pay and the least margin it sells at.
    Pricing {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        /// Its white-label tariff; without: its customers pay the vendor's default tariff.
        #[arg(long = "sell-tariff")]
        sell_tariff: Option<String>,
        #[arg(long = "min-margin", default_value_t = 0)]
        min_margin: i64,
    },
    /// Every reseller with its balance and free credit.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// One reseller: balance, credit limit, what its calls hold now.
    Show {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
    },
    /// Add credit to a reseller's account.
    Recharge {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        amount: String,
        #[arg(long)]
        reference: Option<String>,
    },
    /// Bound a reseller's customers together: calls at once and new calls a second (0: none).
    Limits {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        #[arg(long = "concurrency-limit", default_value_t = 0)]
        concurrency_limit: i64,
        #[arg(long = "calls-per-second", default_value_t = 0)]
        calls_per_second: i64,
    },
    /// Set how far below zero a reseller's balance may go.
    CreditLimit {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        amount: String,
    },
    /// What the vendor pays a reseller besides its margin: percent of its customers' calls
    /// (what the level below paid; plus --call-flat per charged call) and of its own
    /// customers' payments. Percents may have two decimals (2.5).
    Commission {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        #[arg(long, default_value = "0")]
        calls: String,
        #[arg(long = "call-flat", default_value = "0")]
        call_flat: String,
        #[arg(long, default_value = "0")]
        payments: String,
    },
    /// Calls a reseller took part in: what it paid for each and what it was paid.
    Statement {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Give a reseller's retail agents a new PIN for the retail recharge line (a random one,
    /// printed once, unless --pin-file names a file holding it).
    AgentPin {
        #[command(flatten)]
        ledger: LedgerArgs,
        reseller: String,
        #[arg(long = "pin-file")]
        pin_file: Option<std::path::PathBuf>,
    },
    /// Make an account (a card's or a pinless one) a customer of a reseller, or of the vendor
    /// again with --vendor.
    Customer {
        #[command(flatten)]
        account: AccountArgs,
        /// The reseller (name or id).
        #[arg(required_unless_present = "vendor")]
        reseller: Option<String>,
        #[arg(long, conflicts_with = "reseller")]
        vendor: bool,
    },
}

/// A reseller by name, or by id when the text is a number that names none.
pub async fn find(store: &Store, text: &str) -> anyhow::Result<Reseller> {
    if let Some(found) = store.reseller_by_name(text).await? {
        return Ok(found);
    }
    let id: i64 = text
        .parse()
        .map_err(|_| anyhow::anyhow!("no reseller named {text}"))?;
    Ok(store.reseller(id).await?)
}

/// The ledger and a reseller by name or id.
async fn open_reseller(ledger: &LedgerArgs, text: &str) -> anyhow::Result<(Store, Reseller)> {
    let store = ledger.open().await?;
    let reseller = find(&store, text).await?;
    Ok((store, reseller))
}

async fn tariff_id(store: &Store, name: Option<&str>) -> anyhow::Result<Option<i64>> {
    match name {
        Some(name) => Ok(Some(crate::admin::tariff_named(store, name).await?.id)),
        None => Ok(None),
    }
}

fn print_reseller(reseller: &Reseller, held: i64) {
    println!(
        "{}\t{}\tdepth {}\tparent {}\tbalance {} {}\tcredit limit {}\tfree {}\t{}",
        reseller.id,
        reseller.name,
        reseller.depth,
        reseller
            .parent_id
            .map_or_else(|| "vendor".to_owned(), |id| id.to_string()),
        format_micros(reseller.balance_micros),
        reseller.currency,
        format_micros(reseller.credit_limit_micros),
        format_micros(free_micros(reseller, held)),
        reseller.status,
    );
}

/// A percent as decimal text ("2.5") in basis points (250); at most two decimals.
pub fn basis_points(percent: &str) -> anyhow::Result<i64> {
    let micros = parse_micros(percent)?;
    const MICROS_PER_BASIS_POINT: i64 = 10_000;
    if micros % MICROS_PER_BASIS_POINT != 0 {
        anyhow::bail!("a percent has at most two decimals: {percent}");
    }
    Ok(micros / MICROS_PER_BASIS_POINT)
}

/// Ten random digits.
fn random_agent_pin() -> String {
    use rand::RngExt;
    let mut random = rand::rng();
    (0..10)
        .map(|_| char::from(b'0' + random.random_range(0..10u8)))
        .collect()
}

/// What the reseller can still hold for new calls.
pub fn free_micros(reseller: &Reseller, held: i64) -> i64 {
    reseller.balance_micros + reseller.credit_limit_micros - held
}

fn print_statement(lines: &[StatementLine]) {
    let (mut bought, mut sold, mut commission) = (0, 0, 0);
    for line in lines {
        let amount = |value: Option<i64>| value.map_or_else(|| "-".to_owned(), format_micros);
        println!(
            "{}\tdepth {}\taccount {}\t{}\tsold {}\tbought {}\tcommission {}",
            line.call_id,
            line.depth,
            line.customer_account_id,
            line.state,
            amount(line.sold_micros),
            amount(line.bought_micros),
            amount(line.commission_micros),
        );
        bought += line.bought_micros.unwrap_or(0);
        sold += line.sold_micros.unwrap_or(0);
        commission += line.commission_micros.unwrap_or(0);
    }
    println!(
        "total\tsold {}\tbought {}\tmargin {}\tcommission {}",
        format_micros(sold),
        format_micros(bought),
        format_micros(sold - bought),
        format_micros(commission)
    );
}

pub async fn run(command: ResellersCommand) -> anyhow::Result<()> {
    match command {
        ResellersCommand::Add {
            ledger,
            name,
            parent,
            currency,
            tariff,
            credit_limit,
            concurrency_limit,
            max_depth,
            sell_tariff,
            min_margin,
        } => {
            let store = ledger.open().await?;
            let parent_id = match parent.as_deref() {
                Some(parent) => Some(find(&store, parent).await?.id),
                None => None,
            };
            let new = NewReseller {
                name,
                parent_id,
                currency: currency.to_ascii_uppercase(),
                tariff_id: tariff_id(&store, tariff.as_deref()).await?,
                credit_limit_micros: parse_micros(&credit_limit).context("--credit-limit")?,
                concurrency_limit,
                max_depth,
                sell_tariff_id: tariff_id(&store, sell_tariff.as_deref()).await?,
                min_margin_percent: min_margin,
            };
            let added = store.add_reseller(&new, wall_clock_ms()).await?;
            eprintln!(
                "reseller {} added (account {}, depth {})",
                added.name, added.account_id, added.depth
            );
            println!("{}", added.id);
        }
        ResellersCommand::List { ledger } => {
            let store = ledger.open().await?;
            for reseller in store.resellers().await? {
                let (held, _) = store.reseller_holds(reseller.id).await?;
                print_reseller(&reseller, held);
            }
        }
        ResellersCommand::Show { ledger, reseller } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let (held, calls) = store.reseller_holds(reseller.id).await?;
            print_reseller(&reseller, held);
            println!("held {} by {calls} calls", format_micros(held));
        }
        ResellersCommand::Recharge {
            ledger,
            reseller,
            amount,
            reference,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let amount = parse_micros(&amount).context("amount")?;
            let balance = store
                .recharge(
                    reseller.account_id,
                    amount,
                    reference.as_deref(),
                    wall_clock_ms(),
                )
                .await?;
            println!("balance {}", format_micros(balance));
        }
        ResellersCommand::Limits {
            ledger,
            reseller,
            concurrency_limit,
            calls_per_second,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let mut terms = reseller.terms();
            terms.concurrency_limit = concurrency_limit;
            terms.calls_per_second = calls_per_second;
            store.set_reseller_terms(reseller.id, &terms).await?;
            eprintln!(
                "{}: {concurrency_limit} calls at once, {calls_per_second} a second (0: no bound)",
                reseller.name
            );
        }
        ResellersCommand::CreditLimit {
            ledger,
            reseller,
            amount,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let mut terms = reseller.terms();
            terms.credit_limit_micros = parse_micros(&amount).context("amount")?;
            let changed = store.set_reseller_terms(reseller.id, &terms).await?;
            println!(
                "credit limit {}",
                format_micros(changed.credit_limit_micros)
            );
        }
        ResellersCommand::Pricing {
            ledger,
            reseller,
            sell_tariff,
            min_margin,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let mut terms = reseller.terms();
            terms.sell_tariff_id = tariff_id(&store, sell_tariff.as_deref()).await?;
            terms.min_margin_percent = min_margin;
            let changed = store.set_reseller_terms(reseller.id, &terms).await?;
            eprintln!(
                "reseller {}: sell tariff {}, minimum margin {} %",
                changed.name,
                changed
                    .sell_tariff_id
                    .map_or_else(|| "(vendor default)".to_owned(), |id| id.to_string()),
                changed.min_margin_percent
            );
        }
        ResellersCommand::AgentPin {
            ledger,
            reseller,
            pin_file,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let (pin, made) = match pin_file {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    (
                        text.lines().next().unwrap_or_default().trim().to_owned(),
                        false,
                    )
                }
                None => (random_agent_pin(), true),
            };
            if !(6..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!("an agent PIN is 6-12 digits");
            }
            if !store
                .set_agent_pin(reseller.id, &talktime_pii::Pii::new(pin.clone()))
                .await?
            {
                anyhow::bail!("another reseller has that PIN: choose another");
            }
            eprintln!("agent PIN of {} set", reseller.name);
            if made {
                // The only time it can be read.
                println!("{pin}");
            }
        }
        ResellersCommand::Commission {
            ledger,
            reseller,
            calls,
            call_flat,
            payments,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            let mut terms = reseller.terms();
            terms.commission = talktime_store::Commission {
                calls_bp: basis_points(&calls).context("--calls")?,
                call_flat_micros: parse_micros(&call_flat).context("--call-flat")?,
                payments_bp: basis_points(&payments).context("--payments")?,
            };
            store.set_reseller_terms(reseller.id, &terms).await?;
            eprintln!("commission of {} set", reseller.name);
        }
        ResellersCommand::Statement {
            ledger,
            reseller,
            limit,
        } => {
            let (store, reseller) = open_reseller(&ledger, &reseller).await?;
            print_statement(&store.reseller_statement(reseller.id, limit).await?);
        }
        ResellersCommand::Customer {
            account,
            reseller,
            vendor: _,
        } => {
            let (store, account) = account.resolve().await?;
            let reseller = match reseller.as_deref() {
                Some(text) => Some(find(&store, text).await?),
                None => None,
            };
            store
                .set_account_reseller(account, reseller.as_ref().map(|found| found.id))
                .await?;
            match reseller {
                Some(reseller) => eprintln!("account {account} is a customer of {}", reseller.name),
                None => eprintln!("account {account} is a customer of the vendor"),
            }
        }
    }
    Ok(())
}

/// A retail line's recharge: from the reseller whose own account is `agent` to its customer
/// registered under `number`, once per `key` (see [`Store::transfer_to_customer`]). A
/// database error is never "unknown customer".
pub async fn retail_recharge(
    store: &Store,
    agent: i64,
    number: &talktime_pii::Pii<String>,
    amount_micros: i64,
    key: &str,
    now_ms: i64,
) -> talktime_engine::RetailOutcome {
    use talktime_engine::RetailOutcome;
    let moved = async {
        let Some(reseller) = store.reseller_of_account(agent).await? else {
            return Ok(RetailOutcome::UnknownCustomer);
        };
        let Some(customer) = store.customer_by_number(reseller.id, number).await? else {
            return Ok(RetailOutcome::UnknownCustomer);
        };
        match store
            .transfer_to_customer(reseller.id, customer, amount_micros, key, now_ms)
            .await
        {
            Ok(moved) => Ok(RetailOutcome::Done {
                customer_balance_micros: moved.customer_balance_micros,
            }),
            Err(talktime_store::StoreError::Refused(_)) => Ok(RetailOutcome::CreditShort),
            Err(talktime_store::StoreError::InvalidArgument(text)) => {
                tracing::warn!(%text, "retail recharge refused");
                Ok(RetailOutcome::UnknownCustomer)
            }
            Err(error) => Err(error),
        }
    };
    match moved.await {
        Ok(outcome) => outcome,
        Err(error) => {
            tracing::warn!(%error, "retail recharge failed");
            RetailOutcome::Unavailable
        }
    }
}

// ----- admin API -----

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;

use crate::admin_http::{AdminError, AdminState, ApiCaller, Scope};
use crate::openapi::ErrorBody;

/// A reseller as the API shows it; money as decimal text.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ResellerView {
    pub id: i64,
    pub name: String,
    /// The reseller it buys from; null: the vendor.
    pub parent_id: Option<i64>,
    pub account_id: i64,
    pub depth: i64,
    pub currency: String,
    pub balance: String,
    pub credit_limit: String,
    /// Balance plus credit limit minus what its calls hold now.
    pub free: String,
    /// Held by calls up now.
    pub held: String,
    pub calls_up: i64,
    /// Calls at once over all its customers (0: no bound).
    pub concurrency_limit: i64,
    /// New calls a second over all its customers (0: no bound).
    pub calls_per_second: i64,
    pub tariff_id: Option<i64>,
    pub sell_tariff_id: Option<i64>,
    pub min_margin_percent: i64,
    pub status: String,
}

async fn view(store: &Store, reseller: &Reseller) -> Result<ResellerView, AdminError> {
    let (held, calls_up) = store.reseller_holds(reseller.id).await?;
    Ok(ResellerView {
        id: reseller.id,
        name: reseller.name.clone(),
        parent_id: reseller.parent_id,
        account_id: reseller.account_id,
        depth: reseller.depth,
        currency: reseller.currency.clone(),
        balance: format_micros(reseller.balance_micros),
        credit_limit: format_micros(reseller.credit_limit_micros),
        free: format_micros(free_micros(reseller, held)),
        held: format_micros(held),
        calls_up,
        concurrency_limit: reseller.concurrency_limit,
        calls_per_second: reseller.calls_per_second,
        tariff_id: reseller.tariff_id,
        sell_tariff_id: reseller.sell_tariff_id,
        min_margin_percent: reseller.min_margin_percent,
        status: reseller.status.clone(),
    })
}

/// A new reseller as ordered over the API.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResellerOrder {
    pub name: String,
    /// The reseller it buys from; omitted: the vendor.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// ISO code; omitted: USD.
    #[serde(default)]
    pub currency: Option<String>,
    /// The tariff it buys at, by name; omitted: it pays what its customers pay.
    #[serde(default)]
    pub tariff: Option<String>,
    /// Decimal text; omitted: 0.
    #[serde(default)]
    pub credit_limit: Option<String>,
    /// Calls at once over all its customers; omitted or 0: no limit.
    #[serde(default)]
    pub concurrency_limit: Option<i64>,
    /// Its white-label tariff, by name: what its customers without a tariff pay.
    #[serde(default)]
    pub sell_tariff: Option<String>,
    /// The least margin over its own price, in percent (0-1000); omitted: 0.
    #[serde(default)]
    pub min_margin_percent: Option<i64>,
}

async fn api_tariff(store: &Store, name: Option<&str>) -> Result<Option<i64>, AdminError> {
    match name {
        Some(name) => Ok(Some(
            store
                .tariff_by_name(name)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("no tariff named {name}")))?
                .id,
        )),
        None => Ok(None),
    }
}

/// Every reseller.
#[utoipa::path(get, path = "/api/resellers", tag = "resellers",
    responses((status = 200, body = Vec<ResellerView>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(scope): Extension<Scope>,
) -> Result<Json<Vec<ResellerView>>, AdminError> {
    let mut views = Vec::new();
    for reseller in state.store().resellers_under(scope.0).await? {
        views.push(view(state.store(), &reseller).await?);
    }
    Ok(Json(views))
}

/// Adds a reseller with an account of its own (zero balance).
#[utoipa::path(post, path = "/api/resellers", tag = "resellers",
    request_body = ResellerOrder,
    responses((status = 201, body = ResellerView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    Json(order): Json<ResellerOrder>,
) -> Result<(StatusCode, Json<ResellerView>), AdminError> {
    let store = state.store();
    let tariff_id = api_tariff(store, order.tariff.as_deref()).await?;
    let sell_tariff_id = api_tariff(store, order.sell_tariff.as_deref()).await?;
    let credit_limit = match order.credit_limit.as_deref() {
        Some(text) => {
            parse_micros(text).map_err(|error| AdminError::BadRequest(error.to_string()))?
        }
        None => 0,
    };
    let new = NewReseller {
        name: order.name,
        parent_id: order.parent_id,
        currency: order
            .currency
            .unwrap_or_else(|| "USD".to_owned())
            .to_ascii_uppercase(),
        tariff_id,
        credit_limit_micros: credit_limit,
        concurrency_limit: order.concurrency_limit.unwrap_or(0),
        max_depth: DEFAULT_MAX_RESELLER_DEPTH,
        sell_tariff_id,
        min_margin_percent: order.min_margin_percent.unwrap_or(0),
    };
    let added = store.add_reseller(&new, wall_clock_ms()).await?;
    let after = serde_json::json!({ "name": added.name, "parent_id": added.parent_id });
    let subject = format!("reseller {}", added.id);
    crate::vouchers::audit(&state, &caller, "resellers.add", &subject, after).await?;
    Ok((StatusCode::CREATED, Json(view(store, &added).await?)))
}

/// One reseller.
#[utoipa::path(get, path = "/api/resellers/{id}", tag = "resellers",
    params(("id" = i64, Path, description = "Reseller id")),
    responses((status = 200, body = ResellerView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(scope): Extension<Scope>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Json<ResellerView>, AdminError> {
    scope.reseller(state.store(), id).await?;
    let reseller = state.store().reseller(id).await?;
    Ok(Json(view(state.store(), &reseller).await?))
}

/// One call on a reseller's statement; money as decimal text, null while the call is up.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StatementLineView {
    pub call_id: String,
    pub depth: i64,
    pub customer_account_id: i64,
    pub state: String,
    /// What the reseller paid the level above.
    pub bought: Option<String>,
    /// What the level below paid the reseller.
    pub sold: Option<String>,
    /// The vendor's commission to the reseller on the call.
    pub commission: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// At most this many calls, newest first (1-1000; default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// The calls a reseller took part in, what it paid for each and what it was paid.
#[utoipa::path(get, path = "/api/resellers/{id}/statement", tag = "resellers",
    params(("id" = i64, Path, description = "Reseller id"), StatementQuery),
    responses((status = 200, body = Vec<StatementLineView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn statement(
    State(state): State<AdminState>,
    Extension(scope): Extension<Scope>,
    UrlPath(id): UrlPath<i64>,
    Query(query): Query<StatementQuery>,
) -> Result<Json<Vec<StatementLineView>>, AdminError> {
    scope.reseller(state.store(), id).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::BadRequest("limit is 1-1000".into()));
    }
    state.store().reseller(id).await?;
    let lines = state.store().reseller_statement(id, limit).await?;
    Ok(Json(
        lines
            .into_iter()
            .map(|line| StatementLineView {
                call_id: line.call_id,
                depth: line.depth,
                customer_account_id: line.customer_account_id,
                state: line.state,
                bought: line.bought_micros.map(format_micros),
                sold: line.sold_micros.map(format_micros),
                commission: line.commission_micros.map(format_micros),
                created_at_ms: line.created_at_ms,
            })
            .collect(),
    ))
}

/// Whose customer an account is.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerOf {
    /// The reseller; null: the vendor.
    pub reseller_id: Option<i64>,
}

/// Makes an account a customer of a reseller (or of the vendor with null).
#[utoipa::path(put, path = "/api/accounts/{id}/reseller", tag = "resellers",
    params(("id" = i64, Path, description = "Account id")),
    request_body = CustomerOf,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_customer(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(id): UrlPath<i64>,
    Json(order): Json<CustomerOf>,
) -> Result<StatusCode, AdminError> {
    state
        .store()
        .set_account_reseller(id, order.reseller_id)
        .await?;
    let after = serde_json::json!({ "reseller_id": order.reseller_id });
    let subject = format!("account {id}");
    crate::vouchers::audit(&state, &caller, "resellers.customer", &subject, after).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A pinless customer a reseller registers by phone number.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerOrder {
    /// The customer's phone number as the switch sees callers (digits, e.g. 15551230000).
    pub number: String,
    /// A name for the account; omitted: the number's last four digits.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CustomerAdded {
    pub account_id: i64,
}

/// A customer's phone number as callers' numbers are kept (digits), from what an operator or a
/// reseller typed: 6-20 digits, an optional `+` first, separators ignored.
pub fn customer_number(text: &str) -> Option<talktime_pii::Pii<String>> {
    talktime_routing::caller_id_digits(text).map(talktime_pii::Pii::new)
}

fn api_number(text: &str) -> Result<talktime_pii::Pii<String>, AdminError> {
    customer_number(text).ok_or_else(|| {
        AdminError::BadRequest("a number is 6-20 digits, an optional + first".into())
    })
}

/// An account's name from the last four digits of its number.
pub fn pinless_name(number: &talktime_pii::Pii<String>) -> String {
    let digits = number.expose();
    format!("pinless ...{}", &digits[digits.len().saturating_sub(4)..])
}

/// Registers a pinless customer of the reseller by phone number: a new account under it, in
/// its currency, with the number as its caller ID (409 when the number is registered).
#[utoipa::path(post, path = "/api/resellers/{id}/customers", tag = "resellers",
    params(("id" = i64, Path, description = "Reseller id")),
    request_body = CustomerOrder,
    responses((status = 201, body = CustomerAdded), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn add_customer(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    Extension(scope): Extension<Scope>,
    UrlPath(id): UrlPath<i64>,
    Json(order): Json<CustomerOrder>,
) -> Result<(StatusCode, Json<CustomerAdded>), AdminError> {
    scope.reseller(state.store(), id).await?;
    let number = api_number(&order.number)?;
    let name = order.name.unwrap_or_else(|| pinless_name(&number));
    // The store refuses a number that is registered already, in its transaction.
    let account_id = state
        .store()
        .add_pinless_customer(id, &name, &number, wall_clock_ms())
        .await
        .map_err(|error| match error {
            talktime_store::StoreError::InvalidArgument(text) => AdminError::Conflict(text),
            other => AdminError::Store(other),
        })?;
    let after = serde_json::json!({ "account_id": account_id });
    let subject = format!("reseller {id}");
    crate::vouchers::audit(&state, &caller, "resellers.customer_add", &subject, after).await?;
    Ok((StatusCode::CREATED, Json(CustomerAdded { account_id })))
}

/// Money a reseller moves to one of its customers.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOrder {
    /// The customer's account, or its registered `number`.
    #[serde(default)]
    pub account_id: Option<i64>,
    #[serde(default)]
    pub number: Option<String>,
    /// Decimal text in the reseller's currency, e.g. "10.00".
    pub amount: String,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TransferReply {
    pub account_id: i64,
    pub customer_balance: String,
    pub reseller_balance: String,
    /// True when an earlier request with the same Idempotency-Key moved it.
    pub replayed: bool,
}

/// Recharges a customer of the reseller from the reseller's credit (a pinless reseller or a
/// retail counter), once per `Idempotency-Key` (required): a repeat moves nothing more.
/// 409 when the reseller's free credit is short; 404 for an account that is not its customer.
#[utoipa::path(post, path = "/api/resellers/{id}/transfers", tag = "resellers",
    params(("id" = i64, Path, description = "Reseller id"),
        ("Idempotency-Key" = String, Header, description = "Moves once per key")),
    request_body = TransferOrder,
    responses((status = 200, body = TransferReply), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn transfer(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    Extension(scope): Extension<Scope>,
    headers: axum::http::HeaderMap,
    UrlPath(id): UrlPath<i64>,
    Json(order): Json<TransferOrder>,
) -> Result<Json<TransferReply>, AdminError> {
    scope.reseller(state.store(), id).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.is_empty() && key.len() <= 100)
        .ok_or_else(|| {
            AdminError::BadRequest("an Idempotency-Key header (1-100 characters)".into())
        })?
        .to_owned();
    let amount = parse_micros(&order.amount)
        .map_err(|error| AdminError::BadRequest(format!("amount: {error}")))?;
    let account_id = match (order.account_id, order.number.as_deref()) {
        (Some(account), None) => account,
        (None, Some(number)) => state
            .store()
            .customer_by_number(id, &api_number(number)?)
            .await?
            .ok_or_else(|| AdminError::NotFound("no customer with that number".into()))?,
        _ => {
            return Err(AdminError::BadRequest(
                "give account_id or number, not both".into(),
            ));
        }
    };
    let moved = state
        .store()
        .transfer_to_customer(id, account_id, amount, &key, wall_clock_ms())
        .await
        .map_err(|error| match error {
            talktime_store::StoreError::Refused(_) => {
                AdminError::Conflict("the reseller's free credit is short".into())
            }
            other => AdminError::Store(other),
        })?;
    if !moved.replayed {
        let after = serde_json::json!({ "account_id": account_id, "amount": order.amount });
        let subject = format!("reseller {id}");
        crate::vouchers::audit(&state, &caller, "resellers.transfer", &subject, after).await?;
    }
    Ok(Json(TransferReply {
        account_id,
        customer_balance: format_micros(moved.customer_balance_micros),
        reseller_balance: format_micros(moved.reseller_balance_micros),
        replayed: moved.replayed,
    }))
}
