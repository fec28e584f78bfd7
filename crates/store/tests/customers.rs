//! The customer portal's logins and sessions (issue 22), on SQLite and PostgreSQL: a login is
//! claimed once (a second claim changes nothing), the operator may replace it (and that ends
//! the account's sessions), sessions are found by their hash only.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use talktime_store::*;

const NOW: i64 = 1_700_000_000_000;

ledger_test!(
    a_portal_login_is_claimed_once_and_reset_by_the_operator,
    |store| {
        let account = store
            .create_account(&NewAccount::new("holder", "USD"), NOW)
            .await
            .unwrap()
            .id;
        assert_eq!(store.customer_password_hash(account).await.unwrap(), None);
        assert!(
            store
                .create_customer_login(account, "hash-1", NOW)
                .await
                .unwrap()
        );
        // Whoever comes second with the same card cannot replace the holder's password.
        assert!(
            !store
                .create_customer_login(account, "hash-2", NOW)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .customer_password_hash(account)
                .await
                .unwrap()
                .as_deref(),
            Some("hash-1")
        );

        store
            .create_customer_session("token-hash", account, "csrf", NOW)
            .await
            .unwrap();
        let session = store.customer_session("token-hash").await.unwrap().unwrap();
        assert_eq!(session.account_id, account);
        assert_eq!(session.csrf_token, "csrf");
        assert_eq!(store.customer_session("other").await.unwrap(), None);
        store
            .touch_customer_session("token-hash", NOW + 5)
            .await
            .unwrap();
        let session = store.customer_session("token-hash").await.unwrap().unwrap();
        assert_eq!(session.last_seen_ms, NOW + 5);

        // The operator's new password replaces the hash and ends the sessions.
        store
            .set_customer_password(account, "hash-3", NOW)
            .await
            .unwrap();
        assert_eq!(
            store
                .customer_password_hash(account)
                .await
                .unwrap()
                .as_deref(),
            Some("hash-3")
        );
        assert_eq!(store.customer_session("token-hash").await.unwrap(), None);
        // An account that does not exist has no password to set.
        assert!(
            store
                .set_customer_password(account + 1000, "x", NOW)
                .await
                .is_err()
        );

        store
            .create_customer_session("second", account, "csrf", NOW)
            .await
            .unwrap();
        store.delete_customer_session("second").await.unwrap();
        assert_eq!(store.customer_session("second").await.unwrap(), None);
    }
);
