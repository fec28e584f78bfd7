//! Tariffs, their rates, longest-prefix rate lookup and the streaming CSV import.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use sqlx::QueryBuilder;
use talktime_pii::Pii;

use crate::backend::{Conn, Store, WriteTx, with_conn};
use crate::error::StoreError;
use crate::model::{Rate, Tariff};
use talktime_billing::parse_micros;

/// Columns of a tariff CSV, in the documented order (the header may order them differently).
pub const TARIFF_CSV_COLUMNS: [&str; 7] = [
    "prefix",
    "description",
    "sell_rate",
    "buy_rate",
    "initial_block",
    "increment",
    "connection_fee",
];

/// Rows per multi-row INSERT (8 binds a row stays well under SQLite's 32,766 limit).
const DEFAULT_BATCH_ROWS: usize = 1_000;

/// How [`Store::import_tariff_csv`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Validate only; write nothing.
    pub dry_run: bool,
    /// All or nothing: one transaction, rolled back if any row is wrong. Otherwise good rows
    /// are written in their own short transactions (batches) and bad rows are reported.
    pub atomic: bool,
    /// Rows per INSERT statement.
    pub batch_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            atomic: false,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// One rejected row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault, when one is.
    pub column: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(formatter, "line {}, {column}: {}", self.line, self.message),
            None => write!(formatter, "line {}: {}", self.line, self.message),
        }
    }
}

/// The outcome of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Data rows read (header excluded).
    pub rows_read: u64,
    /// Rows that passed validation.
    pub rows_valid: u64,
    /// Rows inserted or updated in the database (0 for a dry run or a failed atomic import).
    pub rows_written: u64,
    /// Rejected rows, in file order.
    pub errors: Vec<RowError>,
}

#[derive(sqlx::FromRow)]
struct TariffRow {
    id: i64,
    name: String,
    currency: String,
    settings_json: String,
    created_at_ms: i64,
}

