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

ledger_test!(the_board_shows_a_customer_what_is_meant_for_them, |store| {
    let reseller = store
        .add_reseller(
            &NewReseller {
                name: "shop".into(),
                parent_id: None,
                currency: "USD".into(),
                tariff_id: None,
                credit_limit_micros: 0,
                concurrency_limit: 0,
                max_depth: 3,
                sell_tariff_id: None,
                min_margin_percent: 0,
            },
            NOW,
        )
        .await
        .unwrap()
        .id;
    let direct = store
        .create_account(&NewAccount::new("direct", "USD"), NOW)
        .await
        .unwrap()
        .id;
    let shops = store
        .create_account(&NewAccount::new("shop's", "USD"), NOW)
        .await
        .unwrap()
        .id;
    store
        .set_account_reseller(shops, Some(reseller))
        .await
        .unwrap();
    let everyone = store
        .post_portal_message("New rates", "Cheaper calls to Mexico.", None, None, NOW)
        .await
        .unwrap();
    let shop_only = store
        .post_portal_message(
            "Shop news",
            "Open on Sundays.",
            Some(reseller),
            None,
            NOW + 1,
        )
        .await
        .unwrap();
    let gone = store
        .post_portal_message("Old", "Past.", None, Some(NOW + 10), NOW + 2)
        .await
        .unwrap();
    let ids = |rows: Vec<PortalMessage>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.portal_messages_for(direct, NOW + 5).await.unwrap()),
        vec![gone, everyone]
    );
    assert_eq!(
        ids(store.portal_messages_for(shops, NOW + 5).await.unwrap()),
        vec![gone, shop_only, everyone]
    );
    assert_eq!(
        ids(store.portal_messages_for(shops, NOW + 10).await.unwrap()),
        vec![shop_only, everyone]
    );
    assert!(
        store
            .post_portal_message(" ", "x", None, None, NOW)
            .await
            .is_err()
    );
    assert!(store.remove_portal_message(shop_only).await.unwrap());
    assert!(!store.remove_portal_message(shop_only).await.unwrap());
    assert_eq!(store.portal_messages().await.unwrap().len(), 2);
});
