//! The console's HTML: one layout, a few tables and forms, every text escaped. No script: the
//! live calls page refreshes itself with a meta refresh, forms post with their CSRF token.

use std::fmt::Write;

use talktime_b2bua::monitor::LiveCall;
use talktime_store::{AuditEntry, User};

use super::LoggedIn;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
header{background:#17324d;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center;\
flex-wrap:wrap}header a{color:#fff}main{padding:1em}table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;font-size:.95em}\
.card{display:inline-block;border:1px solid #ccc;border-radius:6px;padding:.8em 1.2em;margin:.3em}\
.big{font-size:2em}.error{color:#a00}form.inline{display:inline}\
@media(max-width:600px){th,td{font-size:.8em;padding:.2em}}";

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

pub(super) fn page(title: &str, user: Option<&LoggedIn>, head_extra: &str, body: &str) -> String {
    let mut nav = String::new();
    if let Some(user) = user {
        let _ = write!(
            nav,
            "<a href=\"/console\">Dashboard</a><a href=\"/console/calls\">Live calls</a>\
             <a href=\"/console/cards\">Cards</a><a href=\"/console/vouchers\">Vouchers</a>\
             <a href=\"/console/tariffs\">Tariffs</a><a href=\"/console/resellers\">Resellers</a>\
             <a href=\"/console/carriers\">Carriers</a><a href=\"/console/dial-plans\">Dial plans</a>\
             <a href=\"/console/prompts\">Prompts</a>\
             <a href=\"/console/cdrs\">CDRs</a><a href=\"/console/reports\">Reports</a>\
             <a href=\"/console/tickets\">Tickets</a>\
             <a href=\"/console/coupons\">Coupons</a><a href=\"/console/messages\">News</a>\
             <a href=\"/console/users\">Users</a><span>{} ({})</span>\
             <form class=\"inline\" method=\"post\" action=\"/console/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button id=\"logout\">Log out</button></form>",
            escape(&user.user.name),
            user.user.role.as_str(),
            escape(&user.csrf_token)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{head_extra}\
         <title>{title} · Talktime</title><style>{STYLE}</style></head><body><header>\
         <strong>Talktime</strong>{nav}</header><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    )
}

/// A page a reseller's user sees: under the reseller's own name (white label), with only its
/// own pages in the menu.
pub(super) fn reseller_page(brand: &str, title: &str, user: &LoggedIn, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {brand}</title><style>{STYLE}</style></head><body><header>\
         <strong id=\"brand\">{brand}</strong><a href=\"/console/resellers\">Resellers</a>\
         <a href=\"/console/tickets\">Tickets</a>\
         <span>{name} (reseller)</span>\
         <form class=\"inline\" method=\"post\" action=\"/console/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"logout\">Log out</button></form></header><main><h1>{title}</h1>{body}\
         </main></body></html>",
        title = escape(title),
        brand = escape(brand),
        name = escape(&user.user.name),
        csrf = escape(&user.csrf_token),
    )
}

/// A page with a title and one sentence (errors).
pub fn message(title: &str, text: &str) -> String {
    page(title, None, "", &format!("<p>{}</p>", escape(text)))
}

pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|text| format!("<p class=\"error\" id=\"error\">{}</p>", escape(text)))
        .unwrap_or_default();
    page(
        "Log in",
        None,
        "",
        &format!(
            "{error}<form method=\"post\" action=\"/console/login\">\
             <p><label>User <input name=\"name\" id=\"name\" autocomplete=\"username\" required></label></p>\
             <p><label>Password <input name=\"password\" id=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required></label></p>\
             <p><button id=\"login\">Log in</button></p></form>"
        ),
    )
}

/// The switch's gauges, which the core publishes whether or not anyone looks, and the
/// figures of the CDRs: the last hour's ASR and ACD, today's revenue and margin, and calls
/// per hour over the last day as bars. It refreshes itself every 10 s.
pub fn dashboard(
    user: &LoggedIn,
    gauges: talktime_b2bua::counters::Gauges,
    figures: &super::DashboardFigures,
) -> String {
    let optional = |value: Option<rust_decimal::Decimal>| {
        value
            .map(|value| value.normalize().to_string())
            .unwrap_or_else(|| "-".to_owned())
    };
    let rate = figures.calls_per_second_hundredths;
    let mut body = format!(
        "<div class=\"card\">Calls up<div class=\"big\" id=\"calls-up\">{}</div></div>\
         <div class=\"card\">Past the IVR<div class=\"big\" id=\"talking\">{}</div></div>\
         <div class=\"card\">In the IVR<div class=\"big\">{}</div></div>\
         <div class=\"card\">Calls/s (last minute)<div class=\"big\" id=\"calls-per-second\">\
         {}.{:02}</div></div>\
         <div class=\"card\">ASR, last hour<div class=\"big\" id=\"asr\">{}%</div></div>\
         <div class=\"card\">ACD, last hour<div class=\"big\" id=\"acd\">{} s</div></div>\
         <div class=\"card\">Revenue today<div class=\"big\" id=\"revenue\">{}</div></div>\
         <div class=\"card\">Margin today<div class=\"big\" id=\"margin\">{}</div></div>",
        gauges.calls_up,
        gauges.calls_up.saturating_sub(gauges.ivr_sessions),
        gauges.ivr_sessions,
        rate / 100,
        rate % 100,
        optional(figures.last_hour.asr_percent()),
        optional(figures.last_hour.acd_seconds()),
        talktime_store::format_micros(figures.today.revenue_micros),
        talktime_store::format_micros(figures.today.margin_micros()),
    );
    body.push_str(&hourly_bars(&figures.hours));
    body.push_str("<p><a href=\"/console/calls\">Live calls</a></p>");
    page(
        "Dashboard",
        Some(user),
        "<meta http-equiv=\"refresh\" content=\"10\">",
        &body,
    )
}

/// Calls per hour over the last day: attempts in grey, answered in blue (inline SVG).
fn hourly_bars(hours: &[(i64, i64, i64)]) -> String {
    let largest = hours
        .iter()
        .map(|(_, attempts, _)| *attempts)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::from(
        "<h2>Calls per hour, last 24 hours (UTC)</h2><svg id=\"hourly-chart\" role=\"img\" \
         preserveAspectRatio=\"xMinYMid meet\" \
         width=\"100%\" height=\"170\" viewBox=\"0 0 600 170\">",
    );
    for (index, (hour, attempts, answered)) in hours.iter().enumerate() {
        let x = index * 25;
        let attempted = attempts * 130 / largest;
        let talked = answered * 130 / largest;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"20\" height=\"{attempted}\" fill=\"#bbb\">\
             <title>{attempts} calls, {answered} answered</title></rect>\
             <rect x=\"{x}\" y=\"{}\" width=\"20\" height=\"{talked}\" fill=\"#3a7bd5\"/>\
             <text x=\"{x}\" y=\"160\" font-size=\"10\">{:02}</text>",
            140 - attempted,
            140 - talked,
            hour.rem_euclid(24),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn seconds(ms: i64) -> String {
    let total = ms.max(0) / 1000;
    format!("{}:{:02}", total / 60, total % 60)
}

pub fn calls(user: &LoggedIn, calls: &[LiveCall], now_ms: i64) -> String {
    let may_hang_up = super::auth::may_change(&user.user);
    let mut rows = String::new();
    for call in calls {
        let talked = call.answered_ms.map(|answered| now_ms - answered);
        let remaining = match (call.limit_ms, talked) {
            (Some(limit), Some(talked)) => seconds(i64::try_from(limit).unwrap_or(0) - talked),
            _ => String::new(),
        };
        let mut action = String::new();
        if may_hang_up {
            let _ = write!(
                action,
                "<form class=\"inline\" method=\"post\" action=\"/console/calls/{}/hangup\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button class=\"hangup\">Hang up</button></form>",
                call.key,
                escape(&user.csrf_token)
            );
            if let Some(account) = call.account {
                let _ = write!(
                    action,
                    " <form class=\"inline\" method=\"post\" \
                     action=\"/console/accounts/{account}/hangup\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <button class=\"hangup-account\">Hang up all of account {account}</button>\
                     </form>",
                    escape(&user.csrf_token)
                );
            }
        }
        let account = call
            .account
            .map(|id| format!("<a href=\"/console/accounts/{id}\">{id}</a>"))
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr class=\"call\" data-call=\"{}\"><td>{account}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"cost\">{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(&call.call_id),
            escape(&call.access_number),
            escape(call.caller_id.as_deref().unwrap_or("")),
            escape(&format!(
                "{} {}",
                call.destination.as_deref().unwrap_or(""),
                call.description.as_deref().unwrap_or("")
            )),
            escape(&call.phase),
            escape(call.carrier.as_deref().unwrap_or("")),
            talked.map(seconds).unwrap_or_default(),
            remaining,
            escape(call.rate_per_minute.as_deref().unwrap_or("")),
            escape(call.cost_so_far.as_deref().unwrap_or("")),
            escape(&call.codec),
            seconds(now_ms - call.started_ms),
        );
    }
    let body = format!(
        "<p id=\"count\">{} calls up</p><table><thead><tr><th>Account</th><th>Access number</th><th>Caller</th>\
         <th>Destination</th><th>State</th><th>Carrier</th><th>Talking</th><th>Left</th>\
         <th>Rate/min</th><th>Cost so far</th><th>Codec</th><th>Since start</th><th></th></tr></thead><tbody>{rows}</tbody></table>",
        calls.len()
    );
    page(
        "Live calls",
        Some(user),
        "<meta http-equiv=\"refresh\" content=\"2\">",
        &body,
    )
}

pub fn users(
    user: &LoggedIn,
    users: &[User],
    audit: &[AuditEntry],
    error: Option<(&str, &str)>,
) -> String {
    let csrf = csrf_field(user);
    let mut body = String::from(
        "<table><thead><tr><th>User</th><th>Role</th><th>State</th><th></th></tr></thead><tbody>",
    );
    for listed in users {
        // An admin cannot lock themself out.
        let action = if listed.id == user.user.id {
            String::new()
        } else {
            let (value, label) = if listed.disabled {
                ("false", "Enable")
            } else {
                ("true", "Disable")
            };
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/console/users/{}/disabled\">\
                 {csrf}<input type=\"hidden\" name=\"disabled\" value=\"{value}\">\
                 <button class=\"toggle-user\">{label}</button></form>",
                escape(&listed.name)
            )
        };
        let _ = write!(
            body,
            "<tr class=\"user\" data-user=\"{name}\"><td>{name}</td><td>{}</td><td>{}</td>\
             <td>{action}</td></tr>",
            listed.role.as_str(),
            if listed.disabled {
                "disabled"
            } else {
                "active"
            },
            name = escape(&listed.name),
        );
    }
    let _ = write!(
        body,
        "</tbody></table><h2>Add a user</h2><form method=\"post\" action=\"/console/users\">\
         {csrf}{}<p><label>Role <select name=\"role\" id=\"role\"><option>operator</option>\
         <option>support</option><option>admin</option></select></label></p>{}\
         <p><button id=\"add-user\">Add</button></p></form>",
        input("name", "Name", "text", error),
        input(
            "password",
            "Password (10 characters or more)",
            "password",
            error
        ),
    );
    body.push_str(
        "</tbody></table><h2>Audit log</h2><table><thead><tr><th>When (UTC)</th><th>Who</th>\
         <th>What</th><th>On</th></tr></thead><tbody>",
    );
    for entry in audit {
        let when = talktime_billing::LocalStart::from_unix_ms(entry.at_ms, 0)
            .map(|start| format!("{} {}", start.date, start.time))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{when}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&entry.user_name),
            escape(&entry.action),
            escape(&entry.subject)
        );
    }
    body.push_str("</tbody></table>");
    page("Users", Some(user), "", &body)
}

