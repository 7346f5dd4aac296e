//! Database access: one connection type over PostgreSQL and SQLite chosen by the URL, a pool of it,
//! and the helpers that run Diesel on the blocking pool so that no async task ever waits on a query.

mod migrations;
pub mod schema;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, Pool};
use diesel::{Connection, PgConnection, SqliteConnection};
use tokio::sync::Semaphore;

pub use migrations::{migrate, MigrateError};

/// A connection to either backend; every query in Confab is written against this type.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// The production database.
    Postgresql(PgConnection),
    /// The embedded default.
    Sqlite(SqliteConnection),
}

/// Which database a URL names. Parsing never guesses: a malformed PostgreSQL URL is an error,
/// never a new SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, passed to libpq as it is.
    Postgres(String),
    /// A SQLite file, given as a path or `sqlite://path`.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses a database URL, explaining what is wrong with a bad one.
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            rest
        } else {
            // Anything that looks like `scheme:` (longer than a drive letter) is a URL we do not know.
            if let Some((scheme, _)) = url.split_once(':') {
                if scheme.len() > 1
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                {
                    return Err(format!(
                        "`{scheme}:` is not a database Confab knows; use postgres://user@host/db or a SQLite file path"
                    ));
                }
            }
            url
        };
        if path.is_empty() || path == ":memory:" {
            return Err("a SQLite database must be a file".into());
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// A description safe to print: no password.
    pub fn display(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(start), Some(at)) if at > start => {
                    format!("{}://…{}", &url[..start], &url[at..])
                }
                _ => url.clone(),
            },
            DatabaseUrl::Sqlite(path) => format!("SQLite file {}", path.display()),
        }
    }
}

/// Opens one connection, configured for Confab (SQLite: WAL, busy timeout, foreign keys).
pub fn connect(url: &DatabaseUrl) -> Result<AnyConnection, diesel::ConnectionError> {
    match url {
        DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(AnyConnection::Postgresql),
        DatabaseUrl::Sqlite(path) => connect_sqlite(path).map(AnyConnection::Sqlite),
    }
}

fn connect_sqlite(path: &std::path::Path) -> Result<SqliteConnection, diesel::ConnectionError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            diesel::ConnectionError::BadConnection(format!(
                "cannot create {}: {e}",
                parent.display()
            ))
        })?;
    }
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
    conn.batch_execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
    )
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so that concurrent writers queue
/// instead of failing with "database is locked"), a plain transaction on PostgreSQL.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let AnyConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(f);
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(value) => {
            match <AnyConnection as Connection>::TransactionManager::commit_transaction(conn) {
                Ok(()) => Ok(value),
                Err(e) => {
                    // The commit failed and left the transaction open; undo it before the connection is reused.
                    let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    Err(e.into())
                }
            }
        }
        Err(e) => {
            <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// How long a connection whose last statement succeeded is trusted without a check on checkout.
const TRUSTED_FOR: Duration = Duration::from_secs(2);

/// Counts the statements a connection sends (so that tests and the benchmark can see how many
/// queries a request costs), and notes how its last statement went.
struct QueryCounter {
    queries: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    health: Arc<Health>,
}

impl diesel::connection::Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        match event {
            diesel::connection::InstrumentationEvent::StartQuery { .. } => {
                self.queries.fetch_add(1, Ordering::Relaxed);
            }
            diesel::connection::InstrumentationEvent::FinishQuery { error: None, .. } => {
                self.health
                    .record(Some((Instant::now(), self.errors.load(Ordering::SeqCst))));
            }
            diesel::connection::InstrumentationEvent::FinishQuery { error: Some(_), .. } => {
                self.errors.fetch_add(1, Ordering::SeqCst);
                self.health.record(None);
            }
            _ => {}
        }
    }
}

/// When a connection's last statement succeeded, and how many errors the pool had seen by then;
/// `None` after a failure.
#[derive(Default)]
struct Health(Mutex<Option<(Instant, u64)>>);

impl Health {
    fn record(&self, last: Option<(Instant, u64)>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = last;
        }
    }

    /// Trusted: it succeeded moments ago, and no connection of the pool has failed since (when the
    /// database goes away, every connection is checked again, not only the one that saw it).
    fn trusted(&self, pool_errors: u64) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|(at, seen)| at.elapsed() < TRUSTED_FOR && seen == pool_errors)
    }
}

