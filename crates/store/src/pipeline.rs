//! A call's statements on PostgreSQL, pipelined (issue 19).
//!
//! On PostgreSQL each statement is a round trip to a server process: a call's look-ups, hold,
//! answer checkpoint and settle were 16 of them, each waking the server's backend and the
//! ledger's thread (on a two-vCPU machine those wake-ups cost more than the statements).
//! sqlx sends a statement and waits for its answer before the next can go. Here a call's
//! statements run on a tokio-postgres connection, which lets several go out before the first
//! answer is read: a statement whose answer the ledger does not need ([`Exec::defer`]:
//! `BEGIN`, the account lock, a CDR, a ledger line) waits in the transaction's queue and goes
//! out with the next statement whose answer is needed, or with the `COMMIT`. A hold is then
//! three waits instead of five, a settle three instead of six; an error in a queued
//! statement is reported at that next wait, and the transaction is rolled back.
//!
//! Every other statement (the console's, the CLI's, the heartbeats) stays on sqlx's pool. The
//! pipelined connections are opened from the same URL, with the same TLS ([`crate::pg_tls`]);
//! a URL that sqlx understands and tokio-postgres does not (a parameter of sqlx's own, a
//! client certificate) leaves the calls on sqlx, with a line in the log saying why.
//!
//! [`Exec::defer`]: crate::exec::Exec::defer

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use tracing::{debug, info};

use crate::error::StoreError;
use crate::exec::Arg;
use crate::pg_tls::RustlsConnector;

/// The pipelined connections of one store.
#[derive(Debug)]
pub(crate) struct PgCallPool {
    config: tokio_postgres::Config,
    tls: RustlsConnector,
    idle: std::sync::Mutex<Vec<PgCallConnection>>,
    permits: Arc<Semaphore>,
}

/// A connection and the statements prepared on it.
#[derive(Debug)]
struct PgCallConnection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A statement waiting in a transaction's queue.
#[derive(Debug)]
struct Queued {
    sql: &'static str,
    types: Vec<Type>,
    args: Vec<Param>,
}

/// A parameter owned by the queue (or by the statement about to go).
type Param = Box<dyn ToSql + Sync + Send>;

fn owned_params(args: &[Arg<'_>]) -> Vec<Param> {
    args.iter()
        .map(|arg| -> Param {
            match *arg {
                Arg::Int(value) => Box::new(value),
                Arg::Text(value) => Box::new(value.map(str::to_owned)),
            }
        })
        .collect()
}

/// The types a statement's `$N` are prepared with: as sqlx binds them (`INT8`, `TEXT`).
fn param_types(args: &[Arg<'_>]) -> Vec<Type> {
    args.iter()
        .map(|arg| match arg {
            Arg::Int(_) => Type::INT8,
            Arg::Text(_) => Type::TEXT,
        })
        .collect()
}

impl PgCallPool {
    /// A pool for the sqlx URL `location`, or `None` (with the reason logged) when
    /// tokio-postgres cannot open it the same way or the first connection fails.
    pub(crate) async fn open(location: &str, size: u32) -> Option<Arc<PgCallPool>> {
        let (config, tls) = match config_from_url(location) {
            Ok(opened) => opened,
            Err(reason) => {
                info!(%reason, "a call's statements go through sqlx's pool, one at a time");
                return None;
            }
        };
        let pool = Arc::new(PgCallPool {
            config,
            tls,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1) as usize)),
        });
        match pool.connect().await {
            Ok(connection) => pool.put_back(connection),
            Err(error) => {
                info!(%error, "a call's statements go through sqlx's pool, one at a time");
                return None;
            }
        }
        Some(pool)
    }

    async fn connect(&self) -> Result<PgCallConnection, StoreError> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        // The connection's task lives on the runtime that opened it; when that runtime
        // goes, the client reports itself closed and is not reused.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "a pipelined PostgreSQL connection ended");
            }
        });
        Ok(PgCallConnection {
            client,
            statements: HashMap::new(),
        })
    }

    fn put_back(&self, connection: PgCallConnection) {
        if connection.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(connection);
        }
    }

    fn take_idle(&self) -> Option<PgCallConnection> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(connection) = idle.pop() {
            if !connection.client.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    /// A connection for one call's statements (at most the pool's size at once).
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<PgCall, StoreError> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| {
                StoreError::PipelinedCall("the PostgreSQL call pool is closed".into())
            })?;
        let connection = match self.take_idle() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        Ok(PgCall {
            connection: Some(connection),
            pool: self.clone(),
            _permit: permit,
            queued: Vec::new(),
            in_transaction: false,
        })
    }
}

