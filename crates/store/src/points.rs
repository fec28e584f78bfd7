//! Bonus points (issue 22): calls earn points on what they cost (a rule per tariff, per
//! reseller's customers, or for everyone), and points buy credit. Points are awarded after the
//! call, from the ledger's call charges, by a sweep the shell runs (so the call's own settle
//! does not get slower); each charge earns once (its line's key), fractions carry over, and
//! the sweep only takes charges a minute old, so a charge whose transaction commits late on
//! PostgreSQL is still seen.

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;
use crate::ledger::{Posting, fetch_account, post};
use crate::model::{MICROS_PER_UNIT, TransactionKind};

/// Charges younger than this are left for the next sweep (PostgreSQL).
pub const POINTS_SETTLE_MARGIN_MS: i64 = 60_000;

/// Whom a points rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointsScope {
    Everyone,
    Reseller(i64),
    Tariff(i64),
}

impl PointsScope {
    fn key(self) -> String {
        match self {
            PointsScope::Everyone => "default".to_owned(),
            PointsScope::Reseller(id) => format!("reseller:{id}"),
            PointsScope::Tariff(id) => format!("tariff:{id}"),
        }
    }
}

/// A line of the points ledger.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PointsLine {
    pub points: i64,
    /// `earned` or `redeemed`.
    pub kind: String,
    pub balance_after: i64,
    pub created_at_ms: i64,
}

/// What a redemption did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PointsRedemption {
    Credited {
        credit_micros: i64,
        points_left: i64,
    },
    /// The same key again: nothing more.
    Replayed,
    NotEnoughPoints {
        points: i64,
    },
    /// Points buy nothing in the account's currency.
    NoValue,
}

/// Points per unit, scaled: a whole unit (1,000,000 micros) times `per_unit` gives points x
/// 1,000,000, the carry's scale.
fn earned(carry: i64, spent_micros: i64, per_unit: i64) -> (i64, i64) {
    let scaled = i128::from(carry) + i128::from(spent_micros) * i128::from(per_unit);
    let unit = i128::from(MICROS_PER_UNIT);
    let points = i64::try_from(scaled / unit).unwrap_or(i64::MAX);
    let carry = i64::try_from(scaled % unit).unwrap_or(0);
    (points, carry)
}

/// What points buy as free minutes in a currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointsMinutes {
    pub points_per_minute: i64,
    /// Comma-separated destination prefixes the minutes are free on.
    pub prefixes: String,
}

/// What a redemption for free minutes did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MinutesRedemption {
    Added {
        /// Free seconds the account now has on the offer's destinations.
        seconds_left: i64,
        points_left: i64,
    },
    /// The same key again: nothing more.
    Replayed,
    NotEnoughPoints {
        points: i64,
    },
    /// Points buy no minutes in the account's currency.
    NoOffer,
    /// The account's plan has a package renewed every period: minutes are not mixed into it.
    PlanPackage,
}

type ChargeRow = (i64, i64, i64, Option<i64>, Option<i64>);

