//! Promotion coupons (issue 22): a code a customer gives with a voucher recharge adds a share
//! of it (basis points) or a fixed amount as a `promotion` ledger line. A coupon is valid
//! between two times and used at most `max_uses` times in all and `max_uses_per_account`
//! times by one account (0: no limit). The coupon's checks, the voucher's redemption, the
//! bonus and the use are one transaction: a refused coupon leaves the voucher unused, and on
//! PostgreSQL the coupon's row is locked so two customers cannot both take its last use.
//!
//! Rounding: a percentage bonus is rounded down to the micro-unit (the customer never gets a
//! fraction of a micro-unit more than the rule says).

use talktime_pii::Pii;

use crate::backend::{Conn, Store, with_conn};
use crate::caller_services::Redemption;
use crate::error::StoreError;
use crate::ledger::{Posting, check_amount, fetch_account, post};
use crate::model::TransactionKind;

/// Basis points in 100 %.
const FULL_BASIS_POINTS: i64 = 10_000;

/// A coupon as the operator makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCoupon {
    /// What the customer types (kept upper-case).
    pub code: String,
    /// Share of the recharge added, in basis points (1000 = 10 %); 0 with a fixed amount.
    pub percent_bp: i64,
    /// Fixed amount added; 0 with a share.
    pub amount_micros: i64,
    pub currency: String,
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    /// Uses in all (0: no limit).
    pub max_uses: i64,
    /// Uses by one account (0: no limit).
    pub max_uses_per_account: i64,
}

/// A coupon and how often it was used.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CouponRow {
    pub id: i64,
    pub code: String,
    pub percent_bp: i64,
    pub amount_micros: i64,
    pub currency: String,
    pub valid_from_ms: Option<i64>,
    pub valid_until_ms: Option<i64>,
    pub max_uses: i64,
    pub max_uses_per_account: i64,
    pub uses: i64,
}

/// Why a coupon was not applied (nothing changed, the voucher is still unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponRefusal {
    Unknown,
    NotYetValid,
    Expired,
    /// Its uses in all are taken.
    UsedUp,
    /// This account has used it as often as it may.
    UsedByAccount,
    WrongCurrency,
}

/// What a voucher recharge with a coupon did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponRecharge {
    /// The voucher was credited and the coupon's bonus beside it (two ledger lines).
    Credited {
        voucher_id: i64,
        amount_micros: i64,
        bonus_micros: i64,
        balance_micros: i64,
    },
    /// The voucher was refused (nothing changed); never `Redemption::Credited`.
    Voucher(Redemption),
    /// The coupon was refused (nothing changed).
    Coupon(CouponRefusal),
}

/// The bonus a coupon gives on a recharge of `recharge_micros` (rounded down).
pub fn coupon_bonus(percent_bp: i64, amount_micros: i64, recharge_micros: i64) -> i64 {
    let share =
        i128::from(recharge_micros) * i128::from(percent_bp) / i128::from(FULL_BASIS_POINTS);
    i64::try_from(share)
        .unwrap_or(i64::MAX)
        .saturating_add(amount_micros)
}

