//! Resellers on the console (issue 16). Operators list and add resellers and open any; a
//! reseller's own user (role `reseller`) sees only its tree, under its own name (white label):
//! its balance, its statement, and two forms, registering a pinless customer by phone number
//! and recharging a customer from its credit (once per form shown, however often it is sent).

use std::fmt::Write as _;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use talktime_store::{
    DEFAULT_MAX_RESELLER_DEPTH, NewReseller, Reseller, Role, format_micros, parse_micros,
};

use super::{ConsoleError, ConsoleState, LoggedIn, escape};
use crate::server::wall_clock_ms;

/// The reseller a reseller's user sees from; `None` for the operator's users.
fn root_of(user: &LoggedIn) -> Result<Option<i64>, ConsoleError> {
    match (user.user.role, user.user.reseller_id) {
        (Role::Reseller, Some(root)) => Ok(Some(root)),
        (Role::Reseller, None) => Err(ConsoleError::NotFound),
        _ => Ok(None),
    }
}

/// Not found unless the user sees the reseller.
async fn visible(state: &ConsoleState, user: &LoggedIn, id: i64) -> Result<(), ConsoleError> {
    if let Some(root) = root_of(user)?
        && !state.store.reseller_in_tree(id, root).await?
    {
        return Err(ConsoleError::NotFound);
    }
    Ok(())
}

/// The operator's users may change anything; a reseller's user acts within its tree.
fn may_act(user: &LoggedIn) -> bool {
    super::auth::may_change(&user.user) || user.user.role == Role::Reseller
}

fn row(reseller: &Reseller, held: i64) -> String {
    format!(
        "<tr class=\"reseller\"><td><a href=\"/console/resellers/{id}\">{name}</a></td>\
         <td>{depth}</td><td>{parent}</td><td class=\"balance\">{balance} {currency}</td>\
         <td>{limit}</td><td class=\"free\">{free}</td><td>{status}</td></tr>",
        id = reseller.id,
        name = escape(&reseller.name),
        depth = reseller.depth,
        parent = reseller
            .parent_id
            .map_or_else(|| "vendor".to_owned(), |id| id.to_string()),
        balance = format_micros(reseller.balance_micros),
        currency = escape(&reseller.currency),
        limit = format_micros(reseller.credit_limit_micros),
        free = format_micros(crate::resellers::free_micros(reseller, held)),
        status = escape(&reseller.status),
    )
}

/// Every reseller the user sees.
async fn list_html(
    state: &ConsoleState,
    user: &LoggedIn,
    error: Option<&str>,
) -> Result<String, ConsoleError> {
    let root = root_of(user)?;
    let mut body = String::new();
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" id=\"error\">{}</p>",
            escape(error)
        );
    }
    body.push_str(
        "<table id=\"resellers\"><tr><th>Name</th><th>Depth</th><th>Parent</th><th>Balance</th>\
         <th>Credit limit</th><th>Free</th><th>Status</th></tr>",
    );
    for reseller in state.store.resellers_under(root).await? {
        let (held, _) = state.store.reseller_holds(reseller.id).await?;
        body.push_str(&row(&reseller, held));
    }
    body.push_str("</table>");
    if super::auth::may_change(&user.user) {
        let csrf = super::pages::csrf_field(user);
        let _ = write!(
            body,
            "<h2>Add a reseller</h2><form method=\"post\" action=\"/console/resellers\">{csrf}\
             <p><label>Name <input name=\"name\" id=\"reseller-name\" required></label> \
             <label>Parent (name, empty: the vendor) <input name=\"parent\" id=\"reseller-parent\"></label> \
             <label>Currency <input name=\"currency\" value=\"USD\" size=\"4\"></label></p>\
             <p><label>Buys at tariff <input name=\"tariff\" id=\"reseller-tariff\"></label> \
             <label>Sells at tariff <input name=\"sell_tariff\" id=\"reseller-sell-tariff\"></label> \
             <label>Credit limit <input name=\"credit_limit\" value=\"0\" id=\"reseller-credit-limit\"></label></p>\
             <p><button id=\"add-reseller\">Add</button></p></form>"
        );
    }
    Ok(body)
}

