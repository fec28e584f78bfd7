//! Customer self-service (issue 22): self sign-up into a reseller's tree, caller IDs a customer
//! registers for pinless calls once the phone proves itself with a code, and referral rewards
//! paid once, in the transaction of the newcomer's first paid recharge.

use talktime_pii::Pii;

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;
use crate::ledger::{Posting, fetch_account, insert_account, post};
use crate::model::{NewAccount, TransactionKind};

/// A self sign-up.
#[derive(Clone, Debug)]
pub struct SignUp<'a> {
    pub name: &'a str,
    /// The login and the address of the account's mails.
    pub email: &'a Pii<String>,
    /// The password's hash (the store never sees a password).
    pub password_hash: &'a str,
    /// The account's currency when it has no reseller (a reseller's customer takes its
    /// reseller's).
    pub currency: &'a str,
    pub reseller_id: Option<i64>,
    /// The referral code the newcomer was given, if any.
    pub referred_by_code: Option<&'a str>,
    /// The newcomer's own referral code (random, made by the caller).
    pub own_referral_code: &'a str,
}

/// What a sign-up did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignUpOutcome {
    Created {
        account_id: i64,
    },
    /// An account logs in with this address already.
    EmailTaken,
    /// No customer has the referral code given (nothing was created).
    UnknownReferral,
}

/// A caller ID waiting for its phone's confirmation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdClaim {
    pub number: Pii<String>,
    pub expires_at_ms: i64,
}

/// What a referral pays in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralRewards {
    pub currency: String,
    pub referrer_micros: i64,
    pub newcomer_micros: i64,
}

