//! Queries behind roster import and listing.

use super::{Backend, Conn, Pool, Store, Tx, RECORD_SEPARATOR, SQLITE_BEGIN};
use sqlx::sqlite::SqliteArguments;
use sqlx::Arguments;

/// A person as stored.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct StaffRow {
    pub id: i64,
    pub source: String,
    pub employee_id: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department: String,
    pub role: String,
    pub facility: String,
    pub manager_email: Option<String>,
    pub time_zone: Option<String>,
    /// JSON object of extra columns.
    pub attributes: String,
    pub active: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub deactivated_at: Option<i64>,
}

/// The fields an import writes, in column order.
#[derive(Debug, Clone)]
pub struct NewStaff<'a> {
    pub employee_id: Option<&'a str>,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub department: &'a str,
    pub role: &'a str,
    pub facility: &'a str,
    pub manager_email: Option<&'a str>,
    pub time_zone: Option<&'a str>,
    pub attributes: &'a str,
}

/// One import's bookkeeping row.
#[derive(Debug, Clone)]
pub struct ImportRecord<'a> {
    pub imported_at: i64,
    pub source: &'a str,
    pub file_name: &'a str,
    pub sha256: &'a str,
    pub mode: &'a str,
}

/// A history entry: what one import did to one person.
#[derive(Debug, Clone)]
pub struct StaffChange {
    pub staff_id: i64,
    pub change: &'static str,
    pub detail: String,
}

pub(crate) const STAFF_COLUMNS: &str = "id, source, employee_id, email, first_name, last_name, department, role, facility, manager_email, time_zone, attributes, active, created_at, updated_at, deactivated_at";

/// Rows per multi-row INSERT: 3,000 rows × 10 values stays below both
/// engines' bind-parameter limits (32,766 and 65,535); on SQLite a 100k-row
/// import ran ~10% faster than with 1,000 (docs/benchmarks.md).
const INSERT_BATCH: usize = 3000;

/// A person already imported from a source, held as compactly as the
/// comparison with a new export allows: a re-import of 100,000 people keeps
/// them all in memory at once.
#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub id: i64,
    pub active: bool,
    pub employee_id: Option<Box<str>>,
    pub email: Box<str>,
    /// The other compared fields ([`Self::FIELDS`]) joined by
    /// [`Self::SEPARATOR`], so an unchanged person costs one comparison.
    pub fields: Box<str>,
}

impl StoredPerson {
    /// The fields besides employee id and email, in `fields` order.
    pub const FIELDS: [&'static str; 8] = [
        "first_name",
        "last_name",
        "department",
        "role",
        "facility",
        "manager_email",
        "time_zone",
        "attributes",
    ];

    /// Between the fields: U+001F, as in every packed row.
    pub const SEPARATOR: &'static str = super::UNIT_SEPARATOR;

    /// One person as `stored_people` packs them: id, active, '=' and the
    /// employee id (or nothing), email, then the fields.
    fn unpack(record: &str) -> anyhow::Result<Self> {
        let mut parts = record.splitn(5, Self::SEPARATOR);
        let mut next = || {
            parts.next().ok_or_else(|| {
                anyhow::anyhow!(
                    "a stored person came back incomplete: {} values",
                    record.split(Self::SEPARATOR).count()
                )
            })
        };
        let id = next()?.parse()?;
        let active = next()? == "1";
        let employee_id = next()?.strip_prefix('=').map(Box::from);
        let email = Box::from(next()?);
        let fields = Box::from(next()?);
        Ok(Self {
            id,
            active,
            employee_id,
            email,
            fields,
        })
    }
}

impl Store {
    /// Everyone ever imported from `source`, active or not, in the compact
    /// form. The fields are joined by the database: one text value a row
    /// instead of eight is what makes reading 100,000 people cheap.
    pub async fn stored_people(&self, source: &str) -> anyhow::Result<Vec<StoredPerson>> {
        use futures::TryStreamExt;
        // A person per row would cost sqlx's per-row overhead 100,000 times
        // (most of an unchanged re-import's time), so the database packs
        // about a thousand people into each row: the person's values joined
        // by SEPARATOR, people joined by RECORD_SEPARATOR. A stored
        // employee id is prefixed with '=' so that NULL and '' stay apart.
        const PEOPLE_PER_ROW: i64 = 1024;
        let person = [
            "CAST(id AS TEXT)",
            "CAST(active AS TEXT)",
            "COALESCE('=' || employee_id, '')",
            "email",
        ]
        .into_iter()
        .map(str::to_string)
        .chain(StoredPerson::FIELDS.map(|f| format!("COALESCE({f}, '')")))
        .collect::<Vec<_>>()
        .join(" || $2 || ");
        let aggregate = self.backend().text_aggregate();
        let sql = format!(
            "SELECT {aggregate}({person}, $3) FROM staff WHERE source = $1 GROUP BY id / {PEOPLE_PER_ROW}"
        );
        let mut people = Vec::new();
        on_pool!(self, |c| {
            let mut rows = sqlx::query_scalar::<_, String>(&sql)
                .bind(source)
                .bind(StoredPerson::SEPARATOR)
                .bind(RECORD_SEPARATOR)
                .fetch(c);
            while let Some(packed) = rows.try_next().await? {
                for record in packed.split(RECORD_SEPARATOR) {
                    people.push(StoredPerson::unpack(record)?);
                }
            }
        });
        Ok(people)
    }