/// A labelled input, with the message when it is the field at fault.
fn input(name: &str, label: &str, kind: &str, error: Option<(&str, &str)>) -> String {
    let message = match error {
        Some((bad, text)) if bad == name => format!(
            " <span class=\"error\" id=\"error-{name}\">{}</span>",
            escape(text)
        ),
        _ => String::new(),
    };
    format!(
        "<p><label>{label} <input name=\"{name}\" id=\"{name}\" type=\"{kind}\"></label>\
         {message}</p>"
    )
}

pub(super) fn csrf_field(user: &LoggedIn) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&user.csrf_token)
    )
}

/// Find a card by PIN; generate a batch.
pub fn cards(user: &LoggedIn, error: Option<(&str, &str)>) -> String {
    let csrf = csrf_field(user);
    let options = [
        ("expire_days", "Days valid after the first call"),
        ("expires_on", "Expires on (YYYY-MM-DD)"),
        ("activation_fee", "Activation fee (first call)"),
        (
            "caller_id_min_balance",
            "Caller ID skips the PIN from balance",
        ),
        ("concurrency_limit", "Calls at once (1)"),
        ("maintenance_fee", "Maintenance fee"),
        ("maintenance_every", "Maintenance every (30d)"),
        ("package_seconds", "Free seconds per package"),
        ("package_prefixes", "Package prefixes (1,44)"),
        ("package_every", "Package refilled every (30d)"),
    ]
    .iter()
    .map(|(name, label)| input(name, label, "text", error))
    .collect::<String>();
    // Open when one of its fields is the one at fault.
    let open = match error {
        Some((field, _)) if options.contains(&format!("id=\"error-{field}\"")) => " open",
        _ => "",
    };
    let body = format!(
        "<h2>Find a card</h2><form method=\"post\" action=\"/console/cards/find\">{csrf}{}\
         <p><button id=\"find\">Find</button></p></form>\
         <h2>Generate a batch</h2><form method=\"post\" action=\"/console/cards/batches\">{csrf}\
         {}{}{}{}{}{}<details{open}><summary>Expiry, fees, limits and plans</summary>{options}\
         </details><p><label><input type=\"checkbox\" name=\"disposable\" id=\"disposable\"> \
         Disposable</label></p><p><label>File <select name=\"format\" id=\"format\">\
         <option value=\"csv\">CSV</option><option value=\"xlsx\">Excel (XLSX)</option>\
         </select></label></p><p><button id=\"generate\">Generate and download</button>\
         </p></form>",
        input("pin", "PIN", "password", error),
        input("name", "Batch name", "text", error),
        input("count", "Cards", "number", error),
        input("value", "Value of each", "text", error),
        input("currency", "Currency (USD)", "text", error),
        input("tariff", "Tariff", "text", error),
        input("pin_length", "PIN digits (10)", "number", error),
    );
    page("Cards", Some(user), "", &body)
}