/// The login form of an e-mail address: trimmed, lower case.
pub fn login_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    /// Creates a pinless account with a portal login by e-mail, under `reseller_id` if given,
    /// its referral code, and the referral if it names a customer's code; one transaction.
    pub async fn sign_up(
        &self,
        sign_up: &SignUp<'_>,
        now_ms: i64,
    ) -> Result<SignUpOutcome, StoreError> {
        let email = login_email(sign_up.email.expose());
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let taken: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT account_id FROM customer_logins WHERE email = $1",
        )
        .bind(&email)
        .fetch_optional(&mut **c)
        .await)?;
        if taken.is_some() {
            return Ok(SignUpOutcome::EmailTaken);
        }
        let referrer = match sign_up.referred_by_code {
            Some(code) => match referral_owner(&mut conn, code).await? {
                Some(referrer) => Some(referrer),
                None => return Ok(SignUpOutcome::UnknownReferral),
            },
            None => None,
        };
        let currency = match sign_up.reseller_id {
            Some(reseller_id) => crate::resellers::fetch_reseller(&mut conn, reseller_id)
                .await?
                .currency
                .clone(),
            None => sign_up.currency.to_owned(),
        };
        let account_id =
            insert_account(&mut conn, &NewAccount::new(sign_up.name, currency), now_ms).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE accounts SET reseller_id = $2, email = $3 WHERE id = $1",
        )
        .bind(account_id)
        .bind(sign_up.reseller_id)
        .bind(&email)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO customer_logins (account_id, password_hash, created_at_ms, email) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(account_id)
        .bind(sign_up.password_hash)
        .bind(now_ms)
        .bind(&email)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO referral_codes (code, account_id) VALUES ($1, $2)",
        )
        .bind(sign_up.own_referral_code)
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        if let Some(referrer_id) = referrer {
            with_conn!(&mut conn, c => sqlx::query(
                "INSERT INTO referrals (account_id, referrer_id, created_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(account_id)
            .bind(referrer_id)
            .bind(now_ms)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        }
        transaction.commit().await?;
        Ok(SignUpOutcome::Created { account_id })
    }

    /// The account whose portal login is this e-mail address.
    pub async fn account_by_login_email(&self, email: &str) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let account: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT account_id FROM customer_logins WHERE email = $1",
        )
        .bind(login_email(email))
        .fetch_optional(&mut **c)
        .await)?;
        Ok(account)
    }

    /// An account's referral code, given `candidate` first if it has none (a card holder's
    /// account gets one at its first portal visit).
    pub async fn referral_code(
        &self,
        account_id: i64,
        candidate: &str,
    ) -> Result<String, StoreError> {
        if let Some(code) = self.existing_referral_code(account_id).await? {
            return Ok(code);
        }
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO referral_codes (code, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(candidate)
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        let code: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT code FROM referral_codes WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        code.ok_or_else(|| {
            StoreError::InvalidArgument("the referral code was taken: try again".into())
        })
    }

    async fn existing_referral_code(&self, account_id: i64) -> Result<Option<String>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let code: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT code FROM referral_codes WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(code)
    }

    /// Sets what a referral pays in `currency` (both sides; zero pays nothing).
    pub async fn set_referral_rewards(&self, rewards: &ReferralRewards) -> Result<(), StoreError> {
        crate::ledger::check_amount(rewards.referrer_micros)?;
        crate::ledger::check_amount(rewards.newcomer_micros)?;
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO referral_rewards (currency, referrer_micros, newcomer_micros) \
             VALUES ($1, $2, $3) ON CONFLICT (currency) DO UPDATE SET \
             referrer_micros = excluded.referrer_micros, newcomer_micros = excluded.newcomer_micros",
        )
        .bind(&rewards.currency)
        .bind(rewards.referrer_micros)
        .bind(rewards.newcomer_micros)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The referral rewards of every currency.
    pub async fn referral_rewards(&self) -> Result<Vec<ReferralRewards>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(String, i64, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT currency, referrer_micros, newcomer_micros FROM referral_rewards \
             ORDER BY currency",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(currency, referrer_micros, newcomer_micros)| ReferralRewards {
                    currency,
                    referrer_micros,
                    newcomer_micros,
                },
            )
            .collect())
    }

    /// Registers `number` to `account_id` once a call from it keys `code` before
    /// `expires_at_ms` (a second claim of the same number by the same account replaces the
    /// first).
    pub async fn claim_caller_id(
        &self,
        account_id: i64,
        number: &Pii<String>,
        code: &Pii<String>,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let code_hash = self.claim_hash(number, code);
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        fetch_account(&mut conn.exec(), account_id).await?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO caller_id_claims (number, account_id, code_hash, expires_at_ms, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number, account_id) \
             DO UPDATE SET code_hash = excluded.code_hash, expires_at_ms = excluded.expires_at_ms, \
             created_at_ms = excluded.created_at_ms",
        )
        .bind(number.expose())
        .bind(account_id)
        .bind(&code_hash)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// A call from `number` keyed `code`: if it is a live claim's code, the number is now the
    /// claiming account's caller ID (taken from any earlier owner: the phone proved itself),
    /// the number's claims are gone, and the account is returned.
    pub async fn confirm_caller_id(
        &self,
        number: &Pii<String>,
        code: &Pii<String>,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let code_hash = self.claim_hash(number, code);
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let account: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT account_id FROM caller_id_claims WHERE number = $1 AND code_hash = $2 \
             AND expires_at_ms > $3",
        )
        .bind(number.expose())
        .bind(&code_hash)
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(account_id) = account else {
            return Ok(None);
        };
        with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM caller_id_claims WHERE number = $1",
        )
        .bind(number.expose())
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO caller_ids (number, account_id, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (number) DO UPDATE SET account_id = excluded.account_id, \
             created_at_ms = excluded.created_at_ms",
        )
        .bind(number.expose())
        .bind(account_id)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        transaction.commit().await?;
        Ok(Some(account_id))
    }

    /// A one-time portal login code read out to a call from `number` on `account_id` (`*01`),
    /// replacing the number's earlier one.
    pub async fn issue_portal_code(
        &self,
        account_id: i64,
        number: &Pii<String>,
        code: &Pii<String>,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let code_hash = self.portal_code_hash(number, code);
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO portal_login_codes (number, account_id, code_hash, expires_at_ms, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number) DO UPDATE SET \
             account_id = excluded.account_id, code_hash = excluded.code_hash, \
             expires_at_ms = excluded.expires_at_ms, created_at_ms = excluded.created_at_ms",
        )
        .bind(number.expose())
        .bind(account_id)
        .bind(&code_hash)
        .bind(expires_at_ms)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// A portal login with a phone: the account of `number`'s live code if `code` is it. The
    /// code is used up either way it matches (one login a code).
    pub async fn use_portal_code(
        &self,
        number: &Pii<String>,
        code: &Pii<String>,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let code_hash = self.portal_code_hash(number, code);
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let account: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "DELETE FROM portal_login_codes WHERE number = $1 AND code_hash = $2 \
             AND expires_at_ms > $3 RETURNING account_id",
        )
        .bind(number.expose())
        .bind(&code_hash)
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(account)
    }

    /// An account's claims still waiting for their call, by number.
    pub async fn caller_id_claims(
        &self,
        account_id: i64,
        now_ms: i64,
    ) -> Result<Vec<CallerIdClaim>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<(String, i64)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT number, expires_at_ms FROM caller_id_claims \
             WHERE account_id = $1 AND expires_at_ms > $2 ORDER BY number",
        )
        .bind(account_id)
        .bind(now_ms)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(number, expires_at_ms)| CallerIdClaim {
                number: Pii::new(number),
                expires_at_ms,
            })
            .collect())
    }

    /// Removes one of an account's own caller IDs (and a claim of it); false when the number
    /// is not the account's.
    pub async fn remove_own_caller_id(
        &self,
        account_id: i64,
        number: &Pii<String>,
    ) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let claims = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM caller_id_claims WHERE number = $1 AND account_id = $2",
        )
        .bind(number.expose())
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        let numbers = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM caller_ids WHERE number = $1 AND account_id = $2",
        )
        .bind(number.expose())
        .bind(account_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(claims + numbers > 0)
    }

    /// The key a portal login code is kept under (apart from claims' by its prefix).
    fn portal_code_hash(&self, number: &Pii<String>, code: &Pii<String>) -> String {
        self.pin_hash(&Pii::new(format!(
            "portal:{}:{}",
            number.expose(),
            code.expose()
        )))
    }

    /// The key a claim's code is kept under: the PIN key's HMAC of number and code.
    fn claim_hash(&self, number: &Pii<String>, code: &Pii<String>) -> String {
        self.pin_hash(&Pii::new(format!(
            "claim:{}:{}",
            number.expose(),
            code.expose()
        )))
    }
}