pub async fn resellers_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Response, ConsoleError> {
    let body = list_html(&state, &user, None).await?;
    Ok(Html(page(&state, &user, "Resellers", &body).await?).into_response())
}

/// The layout, under the reseller's own name for a reseller's user.
async fn page(
    state: &ConsoleState,
    user: &LoggedIn,
    title: &str,
    body: &str,
) -> Result<String, ConsoleError> {
    match root_of(user)? {
        Some(root) => {
            let brand = state.store.reseller(root).await?.name;
            Ok(super::pages::reseller_page(&brand, title, user, body))
        }
        None => Ok(super::pages::page(title, Some(user), "", body)),
    }
}

#[derive(Deserialize)]
pub struct ResellerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    tariff: String,
    #[serde(default)]
    sell_tariff: String,
    #[serde(default)]
    credit_limit: String,
}

async fn tariff_named(state: &ConsoleState, name: &str) -> Result<Option<i64>, String> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    match state.store.tariff_by_name(name).await {
        Ok(Some(tariff)) => Ok(Some(tariff.id)),
        Ok(None) => Err(format!("No tariff named {name}.")),
        Err(error) => Err(error.to_string()),
    }
}

async fn new_reseller(state: &ConsoleState, form: &ResellerForm) -> Result<NewReseller, String> {
    let parent_id = match form.parent.trim() {
        "" => None,
        parent => Some(
            crate::resellers::find(&state.store, parent)
                .await
                .map_err(|error| error.to_string())?
                .id,
        ),
    };
    let credit_limit = match form.credit_limit.trim() {
        "" => 0,
        text => parse_micros(text).map_err(|error| format!("Credit limit: {error}"))?,
    };
    Ok(NewReseller {
        name: form.name.trim().to_owned(),
        parent_id,
        currency: form.currency.trim().to_ascii_uppercase(),
        tariff_id: tariff_named(state, &form.tariff).await?,
        credit_limit_micros: credit_limit,
        concurrency_limit: 0,
        max_depth: DEFAULT_MAX_RESELLER_DEPTH,
        sell_tariff_id: tariff_named(state, &form.sell_tariff).await?,
        min_margin_percent: 0,
    })
}

pub async fn add_reseller(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    Form(form): Form<ResellerForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    user.require_change("Your role may not add resellers.")?;
    let added = match new_reseller(&state, &form).await {
        Ok(new) => state
            .store
            .add_reseller(&new, wall_clock_ms())
            .await
            .map_err(|error| match error {
                talktime_store::StoreError::InvalidArgument(text) => Ok(text),
                other => Err(other),
            }),
        Err(text) => Err(Ok(text)),
    };
    match added {
        Ok(added) => {
            state
                .store
                .audit(
                    Some(&user.user),
                    "reseller_add",
                    &format!("reseller {}", added.id),
                    None,
                    Some(&serde_json::json!({ "name": added.name }).to_string()),
                    wall_clock_ms(),
                )
                .await?;
            Ok(Redirect::to(&format!("/console/resellers/{}", added.id)).into_response())
        }
        Err(Ok(text)) => {
            let body = list_html(&state, &user, Some(&text)).await?;
            let html = page(&state, &user, "Resellers", &body).await?;
            Ok((StatusCode::BAD_REQUEST, Html(html)).into_response())
        }
        Err(Err(error)) => Err(error.into()),
    }
}

