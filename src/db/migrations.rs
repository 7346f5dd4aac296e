//! Embedded migrations, one tree per backend, applied at start (and by `confab migrate`).

use std::collections::HashSet;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::{Connection, PgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DatabaseUrl;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A fixed key for the PostgreSQL advisory lock that serialises migrations across instances.
const MIGRATION_LOCK: i64 = 0x436f_6e66_6162; // "Confab" in ASCII

/// Why the database could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database could not be reached (libpq's message, on one line).
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// The database holds migrations this build does not have: it was used by a newer Confab.
    #[error("the database has migrations this version of Confab does not know ({0}); run the newer Confab that applied them")]
    Unknown(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Failed(String),
}

impl From<diesel::ConnectionError> for MigrateError {
    fn from(e: diesel::ConnectionError) -> Self {
        MigrateError::Connect(
            e.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

/// Applies every pending migration and returns their names. Refuses a database that has
/// migrations this build does not know. On PostgreSQL this holds a session advisory lock on a
/// dedicated connection, so that several instances starting at once migrate one after the other.
pub fn migrate(url: &DatabaseUrl) -> Result<Vec<String>, MigrateError> {
    match url {
        DatabaseUrl::Postgres(url) => {
            let mut conn = PgConnection::establish(url)?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .map_err(|e| MigrateError::Failed(e.to_string()))?;
            let applied = apply(&mut conn, POSTGRES);
            // Unlocking is best effort: closing the connection releases the lock anyway.
            let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            applied
        }
        DatabaseUrl::Sqlite(path) => {
            let mut conn = super::connect_sqlite(path)?;
            apply(&mut conn, SQLITE)
        }
    }
}

fn apply<C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, MigrateError>
where
    C: MigrationHarness<C::Backend> + Connection,
    EmbeddedMigrations: MigrationSource<C::Backend>,
{
    let known: HashSet<String> = MigrationSource::<C::Backend>::migrations(&source)
        .map_err(|e| MigrateError::Failed(e.to_string()))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn
        .applied_migrations()
        .map_err(|e| MigrateError::Failed(e.to_string()))?;
    let unknown: Vec<String> = applied
        .iter()
        .map(|v| v.to_string())
        .filter(|v| !known.contains(v))
        .collect();
    if !unknown.is_empty() {
        return Err(MigrateError::Unknown(unknown.join(", ")));
    }
    let done = conn
        .run_pending_migrations(source)
        .map_err(|e| MigrateError::Failed(e.to_string()))?;
    Ok(done.iter().map(|v| v.to_string()).collect())
}
