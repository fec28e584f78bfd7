//! Cards in the console: find one by PIN (a keyed-hash probe; the PIN is posted, never put in
//! a URL), see its balance and transactions, block or unblock it, recharge it (idempotent: a
//! form posted twice credits once), and generate a batch (the CSV of its PINs is the answer,
//! the only time they can be read).

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_pii::Pii;
use talktime_store::{CardStatus, parse_micros};

use super::{ConsoleError, ConsoleState, LoggedIn, auth, pages};
use crate::admin::{BatchError, BatchOrder};
use crate::server::wall_clock_ms;

/// Cards per batch from the console (the API's limit).
const BATCH_LIMIT: u32 = 10_000;

pub async fn cards_page(user: LoggedIn) -> Html<String> {
    Html(pages::cards(&user, None))
}

#[derive(Deserialize)]
pub struct FindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pin: String,
}

pub async fn find(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<FindForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let pin = form.pin.trim();
    if pin.is_empty() || !pin.chars().all(|c| c.is_ascii_digit()) {
        let page = pages::cards(&user, Some(("pin", "A PIN is digits.")));
        return Ok((StatusCode::BAD_REQUEST, Html(page)).into_response());
    }
    match state.store.card_by_pin(&Pii::new(pin.to_owned())).await? {
        Some(card) => Ok(Redirect::to(&format!("/console/cards/{}", card.id)).into_response()),
        None => {
            let page = pages::cards(&user, Some(("pin", "No card has this PIN.")));
            Ok((StatusCode::NOT_FOUND, Html(page)).into_response())
        }
    }
}

pub async fn card_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
) -> Result<Html<String>, ConsoleError> {
    card_view(&state, &user, id, None).await.map(Html)
}

