//! The test harness: a Confab per test on its own database ([`database`], [`app`]), and a small
//! browser that keeps cookies and the form token like a real one ([`browser`]).

pub mod app;
pub mod browser;
pub mod database;

use std::sync::OnceLock;

use confab::chat::users;

pub use app::TestApp;
pub use browser::{encode, message_ids, multipart, one_time_link, Browser, Part, BOUNDARY};
pub use database::{files_under, pg_admin, PgDatabase, TestDatabase};

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test function once per backend, as two tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[rocket::async_test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[rocket::async_test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery";

fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| users::hash_password(PASSWORD).expect("hash"))
}
