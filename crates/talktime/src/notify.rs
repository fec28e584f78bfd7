//! E-mail notifications (issue 18): the outbox sender, the card-expiry check and the carrier
//! outage mail. Mails are rows in the ledger (queued by the posting that crossed a balance
//! threshold, or here with a dedupe key); this task claims the due ones, renders them in the
//! account's language and sends them over SMTP. A mail server that is down only delays mail:
//! the row stays, and is retried with a doubling wait. Calls never wait for any of it.

use std::time::Duration;

use anyhow::{Context, bail};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use talktime_b2bua::config::NotificationsConfig;
use talktime_billing::{Currency, Money};
use talktime_pii::Pii;
use talktime_store::{NewNotification, Notification, NotificationKind, Store};
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::server::wall_clock_ms;

/// How long a claimed mail is kept from other senders while this one tries it.
const CLAIM_LEASE_MS: i64 = 120_000;
/// Mails taken from the outbox per look.
const BATCH: i64 = 20;
/// The longest wait between two tries of one mail.
const MAX_RETRY_MS: i64 = 3_600_000;

type Mailer = AsyncSmtpTransport<Tokio1Executor>;

/// Starts the sender and the expiry check (nothing is sent without `smtp_url`; mails queue).
/// `ca_file`: roots the mail server's certificate may chain to besides Mozilla's
/// (`[tls] ca_file`).
pub fn spawn(
    config: &NotificationsConfig,
    ca_file: Option<&std::path::Path>,
    store: Store,
    metrics: std::sync::Arc<Metrics>,
) -> anyhow::Result<()> {
    if config.smtp_url.is_empty() {
        return Ok(());
    }
    let mailer = mailer(&config.smtp_url, ca_file)?;
    let from: Mailbox = config
        .from
        .parse()
        .with_context(|| format!("[notifications] from = {:?} is not an address", config.from))?;
    tokio::spawn(send_loop(
        config.clone(),
        store.clone(),
        mailer,
        from,
        metrics,
    ));
    if config.card_expiry_warning_days > 0 {
        tokio::spawn(expiry_loop(config.clone(), store));
    }
    Ok(())
}

