//! The web layer: routes, guards, catchers and the response headers every page gets.

mod admin;
mod alerts;
mod api;
mod auth;
mod avatars;
pub mod error;
mod export;
mod missed;
mod pages;
mod search;
pub mod session;
mod settings;
pub mod template;
mod uploads;
pub mod view;

use rocket::fairing::{AdHoc, Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{Flash, Redirect, Responder};
use rocket::shield::{NoSniff, Shield};
use rocket::{catch, catchers, Request, Response};
use template::Template;

pub use auth::Setup;
pub use session::{AdminUser, CurrentUser};

use error::{AppError, Error, Result};

/// What a form handler answers: a redirect (post/redirect/get), or the page again with an error.
#[derive(Responder)]
pub enum Reply {
    /// Go on to another page.
    Redirect(Redirect),
    /// Go on to another page with a notice.
    Flash(Flash<Redirect>),
    /// Show a page with this status (a form re-rendered with its error and the user's input).
    Page((Status, Template)),
}

/// The app's shared services, as one request guard.
pub struct App<'r> {
    /// The use cases' services.
    pub svc: &'r crate::service::Services,
    /// The settings.
    pub settings: &'r crate::settings::Settings,
    /// Room heads, held polls and presence.
    pub live: &'r crate::live::Live,
    /// The page templates and the messages they rendered.
    pub pages: &'r template::Pages,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for App<'r> {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let rocket = req.rocket();
        match (
            rocket.state::<crate::service::Services>(),
            rocket.state(),
            rocket.state(),
        ) {
            (Some(svc), Some(settings), Some(pages)) => Outcome::Success(App {
                svc,
                settings,
                live: &svc.live,
                pages,
            }),
            _ => Outcome::Error((
                Status::InternalServerError,
                AppError::internal("a request", "the app state is not managed").into(),
            )),
        }
    }
}

/// The browser's name for itself, for the list of sessions.
pub struct UserAgent(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(UserAgent(
            req.headers()
                .get_one("User-Agent")
                .unwrap_or("")
                .to_string(),
        ))
    }
}

/// The client's address as Confab sees it: the peer, or the `proxy_ip_header` a trusted reverse
/// proxy sets (Rocket's `ip_header`, off unless configured, so that a client cannot choose its own).
pub struct ClientAddress(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientAddress {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let proxied =
            req.headers().contains("X-Forwarded-For") || req.headers().contains("X-Real-IP");
        if proxied
            && req.rocket().config().ip_header.is_none()
            && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            log::warn!(
                "requests carry X-Forwarded-For or X-Real-IP but `proxy_ip_header` is not set: \
                 every client behind the proxy counts as the proxy's address for login limits"
            );
        }
        Outcome::Success(ClientAddress(req.client_ip().map_or_else(
            || "unknown".to_string(),
            |ip| match ip {
                // One IPv6 client usually holds a whole /64: count it as one address.
                std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
                other => other.to_canonical().to_string(),
            },
        )))
    }
}

/// The web stage: routes, static files, catchers and security headers.
pub fn stage() -> AdHoc {
    AdHoc::on_ignite("Web", move |rocket| async move {
        rocket
            .mount("/", auth::routes())
            .mount("/", pages::routes())
            .mount("/", settings::routes())
            .mount("/", avatars::routes())
            .mount("/", uploads::routes())
            .mount("/api", api::routes())
            .mount("/", search::routes())
            .mount("/", missed::routes())
            .mount("/", export::routes())
            .mount("/", alerts::routes())
            .mount("/admin", admin::routes())
            .mount("/", rocket::routes![healthz, readyz, static_file, favicon])
            .register("/", catchers![unauthorized, forbidden, any_error])
            // SecurityHeaders sets nosniff on every response (downloads set it themselves), so
            // Shield does not, and logs no "refusing to overwrite" warning per download.
            .attach(Shield::default().disable::<NoSniff>())
            .attach(SecurityHeaders)
    })
}

/// A static file with its type and caching.
#[derive(Responder)]
struct Asset {
    body: std::borrow::Cow<'static, [u8]>,
    kind: ContentType,
    cache: Header<'static>,
}

/// A static file: the theme's copy, else the embedded one. Cached for an hour.
#[rocket::get("/static/<path..>")]
async fn static_file(
    path: std::path::PathBuf,
    theme: &rocket::State<crate::assets::Theme>,
) -> Option<Asset> {
    let kind = path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(ContentType::from_extension)
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        body: theme.static_file(&path).await?,
        kind,
        cache: Header::new("Cache-Control", "public, max-age=3600"),
    })
}

/// Browsers ask for `/favicon.ico` whatever the page says: answer with the icon.
#[rocket::get("/favicon.ico")]
async fn favicon(theme: &rocket::State<crate::assets::Theme>) -> Option<Asset> {
    Some(Asset {
        body: theme
            .static_file(std::path::Path::new("favicon.svg"))
            .await?,
        kind: ContentType::SVG,
        cache: Header::new("Cache-Control", "public, max-age=86400"),
    })
}

/// Liveness: answers without touching the database.
#[rocket::get("/healthz")]
fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when the database answers, 503 when it does not.
#[rocket::get("/readyz")]
async fn readyz(db: &rocket::State<crate::db::Db>) -> Result<&'static str> {
    db.run(|conn| Ok(crate::db::ping(conn).map(|()| "ready")?))
        .await
}

#[catch(401)]
fn unauthorized(req: &Request<'_>) -> std::result::Result<Redirect, Error> {
    if req.uri().path().starts_with("/api/") {
        return Err(Error::Unauthorized);
    }
    let next = if req.method() == rocket::http::Method::Get {
        req.uri().to_string()
    } else {
        "/".into()
    };
    Ok(Redirect::to(rocket::uri!(auth::login_page(
        next = Some(next)
    ))))
}

#[catch(403)]
fn forbidden(req: &Request<'_>) -> Error {
    if req.local_cache(|| session::CsrfRejected(false)).0 {
        Error::CsrfExpired
    } else {
        AppError::Forbidden.into()
    }
}

#[catch(default)]
fn any_error(status: Status, _req: &Request<'_>) -> Error {
    Error::from_status(status)
}

/// Adds the Content-Security-Policy and friends to every response.
struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "Security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, _req: &'r Request<'_>, res: &mut Response<'r>) {
        if !res.headers().contains("Content-Security-Policy") {
            res.set_header(Header::new(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
                 base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ));
        }
        // Pages, exports, files and events are private: no browser or proxy may keep them.
        // Static files set their own caching.
        if !res.headers().contains("Cache-Control") {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
        res.set_header(Header::new("Referrer-Policy", "same-origin"));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
    }
}
