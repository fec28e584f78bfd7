//! Account plans: the recurring maintenance fee and the free-minute package of an account.
//! The billing crate decides what is due (`AccountPlan::maintenance_due`); the store keeps
//! the plan, books each period once, and counts package seconds in the settle of the call
//! that used them.

use crate::backend::{Store, with_conn};
use crate::error::StoreError;
use crate::ledger::{Posting, check_amount, post};
use crate::model::TransactionKind;

crate::exec::record_struct! {
    /// An account's plan as stored.
    #[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
    pub struct PlanRow {
        pub account_id: i64,
        pub maintenance_fee_micros: i64,
        pub maintenance_every_ms: i64,
        /// The last fee instant charged (0: none yet).
        pub maintenance_charged_until_ms: i64,
        pub package_seconds: i64,
        /// Comma-separated destination prefixes the package covers.
        pub package_prefixes: String,
        pub package_every_ms: i64,
        pub package_used_seconds: i64,
        pub package_period_start_ms: i64,
    }
}

/// A plan with its maintenance anchor: the card's first use, else the account's creation
/// (`None`: a card not used yet owes no maintenance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuePlan {
    pub plan: PlanRow,
    pub anchor_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DuePlanRow {
    account_id: i64,
    maintenance_fee_micros: i64,
    maintenance_every_ms: i64,
    maintenance_charged_until_ms: i64,
    card_id: Option<i64>,
    first_used_at_ms: Option<i64>,
    created_at_ms: i64,
}

impl PlanRow {
    /// Package seconds left at `now_ms` (a period that has passed starts again full).
    pub fn package_seconds_left(&self, now_ms: i64) -> i64 {
        if self.package_seconds <= 0 {
            return 0;
        }
        if self.package_period_over(now_ms) {
            return self.package_seconds;
        }
        (self.package_seconds - self.package_used_seconds).max(0)
    }

    fn package_period_over(&self, now_ms: i64) -> bool {
        self.package_every_ms > 0
            && now_ms
                >= self
                    .package_period_start_ms
                    .saturating_add(self.package_every_ms)
    }

    /// Whether the package covers a destination (E.164 digits).
    pub fn package_covers(&self, destination: &str) -> bool {
        let destination = destination.trim_start_matches('+');
        self.package_prefixes
            .split(',')
            .map(str::trim)
            .any(|prefix| !prefix.is_empty() && destination.starts_with(prefix))
    }
}

