//! Carriers and dial plans as the switch routes with them (issue 15): one JSON document per
//! carrier or dial plan, seeded from the TOML at the first start and edited afterwards from
//! the console, the API or the CLI. The store keeps text; the shell owns the types and
//! validates a change before it is written. `routing_version` in `ledger_meta` counts the
//! changes so that every node notices one with a single-row read.

use crate::backend::{Conn, Store, with_conn};
use crate::error::StoreError;

const VERSION_KEY: &str = "routing_version";

/// What a document describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutingKind {
    Carrier,
    DialPlan,
}

impl RoutingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingKind::Carrier => "carrier",
            RoutingKind::DialPlan => "dial_plan",
        }
    }

    fn parse(text: &str) -> Result<RoutingKind, StoreError> {
        match text {
            "carrier" => Ok(RoutingKind::Carrier),
            "dial_plan" => Ok(RoutingKind::DialPlan),
            other => Err(StoreError::Corrupt {
                column: "routing_documents.kind",
                value: other.to_owned(),
            }),
        }
    }
}

/// One carrier or dial plan, as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingDocument {
    pub kind: RoutingKind,
    pub name: String,
    pub document: String,
}

/// Every document, in the order listed, and the version they make up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingSnapshot {
    pub version: i64,
    pub documents: Vec<RoutingDocument>,
}

async fn read_version(conn: &mut Conn<'_>) -> Result<Option<i64>, StoreError> {
    let value: Option<String> = with_conn!(conn, c => sqlx::query_scalar(
        "SELECT value FROM ledger_meta WHERE name = $1",
    )
    .bind(VERSION_KEY)
    .fetch_optional(&mut **c)
    .await)?;
    value
        .map(|text| {
            text.parse::<i64>().map_err(|_| StoreError::Corrupt {
                column: "ledger_meta.routing_version",
                value: text.clone(),
            })
        })
        .transpose()
}

async fn bump_version(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    let value: String = with_conn!(conn, c => sqlx::query_scalar(
        "UPDATE ledger_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) \
         WHERE name = $1 RETURNING value",
    )
    .bind(VERSION_KEY)
    .fetch_one(&mut **c)
    .await)?;
    value.parse().map_err(|_| StoreError::Corrupt {
        column: "ledger_meta.routing_version",
        value,
    })
}

impl Store {
    /// The routing version; `None` until the routing was seeded.
    pub async fn routing_version(&self) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        read_version(&mut conn).await
    }

    /// Every carrier and dial plan with their version; `None` until seeded.
    pub async fn routing_snapshot(&self) -> Result<Option<RoutingSnapshot>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let Some(version) = read_version(&mut conn).await? else {
            return Ok(None);
        };
        let rows: Vec<(String, String, String)> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT kind, name, document FROM routing_documents ORDER BY kind, position",
        )
        .fetch_all(&mut **c)
        .await)?;
        transaction.commit().await?;
        let documents = rows
            .into_iter()
            .map(|(kind, name, document)| {
                Ok(RoutingDocument {
                    kind: RoutingKind::parse(&kind)?,
                    name,
                    document,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(RoutingSnapshot { version, documents }))
    }

    /// Writes the first routing (from the TOML) unless one was seeded already (by this node
    /// earlier, or by another node at the same time); true when these documents were written.
    pub async fn seed_routing(
        &self,
        documents: &[RoutingDocument],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let claimed = with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO ledger_meta (name, value) VALUES ($1, '1') ON CONFLICT (name) DO NOTHING",
        )
        .bind(VERSION_KEY)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if claimed == 0 {
            return Ok(false); // dropping the transaction rolls it back
        }
        for (position, document) in documents.iter().enumerate() {
            insert_document(&mut conn, document, position as i64, now_ms).await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Replaces every document (the TOML read again by `talktime routing reseed`); returns
    /// the new routing version.
    pub async fn replace_routing(
        &self,
        documents: &[RoutingDocument],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        with_conn!(&mut conn, c => sqlx::query("DELETE FROM routing_documents")
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        for (position, document) in documents.iter().enumerate() {
            insert_document(&mut conn, document, position as i64, now_ms).await?;
        }
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO ledger_meta (name, value) VALUES ($1, '0') ON CONFLICT (name) DO NOTHING",
        )
        .bind(VERSION_KEY)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        let version = bump_version(&mut conn).await?;
        transaction.commit().await?;
        Ok(version)
    }

    /// Adds or replaces one document (a replaced one keeps its place); returns the new
    /// routing version.
    pub async fn put_routing_document(
        &self,
        document: &RoutingDocument,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        if read_version(&mut conn).await?.is_none() {
            return Err(StoreError::InvalidArgument(
                "the routing was never seeded: start the switch once".into(),
            ));
        }
        let updated = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE routing_documents SET document = $3, updated_at_ms = $4 \
             WHERE kind = $1 AND name = $2",
        )
        .bind(document.kind.as_str())
        .bind(&document.name)
        .bind(&document.document)
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if updated == 0 {
            let last: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
                "SELECT MAX(position) FROM routing_documents WHERE kind = $1",
            )
            .bind(document.kind.as_str())
            .fetch_one(&mut **c)
            .await)?;
            let position = last.map_or(0, |last| last + 1);
            insert_document(&mut conn, document, position, now_ms).await?;
        }
        let version = bump_version(&mut conn).await?;
        transaction.commit().await?;
        Ok(version)
    }

    /// Removes one document; `Ok(None)` when there was none, else the new routing version.
    pub async fn delete_routing_document(
        &self,
        kind: RoutingKind,
        name: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut conn = transaction.conn();
        let deleted = with_conn!(&mut conn, c => sqlx::query(
            "DELETE FROM routing_documents WHERE kind = $1 AND name = $2",
        )
        .bind(kind.as_str())
        .bind(name)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if deleted == 0 {
            return Ok(None);
        }
        let version = bump_version(&mut conn).await?;
        transaction.commit().await?;
        Ok(Some(version))
    }
}

async fn insert_document(
    conn: &mut Conn<'_>,
    document: &RoutingDocument,
    position: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    with_conn!(conn, c => sqlx::query(
        "INSERT INTO routing_documents (kind, name, position, document, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(document.kind.as_str())
    .bind(&document.name)
    .bind(position)
    .bind(&document.document)
    .bind(now_ms)
    .execute(&mut **c)
    .await
    .map(|_| ()))?;
    Ok(())
}