async fn reseller_html(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    outcome: Option<(&str, &str)>,
) -> Result<String, ConsoleError> {
    let reseller = state.store.reseller(id).await?;
    let (held, calls) = state.store.reseller_holds(id).await?;
    let mut body = format!(
        "<p>Balance <strong id=\"reseller-balance\">{} {}</strong>, credit limit {}, \
         free <span id=\"reseller-free\">{}</span>, held {} by {calls} calls up, depth {}.</p>",
        format_micros(reseller.balance_micros),
        escape(&reseller.currency),
        format_micros(reseller.credit_limit_micros),
        format_micros(crate::resellers::free_micros(&reseller, held)),
        format_micros(held),
        reseller.depth,
    );
    match outcome {
        Some(("error", text)) => {
            let _ = write!(body, "<p class=\"error\" id=\"error\">{}</p>", escape(text));
        }
        Some((_, text)) => {
            let _ = write!(
                body,
                "<p class=\"notice\" id=\"notice\">{}</p>",
                escape(text)
            );
        }
        None => {}
    }
    if may_act(user) {
        let csrf = super::pages::csrf_field(user);
        // A fresh key for a form that moves money: sent twice, it moves once.
        let key = super::auth::random_hex(12);
        let _ = write!(
            body,
            "<h2>Pinless customers</h2>\
             <form method=\"post\" action=\"/console/resellers/{id}/customers\">{csrf}\
             <p><label>Phone number <input name=\"number\" id=\"customer-number\"></label> \
             <button id=\"add-customer\">Register</button></p></form>\
             <form method=\"post\" action=\"/console/resellers/{id}/transfers\">{csrf}\
             <input type=\"hidden\" name=\"key\" value=\"{key}\">\
             <p><label>Customer's number <input name=\"number\" id=\"transfer-number\"></label> \
             <label>Amount <input name=\"amount\" id=\"transfer-amount\"></label> \
             <button id=\"transfer\">Recharge from my credit</button></p></form>"
        );
    }
    calls_html(state, user, id, &mut body).await?;
    body.push_str(
        "<h2>Statement</h2><table id=\"statement\"><tr><th>Call</th><th>Level</th>\
         <th>Account</th><th>State</th><th>Sold</th><th>Bought</th><th>Commission</th></tr>",
    );
    let amount = |value: Option<i64>| value.map_or_else(|| "-".to_owned(), format_micros);
    for line in state.store.reseller_statement(id, 100).await? {
        let _ = write!(
            body,
            "<tr class=\"line\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"sold\">{}</td><td class=\"bought\">{}</td>\
             <td class=\"commission\">{}</td></tr>",
            escape(&line.call_id),
            line.depth,
            line.customer_account_id,
            escape(&line.state),
            amount(line.sold_micros),
            amount(line.bought_micros),
            amount(line.commission_micros),
        );
    }
    body.push_str("</table>");
    page(state, user, &format!("Reseller {}", reseller.name), &body).await
}

pub async fn reseller_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
) -> Result<Response, ConsoleError> {
    visible(&state, &user, id).await?;
    Ok(Html(reseller_html(&state, &user, id, None).await?).into_response())
}

#[derive(Deserialize)]
pub struct CustomerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
}

async fn answer(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    outcome: Result<String, String>,
) -> Result<Response, ConsoleError> {
    let (status, outcome) = match &outcome {
        Ok(text) => (StatusCode::OK, ("notice", text.as_str())),
        Err(text) => (StatusCode::BAD_REQUEST, ("error", text.as_str())),
    };
    let html = reseller_html(state, user, id, Some(outcome)).await?;
    Ok((status, Html(html)).into_response())
}

pub async fn add_customer(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<CustomerForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    visible(&state, &user, id).await?;
    if !may_act(&user) {
        return Err(ConsoleError::Forbidden("Your role may not add customers."));
    }
    let Some(number) = crate::resellers::customer_number(&form.number) else {
        return answer(&state, &user, id, Err("A number is 6-20 digits.".into())).await;
    };
    let name = crate::resellers::pinless_name(&number);
    let outcome = match state
        .store
        .add_pinless_customer(id, &name, &number, wall_clock_ms())
        .await
    {
        Ok(account) => {
            state
                .store
                .audit(
                    Some(&user.user),
                    "reseller_customer_add",
                    &format!("reseller {id}"),
                    None,
                    Some(&serde_json::json!({ "account_id": account }).to_string()),
                    wall_clock_ms(),
                )
                .await?;
            Ok(format!("Customer registered: account {account}."))
        }
        Err(talktime_store::StoreError::InvalidArgument(text)) => Err(text),
        Err(error) => return Err(error.into()),
    };
    answer(&state, &user, id, outcome).await
}