/// The SMTP transport of `url` (see [`NotificationsConfig::smtp_url`]); the server's
/// certificate is verified (its name, and a chain to Mozilla's roots or to `ca_file`'s).
fn mailer(url: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Mailer> {
    let parsed = url::Url::parse(url).context("[notifications] smtp_url is not a URL")?;
    let host = parsed
        .host_str()
        .context("[notifications] smtp_url has no host")?
        .to_owned();
    let starttls = parsed
        .query_pairs()
        .any(|(name, value)| name == "tls" && value == "starttls");
    let builder = Mailer::builder_dangerous(&host);
    let mut builder = match parsed.scheme() {
        "smtps" => builder
            .port(465)
            .tls(Tls::Wrapper(tls_parameters(&host, ca_file)?)),
        "smtp" if starttls => builder
            .port(587)
            .tls(Tls::Required(tls_parameters(&host, ca_file)?)),
        "smtp" => builder,
        other => bail!("[notifications] smtp_url scheme {other} is not smtp or smtps"),
    };
    if let Some(port) = parsed.port() {
        builder = builder.port(port);
    }
    if !parsed.username().is_empty() {
        let user = percent_decode(parsed.username());
        let password = percent_decode(parsed.password().unwrap_or_default());
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.timeout(Some(Duration::from_secs(20))).build())
}

fn tls_parameters(host: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<TlsParameters> {
    let mut parameters = TlsParameters::builder(host.to_owned());
    if let Some(file) = ca_file {
        let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let root = Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", file.display()))?;
        parameters = parameters.add_root_certificate(root);
    }
    Ok(parameters.build_rustls()?)
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

async fn send_loop(
    config: NotificationsConfig,
    store: Store,
    mailer: Mailer,
    from: Mailbox,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut ticks = tokio::time::interval(Duration::from_millis(config.poll_ms.max(50)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let now = wall_clock_ms();
        let due = match store.claim_notifications(now, CLAIM_LEASE_MS, BATCH).await {
            Ok(due) => due,
            Err(error) => {
                warn!(%error, "cannot read the mail outbox");
                continue;
            }
        };
        for notification in due {
            let outcome = send(&mailer, &from, &notification).await;
            let error_text = outcome
                .as_ref()
                .err()
                .map(|error| without_addresses(&format!("{error:#}")));
            let retry_at = now.saturating_add(retry_delay_ms(&config, notification.attempts));
            if let Some(error) = &error_text {
                warn!(mail = notification.id, kind = notification.kind.as_str(), %error,
                    "mail not sent; it stays queued and is retried");
                metrics.count_mail(false);
            } else {
                info!(
                    mail = notification.id,
                    kind = notification.kind.as_str(),
                    "mail sent"
                );
                metrics.count_mail(true);
            }
            let finished = store
                .finish_notification(
                    notification.id,
                    error_text.as_deref().map_or(Ok(()), Err),
                    wall_clock_ms(),
                    retry_at,
                )
                .await;
            if let Err(error) = finished {
                warn!(%error, "cannot record a mail's outcome; it is retried after its lease");
            }
        }
    }
}

/// A mail server's error text without the addresses it may echo (they are personal data and
/// go to the log and the ledger).
fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `retry_s`, doubled per earlier failure, at most an hour.
fn retry_delay_ms(config: &NotificationsConfig, attempts: i64) -> i64 {
    let first = i64::try_from(config.retry_s.saturating_mul(1000)).unwrap_or(MAX_RETRY_MS);
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    first
        .saturating_mul(1i64 << doublings)
        .clamp(1_000, MAX_RETRY_MS)
}

async fn send(mailer: &Mailer, from: &Mailbox, notification: &Notification) -> anyhow::Result<()> {
    let to: Mailbox = notification
        .recipient
        .expose()
        .parse()
        .context("the recipient is not an e-mail address")?;
    let (subject, body) = render(notification);
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .body(body)
        .context("cannot build the mail")?;
    mailer.send(message).await?;
    Ok(())
}

/// An amount in its currency with two decimals, e.g. `0.90 USD` (display only).
fn amount(micros: i64, currency: &str) -> String {
    match Currency::new(currency) {
        Ok(code) => {
            let money = Money::from_micros(micros, code).rounded(2);
            format!("{:.2} {}", money.amount, code.as_str())
        }
        Err(_) => format!("{} {currency}", talktime_billing::format_micros(micros)),
    }
}

/// The subject and body of a mail in its language (English for languages without templates).
pub fn render(notification: &Notification) -> (String, String) {
    let balance = amount(notification.amount_micros, &notification.currency);
    let threshold = amount(notification.threshold_micros, &notification.currency);
    let spanish = notification.language == "es";
    match (notification.kind, spanish) {
        (NotificationKind::LowBalance, false) => (
            format!("Your balance is low: {balance}"),
            format!(
                "Your calling balance is now {balance}, below the {threshold} you asked to hear \
                 about.\nRecharge to keep calling.\n"
            ),
        ),
        (NotificationKind::LowBalance, true) => (
            format!("Su saldo es bajo: {balance}"),
            format!(
                "Su saldo para llamadas es ahora {balance}, por debajo del aviso de {threshold}.\n\
                 Recargue para seguir llamando.\n"
            ),
        ),
        (NotificationKind::CardExpiry, false) => (
            "Your calling card expires soon".to_owned(),
            format!(
                "Your calling card expires on {} (UTC). Use or recharge it before then.\n",
                notification.detail
            ),
        ),
        (NotificationKind::CardExpiry, true) => (
            "Su tarjeta telefónica vence pronto".to_owned(),
            format!(
                "Su tarjeta telefónica vence el {} (UTC). Úsela o recárguela antes.\n",
                notification.detail
            ),
        ),
        (NotificationKind::TicketReply, _) => ticket_reply(&notification.detail, spanish),
        (NotificationKind::CarrierDown, _) => (
            format!("Carrier {} is down", notification.detail),
            format!(
                "Carrier {} stopped answering OPTIONS pings; calls skip it until it answers.\n",
                notification.detail
            ),
        ),
    }
}

/// A staff reply to a customer's ticket: `detail` is the ticket's id, its subject and the
/// reply, a line each but the reply's own.
fn ticket_reply(detail: &str, spanish: bool) -> (String, String) {
    let mut parts = detail.splitn(3, '\n');
    let id = parts.next().unwrap_or_default();
    let subject = parts.next().unwrap_or_default();
    let reply = parts.next().unwrap_or_default();
    if spanish {
        (
            format!("Re: [#{id}] {subject}"),
            format!(
                "{reply}\n\n-- \nRespuesta a su consulta #{id}. Léala y conteste en su portal de \
                 cliente.\n"
            ),
        )
    } else {
        (
            format!("Re: [#{id}] {subject}"),
            format!(
                "{reply}\n\n-- \nA reply to your ticket #{id}. Read and answer it in your \
                 customer portal.\n"
            ),
        )
    }
}

async fn expiry_loop(config: NotificationsConfig, store: Store) {
    let warning_ms = i64::try_from(config.card_expiry_warning_days.saturating_mul(86_400_000))
        .unwrap_or(i64::MAX);
    let mut ticks = tokio::time::interval(Duration::from_secs(config.expiry_check_s.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if let Err(error) = queue_expiring_cards(&store, warning_ms).await {
            warn!(%error, "cannot look for expiring cards");
        }
    }
}

async fn queue_expiring_cards(store: &Store, warning_ms: i64) -> anyhow::Result<()> {
    let now = wall_clock_ms();
    let expiring = store
        .cards_expiring(now, now.saturating_add(warning_ms))
        .await?;
    for (card, account, email, language, expires_at_ms) in expiring {
        let notification = NewNotification {
            kind: NotificationKind::CardExpiry,
            dedupe_key: format!("card_expiry:{card}:{expires_at_ms}"),
            account_id: Some(account),
            recipient: email,
            language,
            currency: String::new(),
            amount_micros: 0,
            threshold_micros: 0,
            detail: utc_text(expires_at_ms),
        };
        store.queue_notification(&notification, now).await?;
    }
    Ok(())
}

/// `2026-12-03 14:05:00` for epoch milliseconds.
fn utc_text(epoch_ms: i64) -> String {
    talktime_billing::LocalStart::from_unix_ms(epoch_ms, 0)
        .map(|start| format!("{} {}", start.date, start.time))
        .unwrap_or_else(|| epoch_ms.to_string())
}

/// Queues the operator's mail about a carrier going down (once per outage).
pub fn carrier_down(config: &NotificationsConfig, store: &Store, carrier: &str) {
    if config.operator_email.is_empty() {
        return;
    }
    let now = wall_clock_ms();
    let notification = NewNotification {
        kind: NotificationKind::CarrierDown,
        dedupe_key: format!("carrier_down:{carrier}:{now}"),
        account_id: None,
        recipient: Pii::new(config.operator_email.clone()),
        language: "en".to_owned(),
        currency: String::new(),
        amount_micros: 0,
        threshold_micros: 0,
        detail: carrier.to_owned(),
    };
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.queue_notification(&notification, now).await {
            warn!(%error, "cannot queue the carrier-down mail");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_loses_its_addresses() {
        assert_eq!(
            without_addresses("permanent error (550): <owner@example.test> unknown"),
            "permanent error (550): <address> unknown"
        );
    }
}