async fn card_view(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    error: Option<(&str, &str)>,
) -> Result<String, ConsoleError> {
    let card = match state.store.card(id).await {
        Ok(card) => card,
        Err(talktime_store::StoreError::NotFound { .. }) => return Err(ConsoleError::NotFound),
        Err(error) => return Err(error.into()),
    };
    let account = state.store.account(card.account_id).await?;
    let mut entries = state.store.transactions(card.account_id).await?;
    entries.reverse();
    entries.truncate(50);
    Ok(pages::card(
        user,
        &card,
        &account,
        &entries,
        &auth::random_hex(16),
        error,
    ))
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

pub async fn set_status(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may recharge cards, not block them.")?;
    let status = match form.status.as_str() {
        "blocked" => CardStatus::Blocked,
        "active" => CardStatus::Active,
        _ => return Err(ConsoleError::Forbidden("A card is blocked or active.")),
    };
    let before = state.store.card(id).await?.status;
    state.store.set_card_status(id, status).await?;
    state
        .store
        .audit(
            Some(&user.user),
            "card_status",
            &format!("card {id}"),
            Some(before.as_str()),
            Some(status.as_str()),
            wall_clock_ms(),
        )
        .await?;
    Ok(Redirect::to(&format!("/console/cards/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct RechargeForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) amount: String,
    /// Made when the form was drawn: the same form posted twice credits once.
    #[serde(default)]
    pub(super) key: String,
}

pub async fn recharge(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<RechargeForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    let card = state.store.card(id).await?;
    match apply_recharge(&state, &user, card.account_id, &format!("card {id}"), &form).await? {
        Ok(()) => Ok(Redirect::to(&format!("/console/cards/{id}")).into_response()),
        Err(text) => {
            let page = card_view(&state, &user, id, Some(("amount", &text))).await?;
            Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
        }
    }
}

/// Credits `account_id` once per form key; `Err(text)` names what is wrong with the amount.
pub(super) async fn apply_recharge(
    state: &ConsoleState,
    user: &LoggedIn,
    account_id: i64,
    subject: &str,
    form: &RechargeForm,
) -> Result<Result<(), String>, ConsoleError> {
    let amount = match parse_micros(form.amount.trim()) {
        Ok(amount) if amount > 0 => amount,
        _ => return Ok(Err("An amount such as 10.00.".into())),
    };
    if form.key.len() < 8 || form.key.len() > 64 {
        return Err(ConsoleError::Forbidden(
            "The form is out of date: reload the page.",
        ));
    }
    let before = state.store.account(account_id).await?.balance_micros;
    let outcome = state
        .store
        .recharge_once(
            account_id,
            amount,
            &format!("console:{}", form.key),
            wall_clock_ms(),
        )
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(
            error @ (talktime_store::StoreError::DisposableCard { .. }
            | talktime_store::StoreError::InvalidArgument(_)),
        ) => return Ok(Err(error.to_string())),
        Err(error) => return Err(error.into()),
    };
    if !outcome.replayed {
        state
            .store
            .audit(
                Some(&user.user),
                "recharge",
                subject,
                Some(&talktime_store::format_micros(before)),
                Some(&talktime_store::format_micros(outcome.balance_micros)),
                wall_clock_ms(),
            )
            .await?;
    }
    Ok(Ok(()))
}

#[derive(Deserialize)]
pub struct BatchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    tariff: String,
    #[serde(default)]
    pin_length: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    disposable: Option<String>,
    /// `csv` (the default) or `xlsx`.
    #[serde(default)]
    format: String,
    #[serde(default)]
    expire_days: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    activation_fee: String,
    #[serde(default)]
    caller_id_min_balance: String,
    #[serde(default)]
    concurrency_limit: String,
    #[serde(default)]
    maintenance_fee: String,
    #[serde(default)]
    maintenance_every: String,
    #[serde(default)]
    package_seconds: String,
    #[serde(default)]
    package_prefixes: String,
    #[serde(default)]
    package_every: String,
}

/// An optional text field: `None` when empty.
fn optional_text(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}

pub async fn generate_batch(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<BatchForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not make cards.")?;
    let refuse = |field: &'static str, text: String| {
        let page = pages::cards(&user, Some((field, &text)));
        Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
    };
    let count = match form.count.trim().parse::<u32>() {
        Ok(count) if (1..=BATCH_LIMIT).contains(&count) => count,
        _ => return refuse("count", format!("1 to {BATCH_LIMIT} cards")),
    };
    if form.name.trim().is_empty() {
        return refuse("name", "A batch needs a name.".into());
    }
    let pin_length = match form.pin_length.trim() {
        "" => 10,
        text => match text.parse::<u32>() {
            Ok(length) => length,
            Err(_) => return refuse("pin_length", "Digits per PIN, e.g. 10.".into()),
        },
    };
    let number = |text: &str, field: &'static str| -> Result<Option<i64>, (&'static str, String)> {
        match text.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .ok()
                .filter(|value| *value > 0)
                .map(Some)
                .ok_or((field, format!("{text:?} is not a whole number above 0"))),
        }
    };
    let (expire_days, concurrency_limit, package_seconds) = match (
        number(&form.expire_days, "expire_days"),
        number(&form.concurrency_limit, "concurrency_limit"),
        number(&form.package_seconds, "package_seconds"),
    ) {
        (Ok(days), Ok(limit), Ok(seconds)) => (days, limit, seconds),
        (Err((field, text)), _, _) | (_, Err((field, text)), _) | (_, _, Err((field, text))) => {
            return refuse(field, text);
        }
    };
    let order = BatchOrder {
        name: form.name.trim().to_owned(),
        count,
        pin_length,
        value: form.value.trim().to_owned(),
        currency: Some(form.currency.trim().to_owned())
            .filter(|code| !code.is_empty())
            .unwrap_or_else(|| "USD".to_owned()),
        tariff: Some(form.tariff.trim().to_owned()).filter(|name| !name.is_empty()),
        disposable: form.disposable.is_some(),
        expire_days,
        expires_on: optional_text(&form.expires_on),
        activation_fee: optional_text(&form.activation_fee),
        owner_account: None,
        reseller: None,
        caller_id_min_balance: optional_text(&form.caller_id_min_balance),
        concurrency_limit,
        plan: crate::admin::PlanArgs {
            maintenance_fee: optional_text(&form.maintenance_fee),
            maintenance_every: optional_text(&form.maintenance_every),
            package_seconds,
            package_prefixes: optional_text(&form.package_prefixes),
            package_every: optional_text(&form.package_every),
        },
    };
    if order.plan.maintenance_fee.is_some() != order.plan.maintenance_every.is_some() {
        return refuse(
            "maintenance_every",
            "A maintenance fee needs its period (30d) and a period its fee.".into(),
        );
    }
    if order.plan.package_seconds.is_some() != order.plan.package_prefixes.is_some() {
        return refuse(
            "package_prefixes",
            "Free seconds need the prefixes they cover (1,44) and prefixes their seconds.".into(),
        );
    }
    let batch = match order.generate(&state.store, wall_clock_ms()).await {
        Ok(batch) => batch,
        Err(BatchError::Store(error)) => return Err(error.into()),
        Err(error @ BatchError::UnknownTariff(_)) => return refuse("tariff", error.to_string()),
        Err(error) => return refuse(batch_error_field(&error), error.to_string()),
    };
    let mut csv = Vec::new();
    state.store.export_batch_csv(&batch, &mut csv).await?;
    state
        .store
        .audit(
            Some(&user.user),
            "batch_generate",
            &format!("batch {} ({})", batch.id, batch.name),
            None,
            Some(&format!("{} cards", batch.card_count)),
            wall_clock_ms(),
        )
        .await?;
    let (content_type, file, body) =
        crate::xlsx::batch_download(batch.id, csv, form.format == "xlsx")
            .map_err(|error| ConsoleError::Internal(error.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// The form field a refused batch is about (the error names the option).
fn batch_error_field(error: &BatchError) -> &'static str {
    let text = error.to_string();
    let fields = [
        ("expires", "expires_on"),
        ("activation", "activation_fee"),
        ("caller-id", "caller_id_min_balance"),
        ("caller ID", "caller_id_min_balance"),
        ("maintenance-every", "maintenance_every"),
        ("maintenance", "maintenance_fee"),
        ("package-every", "package_every"),
        ("package-prefixes", "package_prefixes"),
        ("package", "package_seconds"),
        ("currency", "currency"),
    ];
    fields
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .map_or("value", |(_, field)| field)
}
