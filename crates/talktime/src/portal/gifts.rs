//! Gift cards in the portal: a customer buys one from their credit in a design the operator
//! offers (`[portal] gift_card_designs`) and gives its code to anyone, who redeems it like any
//! voucher (the portal's recharge, or the IVR). Shops sell printed ones: voucher batches with a
//! design (`talktime vouchers generate --design`).

use std::fmt::Write;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use talktime_store::{GiftCardPurchase, format_micros, parse_micros};

use super::{Customer, PortalError, PortalState, home_page};
use crate::console::{auth, escape};
use crate::server::wall_clock_ms;

#[derive(Deserialize)]
pub(super) struct GiftForm {
    #[serde(default)]
    csrf: String,
    key: String,
    design: String,
    value: String,
}

pub(super) async fn buy(
    State(state): State<PortalState>,
    customer: Customer,
    Form(form): Form<GiftForm>,
) -> Result<Response, PortalError> {
    customer.check_csrf(&form.csrf)?;
    let design = form.design.trim();
    let offered = state
        .settings
        .gift_card_designs
        .iter()
        .any(|offer| offer == design);
    let value = parse_micros(form.value.trim())
        .ok()
        .filter(|value| *value > 0);
    let (Some(value), true, false) = (value, offered, form.key.is_empty() || form.key.len() > 64)
    else {
        return answer(
            &state,
            &customer,
            StatusCode::BAD_REQUEST,
            "Choose a design and a value.",
            None,
        )
        .await;
    };
    let key = format!("{}:{}", customer.session.account_id, form.key);
    let outcome = state
        .store
        .buy_gift_card(
            customer.session.account_id,
            value,
            design,
            &key,
            wall_clock_ms(),
        )
        .await;
    match outcome {
        Ok(GiftCardPurchase::Bought { code, .. }) => {
            // Shown once: the ledger keeps only the code's hash.
            let card = format!(
                "<section id=\"gift-card\" class=\"gift\"><h2>{}</h2><p>A gift of \
                 <strong>{}</strong></p><p>Code <strong id=\"gift-code\">{}</strong></p>\
                 <p>Recharge at the portal or key it after *0 on a call. Keep it safe: it is \
                 shown only now.</p></section>",
                escape(design),
                format_micros(value),
                escape(code.expose()),
            );
            answer(
                &state,
                &customer,
                StatusCode::OK,
                "Your gift card:",
                Some(&card),
            )
            .await
        }
        Ok(GiftCardPurchase::Replayed) => {
            answer(&state, &customer, StatusCode::OK, "Done already.", None).await
        }
        Ok(GiftCardPurchase::NotEnoughCredit { free_micros }) => {
            let notice = format!(
                "Your free credit is {}: not enough for this gift card.",
                format_micros(free_micros)
            );
            answer(&state, &customer, StatusCode::BAD_REQUEST, &notice, None).await
        }
        Err(talktime_store::StoreError::InvalidArgument(reason)) => {
            answer(&state, &customer, StatusCode::BAD_REQUEST, &reason, None).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn answer(
    state: &PortalState,
    customer: &Customer,
    status: StatusCode,
    notice: &str,
    card: Option<&str>,
) -> Result<Response, PortalError> {
    let mut body = home_page(state, customer, Some(notice)).await?;
    if let Some(card) = card {
        // Right after the notice, at the top of the page.
        let at = body.find("</p>").map_or(0, |end| end + 4);
        body.insert_str(at, card);
    }
    Ok((status, Html(body)).into_response())
}

/// The home page's section: the form to buy one, when designs are offered.
pub(super) fn section(state: &PortalState, customer: &Customer) -> String {
    let designs = &state.settings.gift_card_designs;
    if designs.is_empty() {
        return String::new();
    }
    let mut options = String::new();
    for design in designs {
        let _ = write!(options, "<option>{}</option>", escape(design));
    }
    format!(
        "<h2>Give a gift card</h2><form method=\"post\" action=\"/portal/gifts\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"key\" \
         value=\"{}\"><label>Design <select name=\"design\" id=\"gift-design\">{options}\
         </select></label> <label>Value <input name=\"value\" id=\"gift-value\" \
         inputmode=\"decimal\" required></label> <button id=\"buy-gift\">Buy from my credit\
         </button></form>",
        escape(&customer.session.csrf_token),
        auth::random_hex(12),
    )
}