impl From<TariffRow> for Tariff {
    fn from(row: TariffRow) -> Self {
        Tariff {
            id: row.id,
            name: row.name,
            currency: row.currency,
            settings_json: row.settings_json,
            created_at_ms: row.created_at_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RateRow {
    tariff_id: i64,
    prefix: String,
    description: String,
    sell_rate_micros: i64,
    buy_rate_micros: i64,
    initial_block_s: i64,
    increment_s: i64,
    connection_fee_micros: i64,
    extras_json: String,
}

impl From<RateRow> for Rate {
    fn from(row: RateRow) -> Self {
        Rate {
            tariff_id: row.tariff_id,
            prefix: row.prefix,
            description: row.description,
            sell_rate_micros: row.sell_rate_micros,
            buy_rate_micros: row.buy_rate_micros,
            initial_block_s: row.initial_block_s,
            increment_s: row.increment_s,
            connection_fee_micros: row.connection_fee_micros,
            extras_json: row.extras_json,
        }
    }
}

/// Reads one row's optional cells (name, text) into the rate's extras JSON, or names the
/// column at fault and why.
pub type RateExtrasParser =
    dyn Fn(&[(&'static str, &str)]) -> Result<String, (&'static str, String)> + Sync;

/// The optional columns a tariff CSV may carry beyond the seven, and how a row's cells of
/// them become the rate's `extras_json`. The store does not know their meaning: the billing
/// crate does (`RateExtras`), and the caller of the import passes it in.
pub struct RateExtrasColumns<'a> {
    /// Accepted optional column names.
    pub names: &'a [&'static str],
    /// The row's optional cells as JSON.
    pub parse: &'a RateExtrasParser,
}

impl fmt::Debug for RateExtrasColumns<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_list().entries(self.names).finish()
    }
}

/// Positions of the required columns in the header, and of the optional ones present.
struct ColumnMap {
    required: [usize; 7],
    optional: Vec<(&'static str, usize)>,
}

impl ColumnMap {
    fn from_header(
        header: &csv::StringRecord,
        extras: Option<&RateExtrasColumns<'_>>,
    ) -> Result<Self, StoreError> {
        let mut required = [0; 7];
        for (slot, name) in required.iter_mut().zip(TARIFF_CSV_COLUMNS) {
            *slot = header
                .iter()
                .position(|field| field.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| StoreError::CsvHeader(format!("missing column {name:?}")))?;
        }
        let known = extras.map_or(&[][..], |extras| extras.names);
        let mut optional = Vec::new();
        for (position, field) in header.iter().enumerate() {
            let field = field.trim();
            if TARIFF_CSV_COLUMNS
                .iter()
                .any(|name| field.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let name = known
                .iter()
                .find(|name| field.eq_ignore_ascii_case(name))
                .ok_or_else(|| StoreError::CsvHeader(format!("unknown column {field:?}")))?;
            optional.push((*name, position));
        }
        Ok(Self { required, optional })
    }
}

fn parse_rate_row(
    tariff_id: i64,
    record: &csv::StringRecord,
    columns: &ColumnMap,
    extras: Option<&RateExtrasColumns<'_>>,
    line: u64,
) -> Result<Rate, RowError> {
    let error = |column: &'static str, message: String| RowError {
        line,
        column: Some(column),
        message,
    };
    let mut fields = [""; 7];
    for ((field, position), name) in fields
        .iter_mut()
        .zip(columns.required)
        .zip(TARIFF_CSV_COLUMNS)
    {
        *field = record
            .get(position)
            .ok_or_else(|| error(name, format!("missing ({} of 7 fields)", record.len())))?
            .trim();
    }
    let [
        prefix,
        description,
        sell,
        buy,
        initial_block,
        increment,
        fee,
    ] = fields;
    if prefix.is_empty() {
        return Err(error("prefix", "empty".to_owned()));
    }
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("prefix", format!("{prefix:?} is not all digits")));
    }
    let money = |column: &'static str, text: &str| match parse_micros(text) {
        Ok(micros) if micros < 0 => Err(error(column, format!("{text:?} is negative"))),
        Ok(micros) => Ok(micros),
        Err(reason) => Err(error(column, reason.to_string())),
    };
    let seconds = |column: &'static str, text: &str, minimum: i64| match text.parse::<i64>() {
        Ok(value) if (minimum..=86_400).contains(&value) => Ok(value),
        Ok(value) => Err(error(
            column,
            format!("{value} is outside {minimum}..=86400"),
        )),
        Err(_) => Err(error(
            column,
            format!("{text:?} is not a whole number of seconds"),
        )),
    };
    let cells: Vec<(&'static str, &str)> = columns
        .optional
        .iter()
        .map(|(name, position)| (*name, record.get(*position).unwrap_or("")))
        .collect();
    let extras_json = match extras {
        Some(extras) if !cells.is_empty() => {
            (extras.parse)(&cells).map_err(|(column, message)| error(column, message))?
        }
        _ => "{}".to_owned(),
    };
    Ok(Rate {
        tariff_id,
        prefix: prefix.to_owned(),
        description: description.to_owned(),
        sell_rate_micros: money("sell_rate", sell)?,
        buy_rate_micros: money("buy_rate", buy)?,
        initial_block_s: seconds("initial_block", initial_block, 0)?,
        increment_s: seconds("increment", increment, 1)?,
        connection_fee_micros: money("connection_fee", fee)?,
        extras_json,
    })
}

/// Inserts or replaces a batch of rates with one multi-row statement.
async fn upsert_rates(conn: &mut Conn<'_>, rates: &[Rate]) -> Result<u64, StoreError> {
    if rates.is_empty() {
        return Ok(0);
    }
    let result = with_conn!(conn, c => {
        let mut builder = QueryBuilder::new(
            "INSERT INTO rates (tariff_id, prefix, description, sell_rate_micros, \
             buy_rate_micros, initial_block_s, increment_s, connection_fee_micros, extras_json) ",
        );
        builder.push_values(rates, |mut row, rate| {
            row.push_bind(rate.tariff_id)
                .push_bind(rate.prefix.clone())
                .push_bind(rate.description.clone())
                .push_bind(rate.sell_rate_micros)
                .push_bind(rate.buy_rate_micros)
                .push_bind(rate.initial_block_s)
                .push_bind(rate.increment_s)
                .push_bind(rate.connection_fee_micros)
                .push_bind(rate.extras_json.clone());
        });
        builder.push(
            " ON CONFLICT (tariff_id, prefix) DO UPDATE SET description = excluded.description, \
             sell_rate_micros = excluded.sell_rate_micros, \
             buy_rate_micros = excluded.buy_rate_micros, \
             initial_block_s = excluded.initial_block_s, increment_s = excluded.increment_s, \
             connection_fee_micros = excluded.connection_fee_micros, \
             extras_json = excluded.extras_json",
        );
        builder.build().execute(&mut **c).await.map(|done| done.rows_affected())
    })?;
    Ok(result)
}