impl Store {
    /// Sets how many points a whole unit spent earns for `scope` (0 earns none).
    pub async fn set_points_rule(
        &self,
        scope: PointsScope,
        points_per_unit: i64,
    ) -> Result<(), StoreError> {
        if !(0..=1_000_000).contains(&points_per_unit) {
            return Err(StoreError::InvalidArgument(
                "points per unit are 0 to 1,000,000".into(),
            ));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO points_rules (scope, points_per_unit) VALUES ($1, $2) \
             ON CONFLICT (scope) DO UPDATE SET points_per_unit = excluded.points_per_unit",
        )
        .bind(scope.key())
        .bind(points_per_unit)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Sets what one point buys in `currency`.
    pub async fn set_points_value(
        &self,
        currency: &str,
        micros_per_point: i64,
    ) -> Result<(), StoreError> {
        crate::ledger::check_amount(micros_per_point)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO points_value (currency, micros_per_point) VALUES ($1, $2) \
             ON CONFLICT (currency) DO UPDATE SET micros_per_point = excluded.micros_per_point",
        )
        .bind(currency)
        .bind(micros_per_point)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// What one point buys in `currency`, if anything.
    pub async fn points_value(&self, currency: &str) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let value: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT micros_per_point FROM points_value WHERE currency = $1",
        )
        .bind(currency)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(value.filter(|value| *value > 0))
    }

    /// Sets what points buy as free minutes in `currency` (`points_per_minute` 0: nothing).
    pub async fn set_points_minutes(
        &self,
        currency: &str,
        points_per_minute: i64,
        prefixes: &str,
    ) -> Result<(), StoreError> {
        let prefixes = clean_prefixes(prefixes)?;
        if points_per_minute < 0 || (points_per_minute > 0 && prefixes.is_empty()) {
            return Err(StoreError::InvalidArgument(
                "free minutes cost 0 (none) or more points, on at least one prefix".into(),
            ));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO points_minutes (currency, points_per_minute, prefixes) \
             VALUES ($1, $2, $3) ON CONFLICT (currency) DO UPDATE SET \
             points_per_minute = excluded.points_per_minute, prefixes = excluded.prefixes",
        )
        .bind(currency)
        .bind(points_per_minute)
        .bind(&prefixes)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// What points buy as free minutes in `currency`, if anything.
    pub async fn points_minutes(
        &self,
        currency: &str,
    ) -> Result<Option<PointsMinutes>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        minutes_offer(&mut conn, currency).await
    }

    /// Spends points on `minutes` free minutes, once per `key`: the points line and the
    /// seconds added to the account's one-time package are one transaction. The package's
    /// prefixes become the offer's (its seconds left are kept).
    pub async fn redeem_points_for_minutes(
        &self,
        account_id: i64,
        minutes: i64,
        key: &str,
        now_ms: i64,
    ) -> Result<MinutesRedemption, StoreError> {
        if !(1..=10_000).contains(&minutes) {
            return Err(StoreError::InvalidArgument(
                "redeem 1 to 10,000 minutes".into(),
            ));
        }
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let source = format!("minutes:{account_id}:{key}");
        if line_exists(&mut conn, &source).await? {
            return Ok(MinutesRedemption::Replayed);
        }
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let Some(offer) = minutes_offer(&mut conn, &account.currency).await? else {
            return Ok(MinutesRedemption::NoOffer);
        };
        let points = minutes
            .checked_mul(offer.points_per_minute)
            .ok_or_else(|| StoreError::InvalidArgument("too many minutes at once".into()))?;
        let Some(points_left) = spend_points(&mut conn, account_id, points).await? else {
            drop(transaction);
            return Ok(MinutesRedemption::NotEnoughPoints {
                points: self.points(account_id).await?,
            });
        };
        let Some(seconds_left) =
            add_package_seconds(&mut conn, account_id, minutes * 60, &offer.prefixes, now_ms)
                .await?
        else {
            drop(transaction);
            return Ok(MinutesRedemption::PlanPackage);
        };
        insert_line(
            &mut conn,
            account_id,
            -points,
            "minutes",
            &source,
            points_left,
            now_ms,
        )
        .await?;
        transaction.commit().await?;
        Ok(MinutesRedemption::Added {
            seconds_left,
            points_left,
        })
    }

    /// Awards the points of up to `limit` call charges older than the margin; how many
    /// charges were looked at (call again while it is `limit`).
    pub async fn award_points(&self, now_ms: i64, limit: i64) -> Result<usize, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let cursor: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT last_transaction_id FROM points_cursor WHERE singleton = 1",
        )
        .fetch_optional(&mut **c)
        .await)?;
        let cursor = cursor.unwrap_or(0);
        let charges: Vec<ChargeRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT t.id, t.account_id, -t.amount_micros, a.reseller_id, a.tariff_id \
             FROM transactions t JOIN accounts a ON a.id = t.account_id \
             WHERE t.id > $1 AND t.kind = 'call_charge' AND t.created_at_ms <= $2 \
             AND NOT EXISTS (SELECT 1 FROM resellers r WHERE r.account_id = t.account_id) \
             ORDER BY t.id LIMIT $3",
        )
        .bind(cursor)
        .bind(now_ms - self.points_margin_ms())
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        let Some(last) = charges.last().map(|row| row.0) else {
            return Ok(0);
        };
        for (transaction_id, account_id, spent, reseller, tariff) in &charges {
            let per_unit = rule_for(&mut conn, *tariff, *reseller).await?;
            if per_unit > 0 && *spent > 0 {
                award(
                    &mut conn,
                    *account_id,
                    *transaction_id,
                    *spent,
                    per_unit,
                    now_ms,
                )
                .await?;
            }
        }
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO points_cursor (singleton, last_transaction_id) VALUES (1, $1) \
             ON CONFLICT (singleton) DO UPDATE SET last_transaction_id = excluded.last_transaction_id",
        )
        .bind(last)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(charges.len())
    }

    fn points_margin_ms(&self) -> i64 {
        match self.kind() {
            crate::BackendKind::Sqlite => 0,
            crate::BackendKind::Postgres => POINTS_SETTLE_MARGIN_MS,
        }
    }

    /// An account's points.
    pub async fn points(&self, account_id: i64) -> Result<i64, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let points: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT points FROM points_accounts WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(points.unwrap_or(0))
    }

    /// An account's last `limit` points lines that moved points, newest first.
    pub async fn points_lines(
        &self,
        account_id: i64,
        limit: i64,
    ) -> Result<Vec<PointsLine>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<PointsLine> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT points, kind, balance_after, created_at_ms FROM points_lines \
             WHERE account_id = $1 AND points <> 0 ORDER BY id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }

    /// Spends `points` on credit at the currency's value, once per `key`: the points line
    /// and the `points` credit are one transaction.
    pub async fn redeem_points(
        &self,
        account_id: i64,
        points: i64,
        key: &str,
        now_ms: i64,
    ) -> Result<PointsRedemption, StoreError> {
        if points <= 0 {
            return Err(StoreError::InvalidArgument(
                "redeem at least one point".into(),
            ));
        }
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let source = format!("redeem:{account_id}:{key}");
        if line_exists(&mut conn, &source).await? {
            return Ok(PointsRedemption::Replayed);
        }
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let value: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT micros_per_point FROM points_value WHERE currency = $1",
        )
        .bind(&account.currency)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(value) = value.filter(|value| *value > 0) else {
            return Ok(PointsRedemption::NoValue);
        };
        let Some(points_left) = spend_points(&mut conn, account_id, points).await? else {
            drop(transaction);
            return Ok(PointsRedemption::NotEnoughPoints {
                points: self.points(account_id).await?,
            });
        };
        insert_line(
            &mut conn,
            account_id,
            -points,
            "redeemed",
            &source,
            points_left,
            now_ms,
        )
        .await?;
        let credit_micros = points
            .checked_mul(value)
            .ok_or_else(|| StoreError::InvalidArgument("too many points at once".into()))?;
        let reference = format!("{points} points");
        post(
            &mut conn.exec(),
            Posting {
                account_id,
                kind: TransactionKind::Points,
                amount_micros: credit_micros,
                call_id: None,
                reference: Some(&reference),
                idempotency_key: Some(&source),
                now_ms,
            },
        )
        .await?;
        transaction.commit().await?;
        Ok(PointsRedemption::Credited {
            credit_micros,
            points_left,
        })
    }
}

