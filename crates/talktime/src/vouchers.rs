//! Vouchers and speed dials for operators (issue 21): the CLI commands and the admin API
//! routes. A caller uses vouchers with `*0` at the destination prompt or on a recharge line
//! (`recharge_only`), and speed dials with a lone key, `*N` and `#` (crates/engine).

use std::path::Path;

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, State};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use talktime_pii::Pii;
use talktime_store::{Store, VoucherBatch, VoucherBatchSpec, VoucherRow, parse_micros};
use utoipa::ToSchema;

use crate::admin::{AccountArgs, LedgerArgs, create_secret_file, end_of_day_ms};
use crate::admin_http::{AdminError, AdminState, ApiCaller};
use crate::openapi::ErrorBody;
use crate::server::wall_clock_ms;

/// Most vouchers one request may generate.
const VOUCHER_BATCH_LIMIT: u32 = 10_000;

#[derive(Debug, Subcommand)]
pub enum VouchersCommand {
    /// Generate a batch of vouchers (single-use recharge codes) and write it as CSV.
    Generate {
        #[command(flatten)]
        ledger: LedgerArgs,
        #[command(flatten)]
        order: VoucherOrder,
        /// Where to write the CSV (codes included): a file, or - for standard output.
        #[arg(long, default_value = "-")]
        output: String,
    },
    /// A batch's vouchers: value, state, when and by which account each was used (never the
    /// codes: the ledger keeps keyed hashes).
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// The batch id `generate` printed.
        batch: i64,
    },
    /// Disable an unused voucher (lost or stolen).
    Disable {
        #[command(flatten)]
        ledger: LedgerArgs,
        voucher: i64,
    },
}

/// A voucher batch as an operator orders it, on the command line or through the admin API.
#[derive(Debug, Args, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherOrder {
    /// Batch name.
    #[arg(long)]
    pub name: String,
    /// How many vouchers.
    #[arg(long)]
    #[schema(minimum = 1, maximum = 10000)]
    pub count: u32,
    /// Value of each voucher as decimal text, e.g. 10.00.
    #[arg(long)]
    pub value: String,
    /// Currency code: only accounts in this currency can use them.
    #[arg(long, default_value = "USD")]
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Digits per code (10-18).
    #[arg(long = "code-length", default_value_t = 12)]
    #[serde(default = "default_code_length")]
    pub code_length: u32,
    /// A last day (UTC, YYYY-MM-DD): the vouchers are refused after it.
    #[arg(long = "expires-on")]
    #[serde(default)]
    pub expires_on: Option<String>,
    /// Makes the batch gift cards with this design name (what the customer is told when the
    /// card is redeemed).
    #[arg(long)]
    #[serde(default)]
    pub design: Option<String>,
}

fn default_currency() -> String {
    "USD".into()
}

fn default_code_length() -> u32 {
    12
}

impl VoucherOrder {
    fn spec(&self) -> Result<VoucherBatchSpec, AdminError> {
        if self.count == 0 || self.count > VOUCHER_BATCH_LIMIT {
            return Err(AdminError::BadRequest(format!(
                "count must be 1..={VOUCHER_BATCH_LIMIT}"
            )));
        }
        let value_micros = parse_micros(&self.value)
            .map_err(|error| AdminError::BadRequest(format!("value: {error}")))?;
        let expires_at_ms = match self.expires_on.as_deref() {
            Some(day) => Some(
                end_of_day_ms(day).map_err(|error| AdminError::BadRequest(error.to_string()))?,
            ),
            None => None,
        };
        Ok(VoucherBatchSpec {
            name: self.name.clone(),
            count: self.count,
            code_length: self.code_length,
            value_micros,
            currency: self.currency.clone(),
            expires_at_ms,
            design: self
                .design
                .as_deref()
                .map(str::trim)
                .filter(|design| !design.is_empty())
                .map(str::to_owned),
        })
    }

    pub(crate) async fn generate(&self, store: &Store) -> Result<VoucherBatch, AdminError> {
        Ok(store
            .generate_vouchers(&self.spec()?, wall_clock_ms())
            .await?)
    }
}