impl Store {
    /// Makes a coupon; its code is kept upper-case and must be new.
    pub async fn create_coupon(&self, coupon: &NewCoupon, now_ms: i64) -> Result<i64, StoreError> {
        let code = coupon.code.trim().to_ascii_uppercase();
        if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(StoreError::InvalidArgument(
                "a coupon code is letters and digits".into(),
            ));
        }
        if !(0..=FULL_BASIS_POINTS).contains(&coupon.percent_bp) {
            return Err(StoreError::InvalidArgument(
                "a coupon's share is 0 to 100 %".into(),
            ));
        }
        check_amount(coupon.amount_micros)?;
        if (coupon.percent_bp == 0) == (coupon.amount_micros == 0) {
            return Err(StoreError::InvalidArgument(
                "a coupon gives a share or an amount, one of the two".into(),
            ));
        }
        if coupon.max_uses < 0 || coupon.max_uses_per_account < 0 {
            return Err(StoreError::InvalidArgument(
                "a coupon's use limits are 0 (none) or more".into(),
            ));
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let id: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO coupons (code, percent_bp, amount_micros, currency, valid_from_ms, \
             valid_until_ms, max_uses, max_uses_per_account, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&code)
        .bind(coupon.percent_bp)
        .bind(coupon.amount_micros)
        .bind(coupon.currency.to_ascii_uppercase())
        .bind(coupon.valid_from_ms)
        .bind(coupon.valid_until_ms)
        .bind(coupon.max_uses)
        .bind(coupon.max_uses_per_account)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::InvalidArgument(format!("a coupon {code} exists already"))
            } else {
                StoreError::from(error)
            }
        })?;
        Ok(id)
    }

    /// Every coupon with its uses, newest first.
    pub async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<CouponRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT c.id, c.code, c.percent_bp, c.amount_micros, c.currency, c.valid_from_ms, \
             c.valid_until_ms, c.max_uses, c.max_uses_per_account, \
             (SELECT count(*) FROM coupon_uses u WHERE u.coupon_id = c.id) AS uses \
             FROM coupons c ORDER BY c.id DESC",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }

    /// Redeems a voucher with a coupon: both or neither (see the module docs).
    pub async fn redeem_voucher_with_coupon(
        &self,
        account_id: i64,
        voucher_code: &Pii<String>,
        coupon_code: &str,
        now_ms: i64,
    ) -> Result<CouponRecharge, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let account = fetch_account(&mut conn.exec(), account_id).await?;
        let coupon = match usable_coupon(&mut conn, coupon_code, account_id, now_ms).await? {
            Ok(coupon) if coupon.currency != account.currency => {
                return Ok(CouponRecharge::Coupon(CouponRefusal::WrongCurrency));
            }
            Ok(coupon) => coupon,
            Err(refusal) => return Ok(CouponRecharge::Coupon(refusal)),
        };
        let redemption = self
            .redeem_in(&mut conn, account_id, voucher_code, None, now_ms)
            .await?;
        let Redemption::Credited {
            voucher_id,
            amount_micros,
            ..
        } = redemption
        else {
            return Ok(CouponRecharge::Voucher(redemption));
        };
        let bonus_micros = coupon_bonus(coupon.percent_bp, coupon.amount_micros, amount_micros);
        check_amount(bonus_micros)?;
        let key = format!("coupon:{}:voucher:{voucher_id}", coupon.id);
        let balance_micros = post(
            &mut conn.exec(),
            Posting {
                account_id,
                kind: TransactionKind::Promotion,
                amount_micros: bonus_micros,
                call_id: None,
                reference: Some(&format!("coupon {}", coupon.code)),
                idempotency_key: Some(&key),
                now_ms,
            },
        )
        .await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO coupon_uses (coupon_id, account_id, recharge_micros, bonus_micros, \
             used_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(coupon.id)
        .bind(account_id)
        .bind(amount_micros)
        .bind(bonus_micros)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(CouponRecharge::Credited {
            voucher_id,
            amount_micros,
            bonus_micros,
            balance_micros,
        })
    }
}

/// The coupon of `code` if this account may use it now (its row locked on PostgreSQL).
async fn usable_coupon(
    conn: &mut Conn<'_>,
    code: &str,
    account_id: i64,
    now_ms: i64,
) -> Result<Result<CouponRow, CouponRefusal>, StoreError> {
    let code = code.trim().to_ascii_uppercase();
    if let Conn::Postgres(c) = conn {
        sqlx::query("SELECT id FROM coupons WHERE code = $1 FOR UPDATE")
            .bind(&code)
            .execute(&mut **c)
            .await?;
    }
    let coupon: Option<CouponRow> = with_conn!(conn, c => sqlx::query_as(
        "SELECT c.id, c.code, c.percent_bp, c.amount_micros, c.currency, c.valid_from_ms, \
         c.valid_until_ms, c.max_uses, c.max_uses_per_account, \
         (SELECT count(*) FROM coupon_uses u WHERE u.coupon_id = c.id) AS uses \
         FROM coupons c WHERE c.code = $1",
    )
    .bind(&code)
    .fetch_optional(&mut **c)
    .await)?;
    let Some(coupon) = coupon else {
        return Ok(Err(CouponRefusal::Unknown));
    };
    if coupon.valid_from_ms.is_some_and(|from| now_ms < from) {
        return Ok(Err(CouponRefusal::NotYetValid));
    }
    if coupon.valid_until_ms.is_some_and(|until| now_ms >= until) {
        return Ok(Err(CouponRefusal::Expired));
    }
    if coupon.max_uses > 0 && coupon.uses >= coupon.max_uses {
        return Ok(Err(CouponRefusal::UsedUp));
    }
    let by_account: i64 = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT count(*) FROM coupon_uses WHERE coupon_id = $1 AND account_id = $2",
    )
    .bind(coupon.id)
    .bind(account_id)
    .fetch_one(&mut **c)
    .await)?;
    if coupon.max_uses_per_account > 0 && by_account >= coupon.max_uses_per_account {
        return Ok(Err(CouponRefusal::UsedByAccount));
    }
    Ok(Ok(coupon))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|inner| inner.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_rounded_down_to_the_micro_unit_and_an_amount_added_whole() {
        assert_eq!(coupon_bonus(1_000, 0, 5_000_000), 500_000);
        assert_eq!(coupon_bonus(333, 0, 1_000_001), 33_300);
        assert_eq!(coupon_bonus(0, 1_000_000, 5_000_000), 1_000_000);
    }
}