/// What the last statement of a flight returns.
enum Last {
    Count(u64),
    Rows(Vec<Row>),
}

/// One call's use of a pipelined connection: single statements, or a transaction whose
/// statements that need no answer wait in `queued`.
#[derive(Debug)]
pub(crate) struct PgCall {
    connection: Option<PgCallConnection>,
    pool: Arc<PgCallPool>,
    _permit: OwnedSemaphorePermit,
    queued: Vec<Queued>,
    in_transaction: bool,
}

impl PgCall {
    /// Opens a transaction: its `BEGIN` goes out with the first statement that waits.
    pub(crate) fn begin(&mut self) {
        self.in_transaction = true;
        self.queued.push(Queued {
            sql: "BEGIN",
            types: Vec::new(),
            args: Vec::new(),
        });
    }

    /// A statement whose answer is not needed: queued in a transaction, run at once outside.
    pub(crate) async fn defer(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<(), StoreError> {
        if self.in_transaction {
            self.queued.push(Queued {
                sql,
                types: param_types(args),
                args: owned_params(args),
            });
            return Ok(());
        }
        self.execute(sql, args).await.map(|_| ())
    }

    pub(crate) async fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<u64, StoreError> {
        match self.flight(sql, args, false).await? {
            Last::Count(count) => Ok(count),
            Last::Rows(rows) => Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX)),
        }
    }

    pub(crate) async fn query(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<Row>, StoreError> {
        match self.flight(sql, args, true).await? {
            Last::Rows(rows) => Ok(rows),
            Last::Count(_) => Ok(Vec::new()),
        }
    }

    /// Sends what is queued and the `COMMIT`; returns once the transaction is durable.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.flight("COMMIT", &[], false).await?;
        self.in_transaction = false;
        Ok(())
    }

    fn connection(&mut self) -> Result<&mut PgCallConnection, StoreError> {
        self.connection.as_mut().ok_or_else(|| {
            StoreError::PipelinedCall("the PostgreSQL call connection is gone".into())
        })
    }

    /// Prepares `sql` on this connection once (a round trip, the first time only).
    async fn prepare(&mut self, sql: &'static str, types: &[Type]) -> Result<(), StoreError> {
        let connection = self.connection()?;
        if !connection.statements.contains_key(sql) {
            let statement = connection.client.prepare_typed(sql, types).await?;
            connection.statements.insert(sql, statement);
        }
        Ok(())
    }

    /// The queued statements and `sql`, sent together; then every answer is read, in order.
    /// The first error is the one reported (those after it fail only because the
    /// transaction was aborted).
    async fn flight(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
        rows: bool,
    ) -> Result<Last, StoreError> {
        let queued = std::mem::take(&mut self.queued);
        for waiting in &queued {
            self.prepare(waiting.sql, &waiting.types).await?;
        }
        self.prepare(sql, &param_types(args)).await?;
        let last_params = owned_params(args);
        let connection = self.connection()?;
        let client = &connection.client;
        let statement = |sql: &'static str| {
            connection
                .statements
                .get(sql)
                .ok_or_else(|| StoreError::PipelinedCall(format!("not prepared: {sql}")))
        };
        let mut earlier = Vec::with_capacity(queued.len());
        for waiting in &queued {
            let statement = statement(waiting.sql)?;
            let params = as_params(&waiting.args);
            earlier.push(async move { client.execute(statement, &params).await });
        }
        let last_statement = statement(sql)?;
        let last_params = as_params(&last_params);
        let last = async {
            if rows {
                client
                    .query(last_statement, &last_params)
                    .await
                    .map(Last::Rows)
            } else {
                client
                    .execute(last_statement, &last_params)
                    .await
                    .map(Last::Count)
            }
        };
        // Joined, every request is written before any answer is awaited.
        let (earlier, last) =
            futures_util::future::join(futures_util::future::join_all(earlier), last).await;
        for answer in earlier {
            answer?;
        }
        Ok(last?)
    }
}

