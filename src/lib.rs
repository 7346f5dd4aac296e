//! Confab: a self-hosted, persistent, asynchronous team chat.
//!
//! [`app`] assembles the Rocket application from [`Settings`]; the `confab` binary and the tests
//! both use it.

// The settings' defaults are one `serde_json::json!` object, deeper than the default limit.
#![recursion_limit = "256"]

pub mod assets;
pub mod cache;
pub mod chat;
pub mod commands;
pub mod db;
pub mod error;
pub mod files;
pub mod format;
pub mod import;
pub mod inbound;
pub mod jobs;
pub mod live;
pub mod mail;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod web;

use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::{Build, Rocket};

pub use settings::Settings;

use db::Db;

/// Assembles Confab: migrations at ignition, the database pool, templates and the web stage.
pub fn app(settings: Settings) -> Rocket<Build> {
    let db = Db::new(&settings.database_url, settings.db_pool_size);
    let theme = assets::Theme::new(settings.theme_dir.clone());
    let form_limit = web::session::form_limit(&settings);
    let figment = settings.figment.clone().merge(("limits.form", form_limit));
    rocket::custom(figment)
        .manage(web::Setup {
            token: crate::secrets::random_token(),
        })
        .manage(files::FileStore::new(settings.uploads.dir.clone()))
        .manage(jobs::listen::Stop::default())
        .manage(live::Live::new(
            settings.poll.max_held,
            Duration::from_secs(settings.presence_timeout),
        ))
        .manage(db)
        .manage(theme)
        .manage(settings)
        .attach(AdHoc::try_on_ignite("Migrations", |rocket| async move {
            let Some(url) = rocket.state::<Settings>().map(|s| s.database_url.clone()) else {
                return Err(rocket);
            };
            match tokio::task::spawn_blocking(move || db::migrate(&url)).await {
                Ok(Ok(_)) => Ok(rocket),
                Ok(Err(e)) => {
                    eprintln!("confab: {e}");
                    Err(rocket)
                }
                Err(e) => {
                    eprintln!("confab: migrations failed: {e}");
                    Err(rocket)
                }
            }
        }))
        .attach(AdHoc::try_on_ignite(
            "Templates and mail",
            |rocket| async move {
                let (Some(settings), Some(theme)) =
                    (rocket.state::<Settings>(), rocket.state::<assets::Theme>())
                else {
                    return Err(rocket);
                };
                let built = theme.page_templates().and_then(|pages| {
                    let mail = std::sync::Arc::new(mail::Mail::from_settings(settings, theme)?);
                    Ok((pages, mail))
                });
                let (Some(db), Some(live), Some(store)) = (
                    rocket.state::<Db>(),
                    rocket.state::<live::Live>(),
                    rocket.state::<files::FileStore>(),
                ) else {
                    return Err(rocket);
                };
                match built {
                    Ok((pages, mail)) => {
                        let services = service::Services::new(
                            settings,
                            db.clone(),
                            live.clone(),
                            store.clone(),
                            mail.clone(),
                        );
                        Ok(rocket
                            .manage(web::template::Pages::new(pages))
                            .manage(mail)
                            .manage(services))
                    }
                    Err(e) => {
                        eprintln!("confab: {e}");
                        Err(rocket)
                    }
                }
            },
        ))
        .attach(web::stage())
        .attach(jobs::stage())
        .attach(inbound::stage())
        .attach(AdHoc::on_liftoff("Welcome", |rocket| {
            Box::pin(async move {
                let (Some(settings), Some(db), Some(setup)) = (
                    rocket.state::<Settings>(),
                    rocket.state::<Db>(),
                    rocket.state::<web::Setup>(),
                ) else {
                    return;
                };
                println!(
                    "Confab is running at {} ({})",
                    settings.public_url,
                    settings.database_url.display()
                );
                if let Ok(0) = db.run(chat::users::count).await {
                    println!(
                        "No accounts yet. To create the admin account, open this one-time link:"
                    );
                    println!("    {}/setup/{}", settings.public_url, setup.token);
                    println!("or run: confab user add <username> <email> --admin");
                }
            })
        }))
}
