//! Test databases: a SQLite file in a temporary folder, or a PostgreSQL database cloned from a
//! migrated template (made once per set of migrations).

use std::sync::OnceLock;

use confab::db::DatabaseUrl;
use confab::Settings;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::Backend;

/// The server PostgreSQL tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("CONFAB_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url(database: &str) -> String {
    let admin = pg_admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

/// Connects to the PostgreSQL server, or says why not. Under `CI=true` a missing server fails the test.
pub fn pg_admin() -> Option<PgConnection> {
    match PgConnection::establish(&pg_admin_url()) {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "PostgreSQL is required under CI=true but is not reachable at {}: {e}",
                pg_admin_url()
            )
        }
        Err(e) => {
            eprintln!(
                "skipped: PostgreSQL is not reachable at {} ({e})",
                pg_admin_url()
            );
            None
        }
    }
}

/// The migrated template database, made once per migration set (its name carries their hash).
fn pg_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut files: Vec<_> = walk("migrations/postgres");
        files.sort();
        let mut hasher = Sha256::new();
        for file in &files {
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(std::fs::read(file).expect("read migration"));
        }
        let name = format!("confab_tmpl_{}", &hex::encode(hasher.finalize())[..16]);
        let mut admin = pg_admin().expect("PostgreSQL");
        admin
            .batch_execute("SELECT pg_advisory_lock(4242)")
            .expect("lock");
        let exists = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"
        )))
        .get_result::<bool>(&mut admin)
        .expect("query");
        if !exists {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .expect("drop");
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .expect("create template");
            confab::db::migrate(&DatabaseUrl::Postgres(pg_url(&building)))
                .expect("migrate template");
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("rename");
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(4242)")
            .expect("unlock");
        name
    })
}

/// A fresh, empty PostgreSQL database (no migrations), dropped with the returned guard.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Makes a database, cloned from the migrated template when `migrated`.
    pub fn create(migrated: bool) -> Option<PgDatabase> {
        let mut admin = pg_admin()?;
        let name = format!("confab_t_{}", &confab::secrets::random_token()[..16]);
        let template = if migrated {
            format!(" TEMPLATE {}", pg_template())
        } else {
            String::new()
        };
        admin
            .batch_execute(&format!("CREATE DATABASE {name}{template}"))
            .expect("create test database");
        Some(PgDatabase {
            url: pg_url(&name),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&pg_admin_url()) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A database for one test, on either backend.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    pub dir: tempfile::TempDir,
    pub postgres: Option<PgDatabase>,
}

impl TestDatabase {
    /// A migrated database (SQLite: migrated when the app starts), or `None` when PostgreSQL is
    /// not available outside CI.
    pub fn new(backend: Backend) -> Option<TestDatabase> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDatabase {
                url: DatabaseUrl::Sqlite(dir.path().join("confab.db")),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let pg = PgDatabase::create(true)?;
                Some(TestDatabase {
                    url: DatabaseUrl::Postgres(pg.url.clone()),
                    dir,
                    postgres: Some(pg),
                })
            }
        }
    }

    /// The URL as a setting value.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        }
    }

    /// Test settings for this database, with `extra` settings on top.
    pub fn settings(&self, extra: &[(&str, i64)]) -> Settings {
        let figment = Settings::default_figment()
            .merge(("database_url", self.url_string()))
            .merge(("data_dir", self.dir.path().join("data")))
            .merge(("uploads_dir", self.dir.path().join("uploads")))
            .merge(("log_level", "off"))
            .merge(("login_slowdown_ms", 0))
            .merge(("db_pool_size", 4))
            .merge(("jobs_enabled", false))
            .merge(("mail_dir", confab::mail::IN_MEMORY));
        let figment = extra.iter().fold(figment, |figment, (key, value)| {
            figment.merge((*key, *value))
        });
        Settings::from_figment(figment).expect("test settings")
    }
}

/// Every regular file under a folder.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    walk(&dir.to_string_lossy())
}

fn walk(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path.to_string_lossy()));
        } else {
            out.push(path);
        }
    }
    out
}