fn as_params(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

impl Drop for PgCall {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if !self.in_transaction {
            self.pool.put_back(connection);
            return;
        }
        // A transaction left open (an error, a refusal): roll it back before the connection
        // serves another call; without a runtime, drop it (the server rolls back).
        let pool = self.pool.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if connection.client.batch_execute("ROLLBACK").await.is_ok() {
                    pool.put_back(connection);
                }
            });
        }
    }
}

/// tokio-postgres' configuration and TLS for a URL sqlx accepts: sqlx's `options[NAME]=VALUE`
/// becomes `-c NAME=VALUE`, `sslmode` and `sslrootcert` mean what they mean to sqlx; a
/// parameter tokio-postgres lacks is an error (the calls then stay on sqlx).
fn config_from_url(location: &str) -> Result<(tokio_postgres::Config, RustlsConnector), String> {
    let url = url::Url::parse(location).map_err(|error| error.to_string())?;
    let mut config = tokio_postgres::Config::new();
    let decoded = percent_decoded;
    if !url.username().is_empty() {
        config.user(decoded(url.username()));
    }
    match url.password() {
        Some(password) => {
            config.password(decoded(password));
        }
        None => {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
    }
    // A `host` parameter (a socket directory, say) replaces the URL's host, as in sqlx.
    let host_parameter = url.query_pairs().any(|(key, _)| key == "host");
    if let Some(host) = url
        .host_str()
        .filter(|host| !host.is_empty() && !host_parameter)
    {
        config.host(host.trim_start_matches('[').trim_end_matches(']'));
    }
    config.port(url.port().unwrap_or(5432));
    let database = url.path().trim_start_matches('/');
    if !database.is_empty() {
        config.dbname(decoded(database));
    }
    let mut options = Vec::new();
    let mut sslmode = None;
    let mut root_file = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "host" => {
                config.host(value.as_ref());
            }
            "port" => {
                let port = value.parse().map_err(|_| format!("port {value}"))?;
                config.port(port);
            }
            "user" => {
                config.user(value.as_ref());
            }
            "password" => {
                config.password(value.as_ref());
            }
            "dbname" => {
                config.dbname(value.as_ref());
            }
            "application_name" => {
                config.application_name(value.as_ref());
            }
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => root_file = Some(value.into_owned()),
            "options" => options.push(value.into_owned()),
            other => match other
                .strip_prefix("options[")
                .and_then(|name| name.strip_suffix(']'))
            {
                Some(name) => options.push(format!("-c {name}={value}")),
                None => return Err(format!("the URL parameter {other}")),
            },
        }
    }
    if !options.is_empty() {
        config.options(options.join(" "));
    }
    let local = config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(name) => crate::pg_tls::is_local(name),
    });
    let (mode, check) = crate::pg_tls::mode(sslmode.as_deref(), local)?;
    config.ssl_mode(mode);
    let tls = RustlsConnector::new(check, root_file.as_deref())?;
    Ok((config, tls))
}

