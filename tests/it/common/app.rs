//! A Confab per test, started in process on its own database, with helpers that set up users,
//! rooms and messages, and a check at drop that the test left nothing behind.

use confab::chat::{self, rooms, users};
use confab::db::{AnyConnection, Db};
use confab::Settings;
use diesel::RunQueryDsl;
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use super::browser::Browser;
use super::database::{files_under, PgDatabase, TestDatabase};
use super::{password_hash, Backend, PASSWORD};

/// A running Confab for one test. When it is dropped (and the test did not fail), it checks
/// that the test left nothing behind: no mail still pending in the outbox (deliver it with
/// [`TestApp::deliver_mail`]) and no temporary upload file.
pub struct TestApp {
    pub client: Client,
    pub database: TestDatabase,
}

/// A test app's settings, on top of the test defaults.
pub struct TestAppBuilder {
    backend: Backend,
    extra: Vec<(&'static str, i64)>,
    adjust: Vec<Adjust>,
}

/// A change to a test app's settings.
type Adjust = Box<dyn FnOnce(&mut Settings)>;

impl TestAppBuilder {
    /// Numeric settings by their keys, as an operator would set them (validated).
    pub fn with(mut self, extra: &[(&'static str, i64)]) -> TestAppBuilder {
        self.extra.extend_from_slice(extra);
        self
    }

    /// Changes the settings directly, after the keyed ones.
    pub fn with_settings(mut self, adjust: impl FnOnce(&mut Settings) + 'static) -> TestAppBuilder {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Starts Confab on a fresh database, or `None` when PostgreSQL is not available outside CI.
    pub async fn start(self) -> Option<TestApp> {
        let database = TestDatabase::new(self.backend)?;
        let mut settings = database.settings(&self.extra);
        for adjust in self.adjust {
            adjust(&mut settings);
        }
        let client = Client::untracked(confab::app(settings))
            .await
            .expect("valid rocket");
        Some(TestApp { client, database })
    }
}

impl TestApp {
    /// The app's PostgreSQL database (for tests that run on PostgreSQL only).
    pub fn postgres(&self) -> &PgDatabase {
        self.database
            .postgres
            .as_ref()
            .expect("a PostgreSQL test app")
    }

    /// Takes the app's PostgreSQL database away under it, connections and all (as a database that
    /// goes down does).
    pub fn drop_database(&self) {
        let name = &self.postgres().name;
        let mut admin = super::pg_admin().expect("admin");
        diesel::connection::SimpleConnection::batch_execute(
            &mut admin,
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        )
        .expect("drop");
    }

    /// Writes the read markers waiting for the next batch (pages and polls note what they show as
    /// read in memory; the presence job writes them every second, and jobs do not run in tests).
    pub async fn write_reads(&self) {
        confab::jobs::presence::flush_reads(self.db(), &self.services().live).await;
    }

    /// A test app to configure before it starts.
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            extra: Vec::new(),
            adjust: Vec::new(),
        }
    }

    /// Starts Confab on a fresh database with default test settings.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::builder(backend).start().await
    }

    /// Runs the outbox sender once, as the background job would: every pending mail goes to the
    /// app's transport (in memory unless the test chose SMTP or a folder). Returns how many went.
    pub async fn deliver_mail(&self) -> usize {
        confab::jobs::alerts::send(
            self.db(),
            &self.mail(),
            self.settings(),
            confab::chat::now(),
        )
        .await
        .expect("outbox sender")
    }

    /// The app's settings.
    pub fn settings(&self) -> &confab::Settings {
        self.client
            .rocket()
            .state::<confab::Settings>()
            .expect("settings")
    }

    /// The app's mail service.
    pub fn mail(&self) -> std::sync::Arc<confab::mail::Mail> {
        self.client
            .rocket()
            .state::<std::sync::Arc<confab::mail::Mail>>()
            .expect("mail")
            .clone()
    }

    /// The app's services (what the web and the commands call).
    pub fn services(&self) -> &confab::service::Services {
        self.client
            .rocket()
            .state::<confab::service::Services>()
            .expect("services")
    }

    /// The app's database pool.
    pub fn db(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("db")
    }

    /// Runs domain code against the app's database in a write transaction.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> confab::error::Result<T> + Send + 'static,
    ) -> T {
        self.db().write(f).await.expect("test setup write")
    }

    /// Creates a user whose password is [`PASSWORD`].
    pub async fn user(&self, name: &str, admin: bool) -> i64 {
        let (name, hash) = (name.to_string(), password_hash().to_string());
        self.write(move |c| {
            users::create(
                c,
                &name,
                &format!("{name}@example.org"),
                Some(&hash),
                admin,
                chat::now(),
            )
        })
        .await
    }

    /// Creates a room with these members.
    pub async fn room(&self, slug: &str, private: bool, members: &[i64]) -> i64 {
        let (slug, members) = (slug.to_string(), members.to_vec());
        self.write(move |c| {
            let fields = rooms::RoomFields {
                slug: &slug,
                name: &slug.to_uppercase(),
                description: "",
                is_private: private,
            };
            let room = rooms::create(c, &fields, chat::now())?;
            for member in members {
                rooms::add_member(c, room.id, member, chat::now())?;
            }
            Ok(room.id)
        })
        .await
    }

    /// Posts messages straight through the domain (for long histories).
    pub async fn messages(&self, room_id: i64, author: i64, bodies: Vec<String>) -> Vec<i64> {
        self.write(move |c| {
            use diesel::{ExpressionMethods, QueryDsl};
            let slug: String = confab::db::schema::rooms::table
                .filter(confab::db::schema::rooms::id.eq(room_id))
                .select(confab::db::schema::rooms::slug)
                .first(c)?;
            bodies
                .iter()
                .map(|b| {
                    let posted = chat::messages::post(c, &slug, author, b, None, None, chat::now());
                    chat::messages::NotPosted::into_stored(posted).map(|(stored, _)| stored.id)
                })
                .collect()
        })
        .await
    }

    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser<'_> {
        Browser::on(&self.client)
    }

    /// A browser logged in as `name`.
    pub async fn login(&self, name: &str) -> Browser<'_> {
        let mut browser = self.browser();
        browser.get("/login").await;
        let page = browser
            .post("/login", &[("username", name), ("password", PASSWORD)])
            .await;
        assert_eq!(
            page.status,
            Status::SeeOther,
            "login of {name} failed: {}",
            page.body
        );
        browser
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let temp = files_under(&self.settings().uploads.dir.join("tmp"));
        assert!(
            temp.is_empty(),
            "the test left temporary upload files: {temp:?}"
        );
        // A test that took the database away has no outbox left to check.
        let Ok(mut conn) = confab::db::connect(&self.database.url) else {
            return;
        };
        let pending: i64 = {
            use confab::db::schema::outbox;
            use diesel::prelude::*;
            outbox::table
                .filter(outbox::status.eq("pending"))
                .count()
                .get_result(&mut conn)
                .expect("counting pending mail")
        };
        assert_eq!(
            pending, 0,
            "the test left mail in the outbox: deliver it with `app.deliver_mail()` and check it"
        );
    }
}