    /// Emails owned by other sources, which an import must not take over.
    pub async fn emails_outside_source(
        &self,
        source: &str,
    ) -> anyhow::Result<Vec<(String, String)>> {
        Ok(on_pool!(self, |c| sqlx::query_as(
            "SELECT email, source FROM staff WHERE source <> $1"
        )
        .bind(source)
        .fetch_all(c)
        .await?))
    }

    /// People for `roster list`, ordered by name.
    pub async fn list_staff(&self, include_inactive: bool) -> anyhow::Result<Vec<StaffRow>> {
        let filter = if include_inactive {
            ""
        } else {
            "WHERE active = 1"
        };
        let sql = format!(
            "SELECT {STAFF_COLUMNS} FROM staff {filter} ORDER BY last_name, first_name, email"
        );
        Ok(on_pool!(self, |c| sqlx::query_as(&sql)
            .fetch_all(c)
            .await?))
    }

    /// The last import of this file's content for the source, when another
    /// import of the source came after it: importing the file again would
    /// undo that later import.
    pub async fn superseded_import(
        &self,
        source: &str,
        sha256: &str,
    ) -> anyhow::Result<Option<SupersededImport>> {
        let earlier: Option<(i64, i64, String)> = on_pool!(self, |c| sqlx::query_as(
            "SELECT id, imported_at, file_name FROM roster_imports
             WHERE source = $1 AND sha256 = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(source)
        .bind(sha256)
        .fetch_optional(c)
        .await?);
        let Some((id, imported_at, file_name)) = earlier else {
            return Ok(None);
        };
        let later: Option<(i64, String)> = on_pool!(self, |c| sqlx::query_as(
            "SELECT imported_at, file_name FROM roster_imports
             WHERE source = $1 AND id > $2 ORDER BY id LIMIT 1",
        )
        .bind(source)
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(later.map(|(later_at, later_file)| SupersededImport {
            imported_at,
            file_name,
            later_at,
            later_file,
        }))
    }
}

/// An earlier import of the same content, and the first import after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupersededImport {
    /// When the same content was last imported, in ms since the epoch.
    pub imported_at: i64,
    pub file_name: String,
    /// The first import of the source after that one.
    pub later_at: i64,
    pub later_file: String,
}

/// Records the import, with zero counts until [`set_import_counts`], and
/// returns its id.
pub async fn insert_import(tx: &mut Tx, import: &ImportRecord<'_>) -> anyhow::Result<i64> {
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO roster_imports (imported_at, source, file_name, sha256, mode, added, updated, unchanged, deactivated, reactivated, rejected)
         VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, 0) RETURNING id",
    )
    .bind(import.imported_at)
    .bind(import.source)
    .bind(import.file_name)
    .bind(import.sha256)
    .bind(import.mode)
    .fetch_one(&mut *c)
    .await?
    });
    Ok(id)
}

/// New people bound to their INSERT statements ahead of the write.
///
/// Binding copies every value; done by the task that reads the file, it
/// overlaps the previous batch's write, and the task holding the
/// transaction only executes, so the database is not left waiting between
/// statements (docs/benchmarks.md, "Roster import").
///
/// Only for the transaction of [`Store::begin_bulk_write`]: on SQLite the
/// rows go in with `INSERT OR ROLLBACK`, which ends the whole transaction
/// on a conflict, while sqlx still counts it as open.
pub(crate) struct BoundStaffInsert {
    statements: BoundStatements,
}