impl Store {
    /// Creates a tariff. `settings_json` is stored as given.
    pub async fn create_tariff(
        &self,
        name: &str,
        currency: &str,
        settings_json: &str,
        now_ms: i64,
    ) -> Result<Tariff, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let row: TariffRow = with_conn!(&mut conn, c => sqlx::query_as(
            "INSERT INTO tariffs (name, currency, settings_json, created_at_ms) \
             VALUES ($1, $2, $3, $4) \
             RETURNING id, name, currency, settings_json, created_at_ms",
        )
        .bind(name)
        .bind(currency)
        .bind(settings_json)
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        Ok(row.into())
    }

    /// A tariff by id.
    pub async fn tariff(&self, tariff_id: i64) -> Result<Tariff, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<TariffRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, name, currency, settings_json, created_at_ms FROM tariffs WHERE id = $1",
        )
        .bind(tariff_id)
        .fetch_optional(&mut **c)
        .await)?;
        row.map(Tariff::from)
            .ok_or_else(|| StoreError::not_found("tariff", tariff_id))
    }

    /// A tariff by its unique name.
    pub async fn tariff_by_name(&self, name: &str) -> Result<Option<Tariff>, StoreError> {
        // Every call on the default tariff asks: a call's read.
        let mut read = self.acquire_call_read().await?;
        let row: Option<(i64, String, String, String, i64)> = read
            .exec()
            .fetch_optional(
                "SELECT id, name, currency, settings_json, created_at_ms FROM tariffs \
                 WHERE name = $1",
                &[name.into()],
            )
            .await?;
        Ok(
            row.map(|(id, name, currency, settings_json, created_at_ms)| {
                Tariff::from(TariffRow {
                    id,
                    name,
                    currency,
                    settings_json,
                    created_at_ms,
                })
            }),
        )
    }

    /// Every tariff, by name.
    pub async fn tariffs(&self) -> Result<Vec<Tariff>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<TariffRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT id, name, currency, settings_json, created_at_ms FROM tariffs ORDER BY name",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Tariff::from).collect())
    }

    /// Replaces a tariff's settings JSON.
    pub async fn set_tariff_settings(
        &self,
        tariff_id: i64,
        settings_json: &str,
    ) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let result = with_conn!(&mut conn, c => sqlx::query(
            "UPDATE tariffs SET settings_json = $1 WHERE id = $2",
        )
        .bind(settings_json)
        .bind(tariff_id)
        .execute(&mut **c)
        .await
        .map(|done| done.rows_affected()))?;
        if result == 0 {
            return Err(StoreError::not_found("tariff", tariff_id));
        }
        Ok(())
    }

    /// All rates of a tariff, by prefix.
    pub async fn rates(&self, tariff_id: i64) -> Result<Vec<Rate>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<RateRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT tariff_id, prefix, description, sell_rate_micros, buy_rate_micros, \
             initial_block_s, increment_s, connection_fee_micros, extras_json FROM rates \
             WHERE tariff_id = $1 ORDER BY prefix",
        )
        .bind(tariff_id)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Rate::from).collect())
    }

    /// A page of a tariff's rates in prefix order: those starting with `search` (digits; empty
    /// for all) after the prefix `after`, at most `limit` (keyset paging on the (tariff,
    /// prefix) index: deep pages cost what the first does).
    pub async fn rates_page(
        &self,
        tariff_id: i64,
        search: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Rate>, StoreError> {
        if !(0..=1_000).contains(&limit) {
            return Err(StoreError::InvalidArgument(format!(
                "a rate page holds 0 to 1000 rows, not {limit}"
            )));
        }
        if !search.chars().all(|c| c.is_ascii_digit()) {
            return Err(StoreError::InvalidArgument(format!(
                "{search:?} is not a digit prefix"
            )));
        }
        let upper = digits_after(search);
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<RateRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT tariff_id, prefix, description, sell_rate_micros, buy_rate_micros, \
             initial_block_s, increment_s, connection_fee_micros, extras_json FROM rates \
             WHERE tariff_id = $1 AND prefix >= $2 \
             AND (CAST($3 AS TEXT) IS NULL OR prefix < $3) AND prefix > $4 \
             ORDER BY prefix LIMIT $5",
        )
        .bind(tariff_id)
        .bind(search)
        .bind(upper.as_deref())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows.into_iter().map(Rate::from).collect())
    }

    /// Number of rates in a tariff.
    pub async fn rate_count(&self, tariff_id: i64) -> Result<i64, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let count: i64 = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM rates WHERE tariff_id = $1",
        )
        .bind(tariff_id)
        .fetch_one(&mut **c)
        .await)?;
        Ok(count)
    }

    /// The rate with the longest prefix of `destination` (digits; other characters such as a
    /// leading `+` are ignored), using the (tariff, prefix) index.
    pub async fn find_rate(
        &self,
        tariff_id: i64,
        destination: &Pii<String>,
    ) -> Result<Option<Rate>, StoreError> {
        let digits: String = destination
            .expose()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if digits.is_empty() {
            return Ok(None);
        }
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: Option<RateRow> = with_conn!(&mut conn, c => {
            let mut builder = QueryBuilder::new(
                "SELECT tariff_id, prefix, description, sell_rate_micros, buy_rate_micros, \
                 initial_block_s, increment_s, connection_fee_micros, extras_json FROM rates \
                 WHERE tariff_id = ",
            );
            builder.push_bind(tariff_id).push(" AND prefix IN (");
            let mut list = builder.separated(", ");
            for end in 1..=digits.len() {
                list.push_bind(digits[..end].to_owned());
            }
            builder.push(") ORDER BY LENGTH(prefix) DESC LIMIT 1");
            builder.build_query_as().fetch_optional(&mut **c).await
        })?;
        Ok(row.map(Rate::from))
    }

    /// Streams a rate CSV (header: prefix,description,sell_rate,buy_rate,initial_block,
    /// increment,connection_fee; decimals exact to 6 places) into a tariff. A prefix already
    /// in the tariff is updated; a prefix repeated within the file is an error on the later
    /// line. Bad rows are reported with line and column; see [`ImportOptions`] for dry runs and
    /// all-or-nothing imports. The reader is read synchronously between batch inserts.
    pub async fn import_tariff_csv<R: Read>(
        &self,
        tariff_id: i64,
        reader: R,
        options: ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        self.import_tariff_csv_with(tariff_id, reader, options, None)
            .await
    }

    /// [`Store::import_tariff_csv`] that also takes the optional columns `extras` names; any
    /// other column is an error naming it.
    pub async fn import_tariff_csv_with<R: Read>(
        &self,
        tariff_id: i64,
        reader: R,
        options: ImportOptions,
        extras: Option<&RateExtrasColumns<'_>>,
    ) -> Result<ImportReport, StoreError> {
        self.tariff(tariff_id).await?;
        let batch_rows = options.batch_rows.max(1);
        let mut csv_reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(LfLines::new(reader));
        let mut record = csv::StringRecord::new();
        if !csv_reader.read_record(&mut record)? {
            return Err(StoreError::CsvHeader("empty file".into()));
        }
        let columns = ColumnMap::from_header(&record, extras)?;
        let mut report = ImportReport::default();
        let mut first_seen: HashMap<String, u64> = HashMap::new();
        let mut batch: Vec<Rate> = Vec::with_capacity(batch_rows);
        let mut atomic_transaction: Option<WriteTx> = None;
        if options.atomic && !options.dry_run {
            atomic_transaction = Some(self.begin_write().await?);
        }
        loop {
            let line = csv_reader.position().line();
            match csv_reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) if error.is_io_error() => return Err(error.into()),
                Err(error) => {
                    report.rows_read += 1;
                    report.errors.push(RowError {
                        line,
                        column: None,
                        message: error.to_string(),
                    });
                    continue;
                }
            }
            let line = record.position().map_or(line, csv::Position::line);
            if record.iter().all(|field| field.trim().is_empty()) {
                continue;
            }
            report.rows_read += 1;
            let rate = match parse_rate_row(tariff_id, &record, &columns, extras, line) {
                Ok(rate) => rate,
                Err(error) => {
                    report.errors.push(error);
                    continue;
                }
            };
            if let Some(first) = first_seen.get(&rate.prefix) {
                report.errors.push(RowError {
                    line,
                    column: Some("prefix"),
                    message: format!("duplicate prefix {:?}, first on line {first}", rate.prefix),
                });
                continue;
            }
            first_seen.insert(rate.prefix.clone(), line);
            report.rows_valid += 1;
            if options.dry_run {
                continue;
            }
            batch.push(rate);
            if batch.len() >= batch_rows {
                report.rows_written += self.write_batch(&mut atomic_transaction, &batch).await?;
                batch.clear();
            }
        }
        if !options.dry_run {
            report.rows_written += self.write_batch(&mut atomic_transaction, &batch).await?;
        }
        if let Some(transaction) = atomic_transaction {
            if report.errors.is_empty() {
                transaction.commit().await?;
            } else {
                drop(transaction);
                report.rows_written = 0;
            }
        }
        Ok(report)
    }

    /// Writes a batch in the atomic import's transaction, or in its own.
    async fn write_batch(
        &self,
        atomic_transaction: &mut Option<WriteTx>,
        batch: &[Rate],
    ) -> Result<u64, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        match atomic_transaction {
            Some(transaction) => upsert_rates(&mut transaction.conn(), batch).await,
            None => {
                let mut transaction = self.begin_write().await?;
                let written = upsert_rates(&mut transaction.conn(), batch).await?;
                transaction.commit().await?;
                Ok(written)
            }
        }
    }
}