/// One card: its account's balance, its state, its transactions, and what may be done.
pub fn card(
    user: &LoggedIn,
    card: &talktime_store::Card,
    account: &talktime_store::Account,
    entries: &[talktime_store::LedgerEntry],
    form_key: &str,
    error: Option<(&str, &str)>,
) -> String {
    let csrf = csrf_field(user);
    let mut body = format!(
        "<p>Card <strong>{}</strong>, account <a id=\"account\" href=\"/console/accounts/{}\">{}\
         </a>, <span id=\"status\">{}</span>, {}; \
         balance <strong id=\"balance\">{}</strong> {}</p>",
        card.id,
        account.id,
        account.id,
        card.status.as_str(),
        card.kind.as_str(),
        talktime_store::format_micros(account.balance_micros),
        escape(&account.currency),
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/cards/{}/recharge\">{csrf}\
         <input type=\"hidden\" name=\"key\" value=\"{form_key}\">{}\
         <p><button id=\"recharge\">Recharge</button></p></form>",
        card.id,
        input("amount", "Amount", "text", error),
    );
    if super::auth::may_change(&user.user) {
        let (next, label) = if card.status.as_str() == "blocked" {
            ("active", "Unblock")
        } else {
            ("blocked", "Block")
        };
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/cards/{}/status\">{csrf}\
             <input type=\"hidden\" name=\"status\" value=\"{next}\">\
             <button id=\"block\">{label}</button></form>",
            card.id
        );
    }
    body.push_str(&transactions_table(entries));
    page(&format!("Card {}", card.id), Some(user), "", &body)
}