#[derive(Deserialize)]
pub struct TransferForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    amount: String,
}

pub async fn transfer(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath(id): UrlPath<i64>,
    Form(form): Form<TransferForm>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    visible(&state, &user, id).await?;
    if !may_act(&user) {
        return Err(ConsoleError::Forbidden(
            "Your role may not recharge customers.",
        ));
    }
    let amount = match parse_micros(form.amount.trim()) {
        Ok(amount) if amount > 0 => amount,
        _ => return answer(&state, &user, id, Err("Amount: a sum above zero.".into())).await,
    };
    let customer = match crate::resellers::customer_number(&form.number) {
        Some(number) => state.store.customer_by_number(id, &number).await?,
        None => None,
    };
    let Some(account) = customer else {
        let text = "No customer of yours has that number.".to_owned();
        return answer(&state, &user, id, Err(text)).await;
    };
    let key = format!("console:{}", form.key.trim());
    let outcome = match state
        .store
        .transfer_to_customer(id, account, amount, &key, wall_clock_ms())
        .await
    {
        Ok(moved) => {
            if !moved.replayed {
                state
                    .store
                    .audit(
                        Some(&user.user),
                        "reseller_transfer",
                        &format!("reseller {id}"),
                        None,
                        Some(
                            &serde_json::json!({ "account_id": account, "amount": form.amount })
                                .to_string(),
                        ),
                        wall_clock_ms(),
                    )
                    .await?;
            }
            Ok(format!(
                "Account {account} recharged: its balance is {}.",
                format_micros(moved.customer_balance_micros)
            ))
        }
        Err(talktime_store::StoreError::Refused(_)) => Err("Your free credit is short.".into()),
        Err(talktime_store::StoreError::InvalidArgument(text)) => Err(text),
        Err(error) => return Err(error.into()),
    };
    answer(&state, &user, id, outcome).await
}

/// The calls up now of the tree's customers, each with a hang-up button.
async fn calls_html(
    state: &ConsoleState,
    user: &LoggedIn,
    id: i64,
    body: &mut String,
) -> Result<(), ConsoleError> {
    body.push_str(
        "<h2>Calls up now</h2><table id=\"live-calls\"><tr><th>Account</th><th>Destination</th>\
         <th>Phase</th><th></th></tr>",
    );
    let csrf = super::pages::csrf_field(user);
    for call in tree_calls(state, id).await? {
        let button = if may_act(user) {
            format!(
                "<form class=\"inline\" method=\"post\" \
                 action=\"/console/resellers/{id}/calls/{}/hangup\">{csrf}\
                 <button class=\"hangup\">Hang up</button></form>",
                call.key
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr class=\"live-call\"><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            call.account.unwrap_or_default(),
            escape(&call.destination.clone().unwrap_or_default()),
            escape(&call.phase),
        );
    }
    body.push_str("</table>");
    Ok(())
}

/// Live calls whose paying account is in the tree of reseller `id`.
async fn tree_calls(
    state: &ConsoleState,
    id: i64,
) -> Result<Vec<talktime_b2bua::monitor::LiveCall>, ConsoleError> {
    let mut found = Vec::new();
    for call in state.metrics.live_calls() {
        if let Some(account) = call.account
            && state.store.account_in_tree(account, id).await?
        {
            found.push(call);
        }
    }
    Ok(found)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends a call of the tree's customers; another tree's call is not there (404), untouched.
pub async fn hang_up(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    UrlPath((id, key)): UrlPath<(i64, u64)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    user.check_csrf(&form.csrf)?;
    visible(&state, &user, id).await?;
    if !may_act(&user) {
        return Err(ConsoleError::Forbidden("Your role may not end calls."));
    }
    let call = tree_calls(&state, id)
        .await?
        .into_iter()
        .find(|call| call.key == key)
        .ok_or(ConsoleError::NotFound)?;
    super::end_call(&state, &user, &call).await?;
    Ok(Redirect::to(&format!("/console/resellers/{id}")).into_response())
}