/// The smallest digit string above every one that starts with `prefix` (`44` -> `45`, `49` ->
/// `5`), `None` when there is none (`99`, or the empty prefix): with it a prefix search is one
/// index range on both backends, whatever PostgreSQL's collation does with punctuation.
fn digits_after(prefix: &str) -> Option<String> {
    let kept = prefix.trim_end_matches('9');
    let last = kept.chars().last()?;
    let bumped = char::from_digit(last.to_digit(10)? + 1, 10)?;
    Some(format!("{}{bumped}", &kept[..kept.len() - 1]))
}

#[cfg(test)]
mod prefix_range_tests {
    use super::digits_after;

    #[test]
    fn the_range_after_a_prefix_ends_at_its_next_sibling() {
        assert_eq!(digits_after("44").as_deref(), Some("45"));
        assert_eq!(digits_after("49").as_deref(), Some("5"));
        assert_eq!(digits_after("4099").as_deref(), Some("41"));
        assert_eq!(digits_after("99"), None);
        assert_eq!(digits_after(""), None);
    }
}

/// Reads CRLF line ends as LF. The csv reader counts a record that follows a CRLF on the line
/// before (it takes the LF as the start of the next record), so a file saved by Excel or sent
/// from a browser's textarea had its bad rows reported one line early.
struct LfLines<R> {
    inner: R,
    /// A CR read at the end of the last chunk, not yet known to be followed by LF.
    held_cr: bool,
}