/// Traffic by carrier, access number or account: ASR, ACD, minutes, revenue, cost, margin, as
/// a table and as bars (inline SVG: no script, no outside asset).
pub fn reports(
    user: &LoggedIn,
    query: &super::ReportQuery,
    rows: &[talktime_store::TrafficRow],
    error: Option<(&str, &str)>,
) -> String {
    let message = |name: &str| match error {
        Some((bad, text)) if bad == name => format!(
            " <span class=\"error\" id=\"error-{name}\">{}</span>",
            escape(text)
        ),
        _ => String::new(),
    };
    let selected = |value: &str| {
        if query.by == value || (query.by.is_empty() && value == "carrier") {
            " selected"
        } else {
            ""
        }
    };
    let mut body = format!(
        "<form method=\"get\" action=\"/console/reports\">\
         <label>From <input name=\"from\" id=\"from\" value=\"{}\" size=\"10\"></label>{} \
         <label>To <input name=\"to\" id=\"to\" value=\"{}\" size=\"10\"></label>{} \
         <label>By <select name=\"by\" id=\"by\"><option value=\"carrier\"{}>carrier</option>\
         <option value=\"access_number\"{}>access number</option>\
         <option value=\"account\"{}>account</option><option value=\"day\"{}>day</option>\
         </select></label>{} <button id=\"report\">Show</button></form>",
        escape(&query.from),
        message("from"),
        escape(&query.to),
        message("to"),
        selected("carrier"),
        selected("access_number"),
        selected("account"),
        selected("day"),
        message("by"),
    );
    body.push_str(
        "<table><thead><tr><th>Group</th><th>Attempts</th><th>Answered</th><th>ASR %</th>\
         <th>ACD s</th><th>Minutes</th><th>Revenue</th><th>Cost</th><th>Margin</th></tr></thead><tbody>",
    );
    for row in rows {
        let minutes = format!(
            "{}.{}",
            row.billed_seconds / 60,
            row.billed_seconds % 60 / 6
        );
        let _ = write!(
            body,
            "<tr class=\"traffic\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(row.group.as_deref().unwrap_or("(none)")),
            row.attempts,
            row.answered,
            row.asr_percent()
                .map(|asr| asr.normalize().to_string())
                .unwrap_or_default(),
            row.acd_seconds()
                .map(|acd| acd.normalize().to_string())
                .unwrap_or_default(),
            minutes,
            talktime_store::format_micros(row.revenue_micros),
            talktime_store::format_micros(row.cost_micros),
            talktime_store::format_micros(row.margin_micros()),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&revenue_bars(rows));
    page("Reports", Some(user), "", &body)
}

/// Revenue per group as horizontal bars.
fn revenue_bars(rows: &[talktime_store::TrafficRow]) -> String {
    let largest = rows.iter().map(|row| row.revenue_micros).max().unwrap_or(0);
    if largest <= 0 {
        return String::new();
    }
    let height = rows.len() * 24 + 10;
    let mut svg = format!(
        "<h2>Revenue</h2><svg id=\"revenue-chart\" role=\"img\" width=\"100%\" \
         height=\"{height}\" viewBox=\"0 0 600 {height}\">"
    );
    for (index, row) in rows.iter().enumerate() {
        let width = row.revenue_micros.max(0) * 400 / largest;
        let y = index * 24 + 5;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text>\
             <rect x=\"150\" y=\"{y}\" width=\"{width}\" height=\"18\" fill=\"#3a7bd5\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 14,
            escape(row.group.as_deref().unwrap_or("(none)")),
            155 + width,
            y + 14,
            talktime_store::format_micros(row.revenue_micros),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One account: balance and limits, caller IDs, recharge, transactions.
pub fn account(
    user: &LoggedIn,
    account: &talktime_store::Account,
    callers: &[talktime_pii::Pii<String>],
    entries: &[talktime_store::LedgerEntry],
    speed_dials: &str,
    form_key: &str,
    error: Option<(&str, &str)>,
) -> String {
    let csrf = csrf_field(user);
    let forward = account
        .forward_destination
        .as_ref()
        .map(|destination| escape(destination.expose()))
        .unwrap_or_else(|| "(none)".into());
    let language = account.ivr_language.as_deref().unwrap_or("not chosen yet");
    let mut body = format!(
        "<p>Account <strong>{}</strong> ({}), {}; balance <strong id=\"balance\">{}</strong> {}; \
         calls at once {}; caller ID skips the PIN from {}; forwards to {forward}; IVR language \
         <span id=\"language\">{}</span></p>",
        account.id,
        escape(&account.name),
        account.status.as_str(),
        talktime_store::format_micros(account.balance_micros),
        escape(&account.currency),
        account.concurrency_limit,
        talktime_store::format_micros(account.caller_id_min_balance_micros),
        escape(language),
    );
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/accounts/{}/recharge\">{csrf}\
         <input type=\"hidden\" name=\"key\" value=\"{form_key}\">{}\
         <p><button id=\"recharge\">Recharge</button></p></form>",
        account.id,
        input("amount", "Amount", "text", error),
    );
    let may_change = super::auth::may_change(&user.user);
    if may_change {
        let value = |name: &str, label: &str, current: &str| {
            let message = match error {
                Some((bad, text)) if bad == name => format!(
                    " <span class=\"error\" id=\"error-{name}\">{}</span>",
                    escape(text)
                ),
                _ => String::new(),
            };
            format!(
                "<p><label>{label} <input name=\"{name}\" id=\"{name}\" value=\"{}\"></label>\
                 {message}</p>",
                escape(current)
            )
        };
        let _ = write!(
            body,
            "<h2>Forwarding and limits</h2><form method=\"post\" \
             action=\"/console/accounts/{}/settings\">{csrf}{}{}{}\
             <p><button id=\"save-account\">Save</button></p></form>",
            account.id,
            value(
                "forward",
                "Forward DID calls to (empty: no forwarding)",
                account
                    .forward_destination
                    .as_ref()
                    .map_or("", |number| number.expose().as_str())
            ),
            value(
                "concurrency",
                "Calls at once",
                &account.concurrency_limit.to_string()
            ),
            value(
                "caller_id_min_balance",
                "Caller ID skips the PIN from balance",
                &talktime_store::format_micros(account.caller_id_min_balance_micros)
            ),
        );
    }
    body.push_str("<h2>Caller IDs</h2><ul>");
    for number in callers {
        let remove = if may_change {
            format!(
                " <form class=\"inline\" method=\"post\" action=\"/console/accounts/{}/caller-ids/remove\">\
                 {csrf}<input type=\"hidden\" name=\"number\" value=\"{}\">\
                 <button class=\"remove\">Remove</button></form>",
                account.id,
                escape(number.expose())
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<li class=\"caller\">{}{remove}</li>",
            escape(number.expose())
        );
    }
    body.push_str("</ul>");
    if may_change {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/accounts/{}/caller-ids\">{csrf}{}\
             <p><button id=\"add-caller\">Add</button></p></form>",
            account.id,
            input("number", "Caller ID", "text", error),
        );
    }
    body.push_str(speed_dials);
    body.push_str(&transactions_table(entries));
    page(&format!("Account {}", account.id), Some(user), "", &body)
}

/// Every tariff with its rate count.
pub fn tariffs(user: &LoggedIn, listed: &[(talktime_store::Tariff, i64)]) -> String {
    let mut body = String::from(
        "<table><thead><tr><th>Tariff</th><th>Currency</th><th>Rates</th></tr></thead><tbody>",
    );
    for (tariff, count) in listed {
        let _ = write!(
            body,
            "<tr class=\"tariff\"><td><a href=\"/console/tariffs/{}\">{}</a></td><td>{}</td>\
             <td>{count}</td></tr>",
            tariff.id,
            escape(&tariff.name),
            escape(&tariff.currency)
        );
    }
    body.push_str("</tbody></table>");
    page("Tariffs", Some(user), "", &body)
}

/// A tariff's rates (a page, searched by prefix) and the CSV import with its report.
pub fn tariff(
    user: &LoggedIn,
    tariff: &talktime_store::Tariff,
    query: &super::tariffs::RatesQuery,
    rates: &[talktime_store::Rate],
    search_error: Option<&str>,
    report: Option<&talktime_store::ImportReport>,
    extra: &str,
) -> String {
    let error = search_error
        .map(|text| {
            format!(
                " <span class=\"error\" id=\"error-search\">{}</span>",
                escape(text)
            )
        })
        .unwrap_or_default();
    let mut body = format!(
        "<form method=\"get\" action=\"/console/tariffs/{}\"><label>Prefix \
         <input name=\"search\" id=\"search\" value=\"{}\"></label>{error} \
         <button id=\"find-rates\">Find</button></form>",
        tariff.id,
        escape(&query.search)
    );
    if let Some(report) = report {
        let _ = write!(
            body,
            "<div id=\"report\"><p>{} rows read, {} valid, {} written.</p><ul>",
            report.rows_read, report.rows_valid, report.rows_written
        );
        for row in report.errors.iter().take(50) {
            let _ = write!(
                body,
                "<li class=\"row-error\">line {}{}: {}</li>",
                row.line,
                row.column
                    .map(|column| format!(", {column}"))
                    .unwrap_or_default(),
                escape(&row.message)
            );
        }
        body.push_str("</ul></div>");
    }
    body.push_str(
        "<table><thead><tr><th>Prefix</th><th>Description</th><th>Sell / min</th><th>Buy / min</th>\
         <th>Blocks</th><th>Connection</th></tr></thead><tbody>",
    );
    for rate in rates {
        let _ = write!(
            body,
            "<tr class=\"rate\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            escape(&rate.prefix),
            escape(&rate.description),
            talktime_store::format_micros(rate.sell_rate_micros),
            talktime_store::format_micros(rate.buy_rate_micros),
            rate.initial_block_s,
            rate.increment_s,
            talktime_store::format_micros(rate.connection_fee_micros),
        );
    }
    body.push_str("</tbody></table>");
    if let Some(last) = rates.last() {
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/console/tariffs/{}?search={}&amp;after={}\">Next</a></p>",
            tariff.id,
            escape(&query.search),
            escape(&last.prefix)
        );
    }
    if super::auth::may_change(&user.user) {
        let _ = write!(
            body,
            "<h2>Import rates (CSV)</h2><form method=\"post\" action=\"/console/tariffs/{}/import\">\
             {}<p><textarea name=\"csv\" id=\"csv\" rows=\"8\" cols=\"80\"></textarea></p>\
             <p><label><input type=\"checkbox\" name=\"dry_run\" id=\"dry_run\"> Dry run (check, \
             write nothing)</label></p><p><button id=\"import\">Import</button></p></form>",
            tariff.id,
            csrf_field(user)
        );
    }
    body.push_str(extra);
    page(&format!("Tariff {}", tariff.name), Some(user), "", &body)
}

/// An account's newest transactions.
fn transactions_table(entries: &[talktime_store::LedgerEntry]) -> String {
    let mut table = String::from(
        "<h2>Transactions</h2><table><thead><tr><th>When (UTC)</th><th>Kind</th><th>Amount</th>\
         <th>Balance after</th></tr></thead><tbody>",
    );
    for entry in entries {
        let _ = write!(
            table,
            "<tr class=\"entry\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            utc(entry.created_at_ms),
            entry.kind.as_str(),
            talktime_store::format_micros(entry.amount_micros),
            talktime_store::format_micros(entry.balance_after_micros),
        );
    }
    table.push_str("</tbody></table>");
    table
}

pub(crate) fn utc(epoch_ms: i64) -> String {
    talktime_billing::LocalStart::from_unix_ms(epoch_ms, 0)
        .map(|start| format!("{} {}", start.date, start.time))
        .unwrap_or_default()
}

/// The CDR search: the form (with the message at a bad field), a page of rows, and the link
/// to the next (older) page.
pub fn cdrs(
    user: &LoggedIn,
    query: &super::CdrQuery,
    rows: &[(talktime_store::CdrCursor, talktime_store::Cdr)],
    next: Option<talktime_store::CdrCursor>,
    error: Option<(&str, &str)>,
) -> String {
    let field = |name: &str, label: &str, value: &str| {
        let message = match error {
            Some((bad, text)) if bad == name => {
                format!(
                    " <span class=\"error\" id=\"error-{name}\">{}</span>",
                    escape(text)
                )
            }
            _ => String::new(),
        };
        format!(
            "<label>{label} <input name=\"{name}\" id=\"{name}\" value=\"{}\" size=\"10\">\
             </label>{message} ",
            escape(value)
        )
    };
    let mut body = format!(
        "<form method=\"get\" action=\"/console/cdrs\">{}{}{}{}{}{}\
         <button id=\"search\">Search</button> <button id=\"export\" \
         formaction=\"/console/cdrs/export\">Download CSV</button></form>",
        field("from", "From", &query.from),
        field("to", "To", &query.to),
        field("account", "Account", &query.account),
        field("carrier", "Carrier", &query.carrier),
        field("cause", "Cause", &query.cause),
        field("prefix", "Destination prefix", &query.prefix),
    );
    body.push_str(
        "<table><thead><tr><th>Start (UTC)</th><th>Account</th><th>Access</th><th>Destination\
         </th><th>Carrier</th><th>Billed s</th><th>Total</th><th>Cause</th></tr></thead><tbody>",
    );
    for (_, cdr) in rows {
        let _ = write!(
            body,
            "<tr class=\"cdr\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            utc(cdr.start_ms),
            cdr.account_id.map(|id| id.to_string()).unwrap_or_default(),
            escape(cdr.access_number.as_deref().unwrap_or("")),
            escape(&talktime_b2bua::monitor::mask(cdr.destination.expose())),
            escape(cdr.carrier.as_deref().unwrap_or("")),
            cdr.billed_seconds,
            talktime_store::format_micros(cdr.total_micros),
            escape(cdr.disconnect_cause.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</tbody></table>");
    if let Some(cursor) = next {
        let keep = |name: &str, value: &str| {
            format!(
                "&amp;{name}={}",
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            )
        };
        let _ = write!(
            body,
            "<p><a id=\"older\" href=\"/console/cdrs?before={}-{}{}{}{}{}{}{}\">Older</a></p>",
            cursor.start_ms,
            cursor.id,
            keep("from", &query.from),
            keep("to", &query.to),
            keep("account", &query.account),
            keep("carrier", &query.carrier),
            keep("cause", &query.cause),
            keep("prefix", &query.prefix),
        );
    }
    page("CDRs", Some(user), "", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>\"x\"&'y'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"
        );
    }
}