impl Store {
    /// Sets (replaces) an account's plan; the package starts a fresh period now.
    pub async fn set_account_plan(&self, plan: &PlanRow, now_ms: i64) -> Result<(), StoreError> {
        check_amount(plan.maintenance_fee_micros)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO account_plans (account_id, maintenance_fee_micros, maintenance_every_ms, \
             maintenance_charged_until_ms, package_seconds, package_prefixes, package_every_ms, \
             package_used_seconds, package_period_start_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) \
             ON CONFLICT (account_id) DO UPDATE SET \
             maintenance_fee_micros = excluded.maintenance_fee_micros, \
             maintenance_every_ms = excluded.maintenance_every_ms, \
             package_seconds = excluded.package_seconds, \
             package_prefixes = excluded.package_prefixes, \
             package_every_ms = excluded.package_every_ms, \
             package_used_seconds = 0, package_period_start_ms = excluded.package_period_start_ms",
        )
        .bind(plan.account_id)
        .bind(plan.maintenance_fee_micros)
        .bind(plan.maintenance_every_ms)
        .bind(plan.maintenance_charged_until_ms)
        .bind(plan.package_seconds)
        .bind(&plan.package_prefixes)
        .bind(plan.package_every_ms)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Replaces an account's own tax profile (`None`: its tariff's taxes again). The text is
    /// the billing crate's `TaxProfile` as JSON; the store keeps it as given.
    pub async fn set_account_taxes(
        &self,
        account_id: i64,
        profile_json: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_account_rule(
            "UPDATE accounts SET tax_profile_json = $2 WHERE id = $1",
            account_id,
            profile_json,
        )
        .await
    }

    /// Replaces an account's own destination lists (`None`: none of its own). The text is the
    /// billing crate's `DestinationPolicy` as JSON; the store keeps it as given.
    pub async fn set_account_destinations(
        &self,
        account_id: i64,
        policy_json: Option<&str>,
    ) -> Result<(), StoreError> {
        self.set_account_rule(
            "UPDATE accounts SET destinations_json = $2 WHERE id = $1",
            account_id,
            policy_json,
        )
        .await
    }

    /// One of the account's JSON rule columns, by its fixed UPDATE statement.
    async fn set_account_rule(
        &self,
        statement: &'static str,
        account_id: i64,
        json: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let updated = with_conn!(&mut conn, c => sqlx::query(statement)
            .bind(account_id)
            .bind(json)
            .execute(&mut **c)
            .await
            .map(|done| done.rows_affected()))?;
        if updated == 0 {
            return Err(StoreError::not_found("account", account_id));
        }
        Ok(())
    }

    /// An account's own rules for its calls (tax profile and destination lists, as JSON), read
    /// in one probe on every authorization.
    pub async fn account_rules(&self, account_id: i64) -> Result<AccountRules, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<(Option<String>, Option<String>)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT tax_profile_json, destinations_json FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        let (taxes_json, destinations_json) = row.unwrap_or_default();
        Ok(AccountRules {
            taxes_json,
            destinations_json,
        })
    }

    /// What rating a call needs of its payer, in one read (issue 19: it was four): the
    /// card's and the account's tariffs, the card's activation fee still due, the account's
    /// own taxes and destination lists.
    pub async fn payer_profile(
        &self,
        account_id: i64,
        card_id: Option<i64>,
    ) -> Result<PayerProfile, StoreError> {
        type Row = (
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
        );
        let mut read = self.acquire_call_read().await?;
        let row: Option<Row> = read
            .exec()
            .fetch_optional(
                "SELECT a.tariff_id, a.tax_profile_json, a.destinations_json, \
                 c.tariff_id, c.activation_fee_micros, c.first_used_at_ms, a.reseller_id, \
                 (SELECT COUNT(*) FROM account_plans p WHERE p.account_id = a.id) \
                 FROM accounts a LEFT JOIN cards c ON c.id = $2 AND c.account_id = a.id \
                 WHERE a.id = $1",
                &[account_id.into(), card_id.into()],
            )
            .await?;
        let (
            account_tariff,
            taxes_json,
            destinations_json,
            card_tariff,
            fee,
            first_used,
            reseller_id,
            plans,
        ) = row.ok_or_else(|| StoreError::not_found("account", account_id))?;
        if let (Some(card), None) = (card_id, fee) {
            return Err(StoreError::not_found("card", card));
        }
        Ok(PayerProfile {
            account_tariff_id: account_tariff,
            card_tariff_id: card_tariff,
            activation_fee_due_micros: if first_used.is_none() {
                fee.unwrap_or(0)
            } else {
                0
            },
            card_first_used: first_used.is_some(),
            rules: AccountRules {
                taxes_json,
                destinations_json,
            },
            reseller_id,
            has_plan: plans > 0,
        })
    }

    /// An account's plan, if it has one.
    pub async fn account_plan(&self, account_id: i64) -> Result<Option<PlanRow>, StoreError> {
        // A call of an account with a plan asks: a call's read.
        let mut read = self.acquire_call_read().await?;
        read.exec()
            .fetch_optional(
                "SELECT account_id, maintenance_fee_micros, maintenance_every_ms, \
                 maintenance_charged_until_ms, package_seconds, package_prefixes, \
                 package_every_ms, package_used_seconds, package_period_start_ms \
                 FROM account_plans WHERE account_id = $1",
                &[account_id.into()],
            )
            .await
    }

    /// Every plan with a maintenance fee, with its anchor.
    pub async fn maintenance_plans(&self) -> Result<Vec<DuePlan>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<DuePlanRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT p.account_id, p.maintenance_fee_micros, p.maintenance_every_ms, \
             p.maintenance_charged_until_ms, c.id AS card_id, c.first_used_at_ms, \
             a.created_at_ms \
             FROM account_plans p JOIN accounts a ON a.id = p.account_id \
             LEFT JOIN cards c ON c.account_id = p.account_id \
             WHERE p.maintenance_fee_micros > 0 AND p.maintenance_every_ms > 0 \
             ORDER BY p.account_id",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| DuePlan {
                anchor_ms: match row.card_id {
                    Some(_) => row.first_used_at_ms,
                    None => Some(row.created_at_ms),
                },
                plan: PlanRow {
                    account_id: row.account_id,
                    maintenance_fee_micros: row.maintenance_fee_micros,
                    maintenance_every_ms: row.maintenance_every_ms,
                    maintenance_charged_until_ms: row.maintenance_charged_until_ms,
                    ..PlanRow::default()
                },
            })
            .collect())
    }

    /// Books the maintenance fee once for each instant in `instants` (ascending, each after
    /// the plan's `charged_until`), keyed by instant so that no period is ever charged twice,
    /// whichever node gets there first. Returns how many this call booked.
    pub async fn charge_maintenance_periods(
        &self,
        account_id: i64,
        fee_micros: i64,
        charged_until_ms: i64,
        instants: &[i64],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let Some(&last) = instants.last() else {
            return Ok(0);
        };
        check_amount(fee_micros)?;
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        // Compare and set: another node that booked these periods moved the mark first.
        let claimed = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE account_plans SET maintenance_charged_until_ms = $3 \
             WHERE account_id = $1 AND maintenance_charged_until_ms = $2",
        )
        .bind(account_id)
        .bind(charged_until_ms)
        .bind(last)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if claimed == 0 {
            return Ok(0);
        }
        for instant in instants {
            let key = format!("maintenance:{instant}");
            post(
                &mut conn.exec(),
                Posting {
                    account_id,
                    kind: TransactionKind::Maintenance,
                    amount_micros: -fee_micros,
                    call_id: None,
                    reference: Some(&key),
                    idempotency_key: Some(&key),
                    now_ms,
                },
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(instants.len())
    }
}