pub async fn run(command: VouchersCommand) -> anyhow::Result<()> {
    match command {
        VouchersCommand::Generate {
            ledger,
            order,
            output,
        } => {
            let store = ledger.open().await?;
            let batch = order.generate(&store).await?;
            // The only time these codes can be read.
            if output == "-" {
                batch.write_csv(std::io::stdout().lock())?;
            } else {
                batch.write_csv(create_secret_file(Path::new(&output))?)?;
            }
            eprintln!(
                "voucher batch {} ({}): {} vouchers written",
                batch.id,
                batch.name,
                batch.codes.len()
            );
        }
        VouchersCommand::List { ledger, batch } => {
            let store = ledger.open().await?;
            let rows: Vec<VoucherView> = store
                .vouchers_of_batch(batch)
                .await?
                .into_iter()
                .map(VoucherView::from)
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        VouchersCommand::Disable { ledger, voucher } => {
            let store = ledger.open().await?;
            if !store.disable_voucher(voucher).await? {
                anyhow::bail!("voucher {voucher} does not exist or was already used");
            }
            eprintln!("voucher {voucher} disabled");
        }
    }
    Ok(())
}

/// One voucher as listed (never its code).
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherView {
    pub id: i64,
    pub batch_id: i64,
    /// Decimal text.
    pub value: String,
    pub currency: String,
    /// `active` or `disabled`.
    pub status: String,
    pub expires_at_ms: Option<i64>,
    pub used_at_ms: Option<i64>,
    pub used_by_account_id: Option<i64>,
    pub used_call_id: Option<String>,
}

impl From<VoucherRow> for VoucherView {
    fn from(row: VoucherRow) -> Self {
        VoucherView {
            id: row.id,
            batch_id: row.batch_id,
            value: talktime_store::format_micros(row.value_micros),
            currency: row.currency,
            status: row.status,
            expires_at_ms: row.expires_at_ms,
            used_at_ms: row.used_at_ms,
            used_by_account_id: row.used_by_account_id,
            used_call_id: row.used_call_id,
        }
    }
}

/// A new batch: its vouchers with their codes, the only time they can be read.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherBatchCreated {
    pub batch_id: i64,
    pub name: String,
    pub value: String,
    pub currency: String,
    pub vouchers: Vec<NewVoucher>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewVoucher {
    pub id: i64,
    pub code: String,
}

/// Generates a batch of vouchers; the answer holds their codes (keep it safe).
#[utoipa::path(post, path = "/api/vouchers/batches", tag = "vouchers",
    request_body = VoucherOrder,
    responses((status = 200, body = VoucherBatchCreated), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_batch(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    Json(order): Json<VoucherOrder>,
) -> Result<Json<VoucherBatchCreated>, AdminError> {
    let batch = order.generate(&state.store).await?;
    let summary = serde_json::json!({
        "count": batch.codes.len(), "value": order.value, "currency": batch.currency,
    });
    audit(
        &state,
        &caller,
        "vouchers.generate",
        &format!("voucher batch {}", batch.id),
        summary,
    )
    .await?;
    Ok(Json(VoucherBatchCreated {
        batch_id: batch.id,
        name: batch.name.clone(),
        value: talktime_store::format_micros(batch.value_micros),
        currency: batch.currency.clone(),
        vouchers: batch
            .voucher_ids
            .iter()
            .zip(&batch.codes)
            .map(|(id, code)| NewVoucher {
                id: *id,
                code: code.expose().clone(),
            })
            .collect(),
    }))
}

/// A batch's vouchers and their state (never the codes).
#[utoipa::path(get, path = "/api/vouchers/batches/{id}", tag = "vouchers",
    params(("id" = i64, Path, description = "Voucher batch id")),
    responses((status = 200, body = Vec<VoucherView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn batch(
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Json<Vec<VoucherView>>, AdminError> {
    let rows = state.store.vouchers_of_batch(id).await?;
    Ok(Json(rows.into_iter().map(VoucherView::from).collect()))
}

/// Disables an unused voucher; 404 when there is none or it was used.
#[utoipa::path(post, path = "/api/vouchers/{id}/disable", tag = "vouchers",
    params(("id" = i64, Path, description = "Voucher id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn disable(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(id): UrlPath<i64>,
) -> Result<axum::http::StatusCode, AdminError> {
    if !state.store.disable_voucher(id).await? {
        return Err(AdminError::NotFound(format!(
            "voucher {id} does not exist or was already used"
        )));
    }
    audit(
        &state,
        &caller,
        "vouchers.disable",
        &format!("voucher {id}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoucherCode {
    /// The code as printed.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoucherRedeemed {
    pub voucher_id: i64,
    /// What the voucher added, decimal text.
    pub amount: String,
    /// The account's balance after it, decimal text.
    pub balance: String,
}

/// Adds a voucher's value to an account, once (a shop or a help desk entering the code the
/// customer reads out). 409 when it was used, 404 when no voucher has the code, 422 when it
/// expired, was disabled or is in another currency, 400 for a disposable card.
#[utoipa::path(post, path = "/api/accounts/{id}/recharge/voucher", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    request_body = VoucherCode,
    responses((status = 200, body = VoucherRedeemed), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn redeem(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath(id): UrlPath<i64>,
    Json(request): Json<VoucherCode>,
) -> Result<Json<VoucherRedeemed>, AdminError> {
    use talktime_store::Redemption;
    let code = Pii::new(request.code.trim().to_owned());
    let reference = format!("api:{}", caller.0);
    let redeemed = state
        .store
        .redeem_voucher(id, &code, Some(&reference), wall_clock_ms())
        .await?;
    match redeemed {
        Redemption::Credited {
            voucher_id,
            amount_micros,
            balance_micros,
        } => {
            let subject = format!("account {id}");
            let after = serde_json::json!({ "voucher": voucher_id });
            audit(&state, &caller, "vouchers.redeem", &subject, after).await?;
            Ok(Json(VoucherRedeemed {
                voucher_id,
                amount: talktime_store::format_micros(amount_micros),
                balance: talktime_store::format_micros(balance_micros),
            }))
        }
        Redemption::Unknown => Err(AdminError::NotFound("no voucher has this code".into())),
        Redemption::AlreadyUsed => {
            Err(AdminError::Conflict("this voucher was already used".into()))
        }
        Redemption::Expired => Err(AdminError::Unprocessable(
            "this voucher expired or was disabled".into(),
        )),
        Redemption::WrongCurrency => Err(AdminError::Unprocessable(
            "this voucher is in another currency than the account".into(),
        )),
        Redemption::NotRefillable => Err(AdminError::BadRequest(
            "a disposable card is never recharged".into(),
        )),
    }
}

// ----- speed dials -----

/// An account's speed dials: key (1-9) and number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpeedDial {
    pub key: u8,
    pub number: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeedDialNumber {
    /// The number as the caller would dial it (00 or + international, or national digits).
    pub number: String,
}

/// The number as the IVR would read it, or why it is not one.
fn destination(number: &str) -> Result<Pii<String>, AdminError> {
    talktime_engine::normalize_destination(number)
        .map(Pii::new)
        .map_err(|error| AdminError::BadRequest(format!("number: {error}")))
}

fn slot(key: u8) -> Result<u8, AdminError> {
    if talktime_store::SPEED_DIAL_SLOTS.contains(&key) {
        Ok(key)
    } else {
        Err(AdminError::BadRequest(format!(
            "speed dial key {key} is outside 1-9"
        )))
    }
}

/// The account's speed dials.
#[utoipa::path(get, path = "/api/accounts/{id}/speed_dials", tag = "accounts",
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = Vec<SpeedDial>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn speed_dials(
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<i64>,
) -> Result<Json<Vec<SpeedDial>>, AdminError> {
    state.store.account(id).await?;
    let dials = state.store.speed_dials(id).await?;
    Ok(Json(
        dials
            .into_iter()
            .map(|(key, number)| SpeedDial {
                key,
                number: number.expose().clone(),
            })
            .collect(),
    ))
}

/// Stores a number under a key (replacing what was there).
#[utoipa::path(put, path = "/api/accounts/{id}/speed_dials/{key}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id"),
        ("key" = u8, Path, description = "The key, 1-9")),
    request_body = SpeedDialNumber,
    responses((status = 200, body = SpeedDial), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn put_speed_dial(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath((id, key)): UrlPath<(i64, u8)>,
    Json(request): Json<SpeedDialNumber>,
) -> Result<Json<SpeedDial>, AdminError> {
    let key = slot(key)?;
    let number = destination(&request.number)?;
    state
        .store
        .set_speed_dial(id, key, &number, wall_clock_ms())
        .await?;
    audit(
        &state,
        &caller,
        "speed_dial.set",
        &format!("account {id} key {key}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(SpeedDial {
        key,
        number: number.expose().clone(),
    }))
}

/// Removes a key's number; 404 when it held none.
#[utoipa::path(delete, path = "/api/accounts/{id}/speed_dials/{key}", tag = "accounts",
    params(("id" = i64, Path, description = "Account id"),
        ("key" = u8, Path, description = "The key, 1-9")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_speed_dial(
    State(state): State<AdminState>,
    Extension(caller): Extension<ApiCaller>,
    UrlPath((id, key)): UrlPath<(i64, u8)>,
) -> Result<axum::http::StatusCode, AdminError> {
    let key = slot(key)?;
    if !state.store.remove_speed_dial(id, key).await? {
        return Err(AdminError::NotFound(format!(
            "account {id} has no speed dial {key}"
        )));
    }
    audit(
        &state,
        &caller,
        "speed_dial.remove",
        &format!("account {id} key {key}"),
        serde_json::json!({}),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The API caller's change, in the audit log.
pub(crate) async fn audit(
    state: &AdminState,
    caller: &ApiCaller,
    action: &str,
    subject: &str,
    after: serde_json::Value,
) -> Result<(), AdminError> {
    state
        .store
        .audit_api(
            &caller.0,
            action,
            subject,
            Some(&after.to_string()),
            wall_clock_ms(),
        )
        .await?;
    Ok(())
}

/// `talktime accounts speed-dial`: set, remove or list an account's speed dials.
pub async fn speed_dial_command(
    account: &AccountArgs,
    key: Option<u8>,
    number: Option<&str>,
    remove: bool,
) -> anyhow::Result<()> {
    let (store, id) = account.resolve().await?;
    match (key, number, remove) {
        (Some(key), _, true) => {
            if !store.remove_speed_dial(id, key).await? {
                anyhow::bail!("account {id} has no speed dial {key}");
            }
            eprintln!("speed dial {key} removed");
        }
        (Some(key), Some(number), false) => {
            let number = destination(number).map_err(|error| anyhow::anyhow!("{error}"))?;
            store
                .set_speed_dial(id, key, &number, wall_clock_ms())
                .await?;
            eprintln!("speed dial {key} stored");
        }
        (None, None, false) => {
            for (key, number) in store.speed_dials(id).await? {
                println!("{key}\t{}", number.expose());
            }
        }
        _ => anyhow::bail!(
            "give KEY and NUMBER to store, KEY --remove to remove, or nothing to list"
        ),
    }
    Ok(())
}