async fn referral_owner(conn: &mut Conn<'_>, code: &str) -> Result<Option<i64>, StoreError> {
    let owner: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT account_id FROM referral_codes WHERE code = $1",
    )
    .bind(code.trim().to_uppercase())
    .fetch_optional(&mut **c)
    .await)?;
    Ok(owner)
}

/// After a paid recharge of `account_id`, in its transaction: if the account was referred and
/// not rewarded yet, marks it rewarded and pays both sides their currency's rewards (each line
/// keyed by the newcomer, so it is posted once however often this runs). Returns the
/// newcomer's balance after its reward when one was credited (what to announce).
pub(crate) async fn reward_referral_in(
    conn: &mut Conn<'_>,
    account_id: i64,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let referrer: Option<i64> = with_conn!(conn, c => sqlx::query_scalar(
        "UPDATE referrals SET rewarded_at_ms = $2 WHERE account_id = $1 \
         AND rewarded_at_ms IS NULL RETURNING referrer_id",
    )
    .bind(account_id)
    .bind(now_ms)
    .fetch_optional(&mut **c)
    .await)?;
    let Some(referrer_id) = referrer else {
        return Ok(None);
    };
    let newcomer = fetch_account(&mut conn.exec(), account_id).await?;
    let referrer = fetch_account(&mut conn.exec(), referrer_id).await?;
    let newcomer_reward = rewards_in(conn, &newcomer.currency)
        .await?
        .map_or(0, |rewards| rewards.newcomer_micros);
    let referrer_reward = rewards_in(conn, &referrer.currency)
        .await?
        .map_or(0, |rewards| rewards.referrer_micros);
    let reference = format!("referral of account {account_id}");
    let mut newcomer_balance = None;
    for (to, amount_micros, key) in [
        (
            account_id,
            newcomer_reward,
            format!("referral:newcomer:{account_id}"),
        ),
        (
            referrer_id,
            referrer_reward,
            format!("referral:referrer:{account_id}"),
        ),
    ] {
        if amount_micros > 0 {
            let balance = post(
                &mut conn.exec(),
                Posting {
                    account_id: to,
                    kind: TransactionKind::Referral,
                    amount_micros,
                    call_id: None,
                    reference: Some(&reference),
                    idempotency_key: Some(&key),
                    now_ms,
                },
            )
            .await?;
            if to == account_id {
                newcomer_balance = Some(balance);
            }
        }
    }
    Ok(newcomer_balance)
}

async fn rewards_in(
    conn: &mut Conn<'_>,
    currency: &str,
) -> Result<Option<ReferralRewards>, StoreError> {
    let row: Option<(i64, i64)> = with_conn!(conn, c => sqlx::query_as(
        "SELECT referrer_micros, newcomer_micros FROM referral_rewards WHERE currency = $1",
    )
    .bind(currency)
    .fetch_optional(&mut **c)
    .await)?;
    Ok(
        row.map(|(referrer_micros, newcomer_micros)| ReferralRewards {
            currency: currency.to_owned(),
            referrer_micros,
            newcomer_micros,
        }),
    )
}