impl<R: Read> LfLines<R> {
    fn new(inner: R) -> Self {
        LfLines {
            inner,
            held_cr: false,
        }
    }
}

impl<R: Read> Read for LfLines<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if buffer.len() < 2 {
            return self.inner.read(buffer);
        }
        // Room for a held CR that turns out not to precede an LF.
        let room = buffer.len() - 1;
        let start = usize::from(self.held_cr);
        if self.held_cr {
            buffer[0] = b'\r';
        }
        let read = self.inner.read(&mut buffer[start..room])?;
        if read == 0 {
            self.held_cr = false;
            return Ok(start);
        }
        let end = start + read;
        let mut written = 0;
        let mut index = 0;
        while index < end {
            let byte = buffer[index];
            if byte == b'\r' && index + 1 < end && buffer[index + 1] == b'\n' {
                index += 1;
                continue;
            }
            buffer[written] = byte;
            written += 1;
            index += 1;
        }
        // A CR at the very end may pair with an LF of the next chunk: hold it back.
        self.held_cr = written > 0 && buffer[written - 1] == b'\r';
        if self.held_cr {
            written -= 1;
            if written == 0 {
                // Nothing else to give yet: read on rather than report an end of file.
                return self.read(buffer);
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod lf_lines_tests {
    use std::io::Read;

    use super::LfLines;

    /// Reads through a reader that hands out one byte at a time (the worst split).
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buffer[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn crlf_becomes_lf_and_a_lone_cr_stays() {
        let mut text = String::new();
        LfLines::new(Trickle(b"a\r\nb\rc\r\n\r"))
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a\nb\rc\n\r");
        let mut text = String::new();
        LfLines::new(&b"x\r\ny\r\n"[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "x\ny\n");
    }
}