/// The rows ready for the backend: multi-row INSERT statements with their
/// arguments on SQLite, the body of one `COPY ... FROM STDIN` on PostgreSQL.
enum BoundStatements {
    Sqlite(Vec<(String, SqliteArguments<'static>)>),
    /// COPY's text format: one line a person, tab between values.
    PostgresCopy(Vec<u8>),
}

/// The columns an import writes, in the order of [`NewStaff::values`] after
/// the shared four.
const STAFF_INSERT_COLUMNS: &str = "source, created_at, updated_at, import_id, employee_id, email, first_name, last_name, department, role, facility, manager_email, time_zone, attributes";

impl BoundStaffInsert {
    /// Prepares `people` for `backend`: multi-row INSERTs on SQLite, COPY rows on PostgreSQL.
    pub fn bind(
        backend: Backend,
        source: &str,
        import_id: i64,
        now: i64,
        people: &[NewStaff<'_>],
    ) -> anyhow::Result<Self> {
        let statements = match backend {
            Backend::Sqlite => {
                let values: Vec<String> = (1..=10).map(|i| format!("column{i}")).collect();
                let values = values.join(", ");
                BoundStatements::Sqlite(
                    people
                        .chunks(INSERT_BATCH)
                        .map(|batch| {
                            let rows = placeholders_from(batch.len(), 10, None);
                            let sql = format!(
                                "INSERT OR ROLLBACK INTO staff ({STAFF_INSERT_COLUMNS}) SELECT ?, ?, ?, ?, {values} FROM (VALUES {rows}) AS v"
                            );
                            Ok((sql, staff_arguments(source, import_id, now, batch)?))
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            Backend::Postgres => {
                BoundStatements::PostgresCopy(copy_text(source, import_id, now, people))
            }
        };
        Ok(Self { statements })
    }

    pub async fn execute(self, tx: &mut Tx) -> anyhow::Result<()> {
        match (self.statements, tx.conn()) {
            (BoundStatements::Sqlite(statements), Conn::Sqlite(c)) => {
                for (sql, arguments) in statements {
                    sqlx::query_with(&sql, arguments).execute(&mut *c).await?;
                }
            }
            (BoundStatements::PostgresCopy(rows), Conn::Postgres(c)) => {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut copy = c
                    .copy_in_raw(&format!("COPY staff ({STAFF_INSERT_COLUMNS}) FROM STDIN"))
                    .await?;
                if let Err(e) = copy.send(rows).await {
                    // The connection must leave COPY mode before the rollback.
                    let _ = copy.abort(format!("{e}")).await;
                    return Err(e.into());
                }
                copy.finish().await?;
            }
            _ => anyhow::bail!("roster rows bound for one database were given to the other"),
        }
        Ok(())
    }
}

/// `people` as the body of a `COPY staff (...) FROM STDIN` in its text
/// format: COPY loads rows without parsing, planning or binding an INSERT,
/// the fastest way into PostgreSQL (docs/benchmarks.md, "Roster import").
fn copy_text(source: &str, import_id: i64, now: i64, people: &[NewStaff<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(people.len() * 160);
    let mut shared = Vec::new();
    copy_value(&mut shared, Some(source));
    shared.extend_from_slice(format!("\t{now}\t{now}\t{import_id}").as_bytes());
    for p in people {
        out.extend_from_slice(&shared);
        for value in p.values() {
            out.push(b'\t');
            copy_value(&mut out, value);
        }
        out.push(b'\n');
    }
    out
}

/// One value in COPY's text format: `\N` for NULL; backslash, tab, newline
/// and carriage return escaped (the roster reader refuses control
/// characters, but attributes are JSON and may hold backslashes).
fn copy_value(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for byte in value.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// One statement's values: the shared four, then ten per person.
fn staff_arguments(
    source: &str,
    import_id: i64,
    now: i64,
    batch: &[NewStaff<'_>],
) -> anyhow::Result<SqliteArguments<'static>> {
    let mut arguments = SqliteArguments::default();
    arguments.reserve(4 + 10 * batch.len(), 0);
    arguments
        .add(source.to_string())
        .map_err(anyhow::Error::msg)?;
    arguments.add(now).map_err(anyhow::Error::msg)?;
    arguments.add(now).map_err(anyhow::Error::msg)?;
    arguments.add(import_id).map_err(anyhow::Error::msg)?;
    for p in batch {
        for value in p.values() {
            // Owned, so the driver takes the value as it is.
            arguments
                .add(value.map(str::to_string))
                .map_err(anyhow::Error::msg)?;
        }
    }
    Ok(arguments)
}

impl NewStaff<'_> {
    /// The per-person values in insert order (after the shared four).
    fn values(&self) -> [Option<&str>; 10] {
        [
            self.employee_id,
            Some(self.email),
            Some(self.first_name),
            Some(self.last_name),
            Some(self.department),
            Some(self.role),
            Some(self.facility),
            self.manager_email,
            self.time_zone,
            Some(self.attributes),
        ]
    }
}

impl Store {
    /// The write transaction of a roster import. On SQLite it runs on a
    /// connection of its own, set up for a bulk load and closed when the
    /// transaction ends instead of going back to the pool, so no setting
    /// reaches another caller:
    /// - foreign keys not enforced: with the one immediate foreign key of
    ///   `staff` (`import_id`), every multi-row INSERT may abort halfway,
    ///   so SQLite journals each page it touches in a statement journal
    ///   (~14% of the writer's time, docs/benchmarks.md "Roster import").
    ///   The import writes only ids it read or made in this transaction;
    ///   [`BoundStaffInsert`] inserts with `OR ROLLBACK`, so a conflict
    ///   ends the whole import rather than one statement.
    /// - an 8 MB page cache and in-memory statement journals: with the 2 MB
    ///   default, inserting into the random-order email index spilled
    ///   dirty pages mid-transaction.
    pub async fn begin_bulk_write(&self) -> anyhow::Result<Tx> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                conn.close_on_drop();
                for setting in [
                    "PRAGMA foreign_keys = OFF",
                    "PRAGMA cache_size = -8192",
                    "PRAGMA temp_store = MEMORY",
                ] {
                    sqlx::query(setting).execute(&mut *conn).await?;
                }
                // What `SqlitePool::begin_with` does, on this connection
                // (sqlx 0.8's `Transaction::begin` is public but left out
                // of its docs; the bulk-write test below covers it).
                let tx = sqlx::Transaction::begin(conn, Some(SQLITE_BEGIN.into())).await?;
                Ok(Tx::Sqlite(tx))
            }
            Pool::Postgres(_) => self.begin().await,
        }
    }
}

/// Writes an import's final counts, known only once the whole file is read.
pub async fn set_import_counts(
    tx: &mut Tx,
    import_id: i64,
    counts: [i64; 6],
) -> anyhow::Result<()> {
    let [added, updated, unchanged, deactivated, reactivated, rejected] = counts;
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE roster_imports SET added = $1, updated = $2, unchanged = $3, deactivated = $4, reactivated = $5, rejected = $6 WHERE id = $7",
    )
    .bind(added)
    .bind(updated)
    .bind(unchanged)
    .bind(deactivated)
    .bind(reactivated)
    .bind(rejected)
    .bind(import_id)
    .execute(&mut *c)
    .await?.rows_affected()
    });
    Ok(())
}

/// Overwrites a person's fields and marks them active.
pub async fn update_staff(tx: &mut Tx, id: i64, now: i64, p: &NewStaff<'_>) -> anyhow::Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE staff SET employee_id = $1, email = $2, first_name = $3, last_name = $4, department = $5,
         role = $6, facility = $7, manager_email = $8, time_zone = $9, attributes = $10,
         active = 1, deactivated_at = NULL, updated_at = $11 WHERE id = $12",
    )
    .bind(p.employee_id)
    .bind(p.email)
    .bind(p.first_name)
    .bind(p.last_name)
    .bind(p.department)
    .bind(p.role)
    .bind(p.facility)
    .bind(p.manager_email)
    .bind(p.time_zone)
    .bind(p.attributes)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await?.rows_affected()
    });
    Ok(())
}