/// Whether the points ledger has the line of this source (a redemption done already).
async fn line_exists(conn: &mut Conn<'_>, source: &str) -> Result<bool, StoreError> {
    let done: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT id FROM points_lines WHERE source_key = $1",
    )
    .bind(source)
    .fetch_optional(&mut **c)
    .await)?;
    Ok(done.is_some())
}

/// Takes `points` from the account, the points left; `None` (nothing taken) when it has fewer.
async fn spend_points(
    conn: &mut Conn<'_>,
    account_id: i64,
    points: i64,
) -> Result<Option<i64>, StoreError> {
    let left: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "UPDATE points_accounts SET points = points - $2 \
         WHERE account_id = $1 AND points >= $2 RETURNING points",
    )
    .bind(account_id)
    .bind(points)
    .fetch_optional(&mut **c)
    .await)?;
    Ok(left)
}

/// A prefix list as stored: digits only, comma-separated, no blanks.
fn clean_prefixes(text: &str) -> Result<String, StoreError> {
    let prefixes: Vec<&str> = text
        .split(',')
        .map(|prefix| prefix.trim().trim_start_matches('+'))
        .filter(|prefix| !prefix.is_empty())
        .collect();
    if prefixes
        .iter()
        .any(|prefix| !prefix.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(StoreError::InvalidArgument(
            "prefixes are digits, comma-separated (1,44)".into(),
        ));
    }
    Ok(prefixes.join(","))
}

async fn minutes_offer(
    conn: &mut Conn<'_>,
    currency: &str,
) -> Result<Option<PointsMinutes>, StoreError> {
    let row: Option<(i64, String)> = with_conn!(conn, c => sqlx::query_as(
        "SELECT points_per_minute, prefixes FROM points_minutes WHERE currency = $1",
    )
    .bind(currency)
    .fetch_optional(&mut **c)
    .await)?;
    Ok(row
        .filter(|(points_per_minute, _)| *points_per_minute > 0)
        .map(|(points_per_minute, prefixes)| PointsMinutes {
            points_per_minute,
            prefixes,
        }))
}