/// `%XX` escapes of a URL's user, password or path decoded (a `+` stays a `+`).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{PgCallPool, config_from_url};
    use tokio_postgres::config::SslMode;

    /// The test server's URL (`TALKTIME_TEST_POSTGRES_URL`, as the other PostgreSQL tests).
    fn test_server() -> String {
        std::env::var("TALKTIME_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// The call connections check the server's certificate as the URL says: its own
    /// certificate as the root passes `verify-ca`; another root fails it; `verify-full` to
    /// an address the certificate does not name fails (Debian's certificate names hosts, not
    /// addresses). A pool that cannot open leaves the calls on sqlx (`None`).
    #[test]
    fn verify_modes_check_the_servers_certificate_on_the_call_connections() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = test_server();
        let separator = if server.contains('?') { '&' } else { '?' };
        let with = |parameters: &str| format!("{server}{separator}{parameters}");
        let open = |url: String| runtime.block_on(PgCallPool::open(&url, 1)).is_some();
        let certificate_file = runtime.block_on(async {
            let (config, tls) = config_from_url(&with("sslmode=disable")).expect("the URL");
            let (client, connection) = config.connect(tls).await.expect("the test server");
            tokio::spawn(connection);
            let row = client
                .query_one("SHOW ssl_cert_file", &[])
                .await
                .expect("SHOW");
            row.get::<_, String>(0)
        });
        let data = std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let other_root = format!("{data}/pg-tls-other-root-{}.pem", std::process::id());
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=another root", "-keyout", "/dev/null", "-out"])
            .arg(&other_root)
            .output()
            .expect("openssl");
        assert!(made.status.success());
        assert!(open(with("sslmode=require")));
        assert!(open(with(&format!(
            "sslmode=verify-ca&sslrootcert={certificate_file}"
        ))));
        assert!(!open(with(&format!(
            "sslmode=verify-ca&sslrootcert={other_root}"
        ))));
        assert!(
            !open(with("sslmode=verify-ca")),
            "webpki's roots do not sign it"
        );
        if server.contains("@127.0.0.1") {
            let full = with(&format!(
                "sslmode=verify-full&sslrootcert={certificate_file}"
            ));
            assert!(!open(full), "the certificate does not name 127.0.0.1");
        }
        let _ = std::fs::remove_file(other_root);
    }

    #[test]
    fn sqlx_options_become_server_options_and_tls_means_what_it_means_to_sqlx() {
        let (config, _) = config_from_url(
            "postgres://talk%40time:p%2Fss@127.0.0.1:5433/ledger?options[search_path]=node_a",
        )
        .expect("a plain URL");
        assert_eq!(config.get_user(), Some("talk@time"));
        assert_eq!(config.get_password(), Some(&b"p/ss"[..]));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_dbname(), Some("ledger"));
        assert_eq!(config.get_options(), Some("-c search_path=node_a"));
        let (socket, _) =
            config_from_url("postgres://postgres@localhost/test?host=/var/run/postgresql")
                .expect("a socket directory");
        assert!(matches!(
            socket.get_hosts(),
            [tokio_postgres::config::Host::Unix(path)] if path.as_os_str() == "/var/run/postgresql"
        ));
        let mode = |url: &str| config_from_url(url).map(|(config, _)| config.get_ssl_mode());
        assert_eq!(mode("postgres://postgres@db/test"), Ok(SslMode::Prefer));
        // On this machine `prefer` does not encrypt (as sqlx's pool, `Store::open_with`).
        assert_eq!(
            mode("postgres://postgres@127.0.0.1/test"),
            Ok(SslMode::Disable)
        );
        assert_eq!(mode("postgres://postgres@[::1]/test"), Ok(SslMode::Disable));
        let local_required = "postgres://postgres@localhost/test?sslmode=require";
        assert_eq!(mode(local_required), Ok(SslMode::Require));
        assert_eq!(
            mode("postgres://postgres@db/test?sslmode=allow"),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            mode("postgres://postgres@db/test?sslmode=disable"),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            mode("postgres://postgres@db/test?sslmode=require"),
            Ok(SslMode::Require)
        );
        assert_eq!(
            mode("postgres://postgres@db/test?sslmode=verify-ca"),
            Ok(SslMode::Require)
        );
        assert_eq!(
            mode("postgres://postgres@db/test?sslmode=verify-full"),
            Ok(SslMode::Require)
        );
        assert!(mode("postgres://postgres@db/test?sslmode=maybe").is_err());
        // A root file that is missing, or holds no certificate, is refused, not ignored.
        let missing = "postgres://postgres@db/test?sslmode=verify-full&sslrootcert=/nonexistent";
        assert!(mode(missing).is_err());
        let empty = "postgres://postgres@db/test?sslmode=verify-ca&sslrootcert=/dev/null";
        assert!(mode(empty).is_err());
        // A client certificate is sqlx's alone: the calls stay there.
        assert!(mode("postgres://postgres@db/test?sslcert=/etc/client.pem").is_err());
        assert!(config_from_url("postgres://postgres@db/test?statement-cache-capacity=9").is_err());
    }
}