/// Marks people inactive; their rows and history stay.
pub async fn deactivate_staff(tx: &mut Tx, ids: &[i64], now: i64) -> anyhow::Result<()> {
    for id in ids {
        on_tx!(tx, |c| sqlx::query(
            "UPDATE staff SET active = 0, deactivated_at = $1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(*id)
        .execute(&mut *c)
        .await?
        .rows_affected());
    }
    Ok(())
}

/// Appends history entries for one import.
pub async fn insert_changes(
    tx: &mut Tx,
    import_id: i64,
    changes: &[StaffChange],
) -> anyhow::Result<()> {
    for batch in changes.chunks(INSERT_BATCH) {
        let sql = format!(
            "INSERT INTO roster_changes (import_id, staff_id, change, detail) VALUES {}",
            placeholders(batch.len(), 4, numbered(tx))
        );
        on_tx!(tx, |conn| {
            let mut query = sqlx::query(&sql);
            for c in batch {
                query = query
                    .bind(import_id)
                    .bind(c.staff_id)
                    .bind(c.change)
                    .bind(c.detail.clone());
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(())
}

/// History of one person: (import id, change, detail JSON), oldest first.
pub async fn changes_of(
    store: &Store,
    staff_id: i64,
) -> anyhow::Result<Vec<(i64, String, String)>> {
    Ok(on_pool!(store, |c| sqlx::query_as(
        "SELECT import_id, change, detail FROM roster_changes WHERE staff_id = $1 ORDER BY id",
    )
    .bind(staff_id)
    .fetch_all(c)
    .await?))
}

/// Whether a multi-row statement should number its parameters (`$N`).
///
/// SQLite treats `$N` as a *named* parameter, and binding one looks its name
/// up with `sqlite3_bind_parameter_name`, a linear scan: a 7,000-value INSERT
/// costs O(n²) and made a 100k-row import take 20 s instead of 0.3 s. Plain
/// `?` parameters are anonymous and bind in order, so SQLite gets those.
fn numbered(tx: &Tx) -> bool {
    tx.backend() == Backend::Postgres
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` values, or `(?, ?), (?, ?)`
/// when not `numbered`.
pub(crate) fn placeholders(rows: usize, columns: usize, numbered: bool) -> String {
    placeholders_from(rows, columns, numbered.then_some(1))
}

/// Like [`placeholders`], numbering from `first` (anonymous `?` when `None`).
fn placeholders_from(rows: usize, columns: usize, first: Option<usize>) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            match first {
                Some(first) => {
                    let _ = write!(sql, "${}", first + row * columns + col);
                }
                None => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::{copy_text, NewStaff};

    #[test]
    fn placeholders_number_rows_consecutively() {
        assert_eq!(super::placeholders(2, 2, true), "($1, $2), ($3, $4)");
    }

    #[test]
    fn anonymous_placeholders_for_sqlite() {
        assert_eq!(super::placeholders(2, 2, false), "(?, ?), (?, ?)");
    }

    #[test]
    fn copy_rows_escape_what_copy_text_format_reads_as_special() {
        let person = NewStaff {
            employee_id: None,
            email: "a@example.org",
            first_name: "A\\B",
            last_name: "tab\there",
            department: "line\nbreak",
            role: "cr\rhere",
            facility: "",
            manager_email: None,
            time_zone: None,
            attributes: r#"{"k":"v\\"}"#,
        };
        let text = String::from_utf8(copy_text("hr", 7, 1000, &[person])).unwrap();
        assert_eq!(
            text,
            "hr\t1000\t1000\t7\t\\N\ta@example.org\tA\\\\B\ttab\\there\tline\\nbreak\tcr\\rhere\t\t\\N\t\\N\t{\"k\":\"v\\\\\\\\\"}\n"
        );
    }

    #[test]
    fn numbering_can_start_after_shared_values() {
        assert_eq!(super::placeholders_from(2, 1, Some(5)), "($5), ($6)");
    }
}

#[cfg(test)]
mod bulk_write_tests {
    use crate::store::{Conn, Pool, Store};

    /// foreign_keys, cache_size and temp_store of a connection.
    async fn settings(conn: &mut sqlx::SqliteConnection) -> [i64; 3] {
        let mut values = [0; 3];
        for (value, pragma) in values
            .iter_mut()
            .zip(["foreign_keys", "cache_size", "temp_store"])
        {
            *value = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        }
        values
    }

    /// The bulk write's connection does not enforce foreign keys and has
    /// its own cache settings; it is closed afterwards, committed or
    /// dropped, so every connection the pool hands out later has the
    /// pool's settings.
    #[tokio::test]
    async fn the_bulk_writes_settings_never_reach_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bulk.db").display());
        let store = Store::open(&url, 2).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else {
            unreachable!("a SQLite URL")
        };
        let pooled = settings(&mut pool.acquire().await.unwrap()).await;
        assert_eq!(pooled[0], 1, "the pool enforces foreign keys");
        for commit in [true, false] {
            let mut tx = store.begin_bulk_write().await.unwrap();
            let Conn::Sqlite(c) = tx.conn() else {
                unreachable!("a SQLite transaction")
            };
            assert_eq!(settings(c).await, [0, -8192, 2], "inside the bulk write");
            if commit {
                tx.commit().await.unwrap();
            } else {
                drop(tx);
            }
            // Both connections the pool may hold, at once.
            let (mut a, mut b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
            assert_eq!(
                [settings(&mut a).await, settings(&mut b).await],
                [pooled, pooled],
                "after a bulk write that was {}",
                if commit { "committed" } else { "dropped" }
            );
        }
    }
}