/// Adds `seconds` to the account's one-time package (made if it has no plan): the seconds left
/// and these, on `prefixes`. `None` when its plan renews a package every period. One UPDATE,
/// so a settle counting used seconds at the same time is never lost.
async fn add_package_seconds(
    conn: &mut Conn<'_>,
    account_id: i64,
    seconds: i64,
    prefixes: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    with_conn!(conn, c => sqlx::query(
        "INSERT INTO account_plans (account_id, package_period_start_ms) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(account_id)
    .bind(now_ms)
    .execute(&mut **c)
    .await
    .map(|_| ()))?;
    let left: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "UPDATE account_plans SET package_seconds = CASE WHEN package_seconds > \
         package_used_seconds THEN package_seconds - package_used_seconds ELSE 0 END + $2, \
         package_used_seconds = 0, package_prefixes = $3, package_every_ms = 0 \
         WHERE account_id = $1 AND (package_every_ms = 0 OR package_seconds = 0) \
         RETURNING package_seconds",
    )
    .bind(account_id)
    .bind(seconds)
    .bind(prefixes)
    .fetch_optional(&mut **c)
    .await)?;
    Ok(left)
}

/// Points per unit for an account: its tariff's rule, else its reseller's, else everyone's.
async fn rule_for(
    conn: &mut Conn<'_>,
    tariff: Option<i64>,
    reseller: Option<i64>,
) -> Result<i64, StoreError> {
    let scopes = [
        tariff.map(PointsScope::Tariff),
        reseller.map(PointsScope::Reseller),
        Some(PointsScope::Everyone),
    ];
    for scope in scopes.into_iter().flatten() {
        let rule: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
            "SELECT points_per_unit FROM points_rules WHERE scope = $1",
        )
        .bind(scope.key())
        .fetch_optional(&mut **c)
        .await)?;
        if let Some(rule) = rule {
            return Ok(rule);
        }
    }
    Ok(0)
}

async fn award(
    conn: &mut Conn<'_>,
    account_id: i64,
    transaction_id: i64,
    spent_micros: i64,
    per_unit: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    let source = format!("charge:{transaction_id}");
    let seen: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT id FROM points_lines WHERE source_key = $1",
    )
    .bind(&source)
    .fetch_optional(&mut **c)
    .await)?;
    if seen.is_some() {
        return Ok(());
    }
    let current: Option<(i64, i64)> = with_conn!(conn, c => sqlx::query_as(
        "SELECT points, carry FROM points_accounts WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(&mut **c)
    .await)?;
    let carry = current.map_or(0, |(_, carry)| carry);
    let (new_points, carry) = earned(carry, spent_micros, per_unit);
    // An increment, not the value read above: a redemption committed meanwhile stays spent.
    let balance: i64 = with_conn!(conn, c => sqlx::query_scalar(
        "INSERT INTO points_accounts (account_id, points, carry) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id) DO UPDATE SET \
         points = points_accounts.points + excluded.points, carry = excluded.carry \
         RETURNING points",
    )
    .bind(account_id)
    .bind(new_points)
    .bind(carry)
    .fetch_one(&mut **c)
    .await)?;
    // A charge that earns less than a point still gets its line: it is marked seen.
    insert_line(
        conn, account_id, new_points, "earned", &source, balance, now_ms,
    )
    .await
}

async fn insert_line(
    conn: &mut Conn<'_>,
    account_id: i64,
    points: i64,
    kind: &str,
    source: &str,
    balance_after: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    with_conn!(conn, c => sqlx::query(
        "INSERT INTO points_lines (account_id, points, kind, source_key, balance_after, \
         created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(account_id)
    .bind(points)
    .bind(kind)
    .bind(source)
    .bind(balance_after)
    .bind(now_ms)
    .execute(&mut **c)
    .await
    .map(|_| ()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_carry_over_to_the_next_charge() {
        // 10 points a unit: 0.25 earns 2 (0.5 carried), the next 0.25 earns 3.
        assert_eq!(earned(0, 250_000, 10), (2, 500_000));
        assert_eq!(earned(500_000, 250_000, 10), (3, 0));
        assert_eq!(earned(0, 99_999, 1), (0, 99_999));
    }
}