/// A pooled connection with its health; it dereferences to the [`AnyConnection`] it holds.
pub struct Pooled {
    conn: AnyConnection,
    health: Arc<Health>,
}

impl std::ops::Deref for Pooled {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// The r2d2 manager: opens connections of the backend the URL names, and nothing else. A connection
/// is checked (`SELECT 1`) on checkout unless its last statement succeeded moments ago with no
/// error in the pool since, so a busy pool pays no extra round trip while one that sat idle, or
/// just saw an error, is tested first.
pub struct Manager {
    url: DatabaseUrl,
    queries: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let mut conn = connect(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
        // Just opened (and configured): as good as a statement that succeeded.
        let health = Arc::new(Health::default());
        health.record(Some((Instant::now(), self.errors.load(Ordering::SeqCst))));
        conn.set_instrumentation(QueryCounter {
            queries: self.queries.clone(),
            errors: self.errors.clone(),
            health: health.clone(),
        });
        Ok(Pooled { conn, health })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), Self::Error> {
        if pooled.health.trusted(self.errors.load(Ordering::SeqCst)) {
            return Ok(());
        }
        pooled
            .conn
            .batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        std::thread::panicking()
            || <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut pooled.conn,
            )
    }
}

/// Why a database call could not even start, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DbUnavailable {
    /// No connection could be had in time: the database is down or overloaded.
    #[error("the database is not answering: {0}")]
    Pool(String),
    /// The closure panicked on the blocking pool.
    #[error("a database task failed: {0}")]
    Task(String),
}

/// The pool, shared by every request and job; all access goes through [`Db::run`] and [`Db::write`].
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    permits: Arc<Semaphore>,
    backend: Backend,
    queries: Arc<AtomicU64>,
}

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Db {
    /// Builds the pool without connecting yet; the first use connects. Checkouts check connections
    /// that are not known to be good (see [`Manager`]), so that those broken while the database
    /// was away are replaced. A connection trusted when the database went away may fail one request
    /// (at most one per pooled connection); that error has every connection checked again.
    pub fn new(url: &DatabaseUrl, size: u32) -> Db {
        let queries = Arc::new(AtomicU64::new(0));
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build_unchecked(Manager {
                url: url.clone(),
                queries: queries.clone(),
                errors: Arc::new(AtomicU64::new(0)),
            });
        let backend = match url {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        };
        Db {
            pool,
            permits: Arc::new(Semaphore::new(size as usize)),
            backend,
            queries,
        }
    }

    /// How many statements this pool's connections have sent (including checks on checkout).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The engine behind this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on the blocking pool. Waiting for a connection happens
    /// asynchronously (a permit per pooled connection), so a busy pool never parks a runtime thread.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbUnavailable> + Send + 'static,
    {
        let permit = tokio::time::timeout(
            Duration::from_secs(10),
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| DbUnavailable::Pool("timed out waiting for a connection".into()))?
        .map_err(|e| DbUnavailable::Pool(e.to_string()))?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get().map_err(|e| DbUnavailable::Pool(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbUnavailable::Task(e.to_string()))?
    }

    /// Like [`Db::run`], inside a write transaction (see [`write_transaction`]).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbUnavailable> + From<diesel::result::Error> + Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, f)).await
    }
}

/// Whether the database answers: one trivial statement.
pub fn ping(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
    diesel::connection::SimpleConnection::batch_execute(conn, "SELECT 1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    /// The embedded SQLite is built as `.cargo/config.toml` asks: with the query planner stability
    /// guarantee, so that statistics (`ANALYZE`) do not make kept statements be prepared again on
    /// every run.
    #[test]
    fn sqlite_keeps_its_statements_plans() {
        let mut conn = SqliteConnection::establish(":memory:").expect("an in-memory database");
        let qpsg: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
            "(SELECT count(*) FROM pragma_compile_options WHERE compile_options = 'ENABLE_QPSG')",
        ))
        .get_result(&mut conn)
        .expect("compile options");
        assert_eq!(qpsg, 1, "SQLite built without SQLITE_ENABLE_QPSG");
    }
}