/// Counts `seconds` of an account's package as used (a new period starts again from zero),
/// inside the settle of the call that used them.
pub(crate) async fn use_package_seconds(
    exec: &mut crate::exec::Exec<'_>,
    account_id: i64,
    seconds: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    if seconds <= 0 {
        return Ok(());
    }
    exec.defer(
        "UPDATE account_plans SET \
         package_used_seconds = CASE WHEN package_every_ms > 0 \
           AND $3 >= package_period_start_ms + package_every_ms \
           THEN $2 ELSE package_used_seconds + $2 END, \
         package_period_start_ms = CASE WHEN package_every_ms > 0 \
           AND $3 >= package_period_start_ms + package_every_ms \
           THEN $3 ELSE package_period_start_ms END \
         WHERE account_id = $1",
        &[account_id.into(), seconds.into(), now_ms.into()],
    )
    .await?;
    Ok(())
}

/// What rating needs of a payer ([`Store::payer_profile`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayerProfile {
    pub account_tariff_id: Option<i64>,
    /// The card's own tariff (a card call; `None` otherwise or without one).
    pub card_tariff_id: Option<i64>,
    /// The card's activation fee, until its first answered call pays it.
    pub activation_fee_due_micros: i64,
    /// The card's first answered call is on record (it never goes away): a settle need not
    /// record it again.
    pub card_first_used: bool,
    pub rules: AccountRules,
    /// The reseller the account is a customer of (`None`: the vendor's own).
    pub reseller_id: Option<i64>,
    /// The account has a plan (maintenance fee, package of free seconds).
    pub has_plan: bool,
}

/// An account's own call rules as stored (JSON the billing crate reads); `None`: its tariff's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRules {
    pub taxes_json: Option<String>,
    pub destinations_json: Option<String>,
}
