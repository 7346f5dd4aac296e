//! Logging in and out, the first-run setup link, and one-time "set your password" links.

use crate::web::template::Template;
use chrono::Duration;
use rocket::form::FromForm;
use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::error::{AppError, Result};
use super::session::{self, Csrf, CsrfForm, CsrfToken, CurrentUser, SessionCache};
use super::view::Layout;
use super::{ClientAddress, Reply, UserAgent};
use crate::chat::{self, input, logins, sessions, tokens, users};
use crate::db::Db;
use crate::service::{accounts, blocking};
use crate::settings::Settings;

/// The one-time token of the first-run setup link, made at start; it works only while no account exists.
pub struct Setup {
    /// The token in `/setup/<token>`.
    pub token: String,
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        login_page,
        login,
        logout,
        setup_page,
        setup,
        forgot_page,
        forgot,
        password_page,
        set_password
    ]
}

/// A `next` target is only ever a path on this site, and always a valid URI: characters a URI may
/// not hold (a space, `é`, `"`) are percent-encoded, anything else odd falls back to `/`.
fn safe_next(next: Option<&str>) -> String {
    use std::fmt::Write as _;
    let Some(n) = next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
    else {
        return "/".to_string();
    };
    let mut encoded = String::with_capacity(n.len());
    for byte in n.bytes() {
        if byte.is_ascii_graphic()
            && !matches!(byte, b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^')
        {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    match rocket::http::uri::Origin::parse(&encoded) {
        Ok(_) => encoded,
        Err(_) => "/".to_string(),
    }
}

#[get("/login?<next>")]
fn login_page(csrf: CsrfToken, flash: Option<FlashMessage<'_>>, next: Option<&str>) -> Template {
    Template::render(
        "login",
        context! { layout: Layout::anonymous(&csrf, flash), next: safe_next(next), username: "" },
    )
}

#[derive(FromForm)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

#[post("/login", data = "<form>")]
async fn login(
    form: CsrfForm<LoginForm>,
    db: &State<Db>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
    address: ClientAddress,
) -> Result<Reply> {
    let form = form.0;
    let next = safe_next(form.next.as_deref());
    let now = chat::now();
    let name = form.username.clone();
    let user = db
        .run(move |conn| users::find_by_username(conn, &name))
        .await?;
    // Every attempt is counted before the password is checked, in one statement per counter, so
    // that guesses sent in parallel cannot slip past the limit. Counted per name tried (whether or
    // not it exists, so that an answer never tells which names do) and client address, and per
    // address alone, so that a guesser locks out only themselves.
    let window_start = now - Duration::seconds(settings.login.lockout_secs);
    let (name, from) = (form.username.clone(), address.0.clone());
    let address_limit = settings.login.max_failures_per_address;
    let counted = db
        .write(move |conn| {
            logins::count_attempt(conn, &name, &from, now, window_start, address_limit)
        })
        .await?;
    let lockout = Duration::seconds(settings.login.lockout_secs);
    // The window that is over its limit says how long to wait.
    let refused = |counted: &logins::Counted, at_limit: bool| {
        let over = |n: i32, limit: i32| if at_limit { n >= limit } else { n > limit };
        let started = if over(counted.for_address, address_limit) {
            Some(counted.address_started)
        } else if over(counted.for_name, settings.login.max_failures) {
            Some(counted.name_started)
        } else {
            None
        };
        started.map(|started| AppError::TooManyRequests {
            retry_after_secs: (started + lockout - now).num_seconds().max(1),
        })
    };
    if let Some(refusal) = refused(&counted, false) {
        return Err(refusal.into());
    }
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = form.password.clone();
    let matches = blocking(move || Ok(users::verify_password(hash.as_deref(), &password))).await?;
    match user {
        Some(user) if matches && user.is_active => {
            let agent = agent.0;
            let (name, from) = (form.username.clone(), address.0);
            let token = db
                .write(move |conn| {
                    logins::succeeded(conn, &name, &from)?;
                    sessions::create(conn, user.id, &agent, now)
                })
                .await?;
            session::start(cookies, settings, token);
            Ok(Reply::Redirect(Redirect::to(next)))
        }
        found => {
            // A right password for a deactivated account says so; anything else is one message.
            let deactivated = found.is_some() && matches;
            if !deactivated {
                // Slower with each failure for this name, from here or from anywhere.
                let steps = (counted.for_name - 2)
                    .max(counted.for_name_anywhere - settings.login.max_failures)
                    .max(0);
                if steps > 0 {
                    let delay = settings.login.slowdown_ms * steps as u64;
                    tokio::time::sleep(std::time::Duration::from_millis(delay.min(5_000))).await;
                }
                if let Some(refusal) = refused(&counted, true) {
                    return Err(refusal.into());
                }
            }
            let message = if deactivated {
                "This account is deactivated. Please ask an admin."
            } else {
                "Wrong username or password."
            };
            let page = Template::render(
                "login",
                context! {
                    layout: Layout::anonymous(&csrf, None),
                    next,
                    username: form.username,
                    error: message,
                },
            );
            Ok(Reply::Page((Status::Unauthorized, page)))
        }
    }
}

#[post("/logout", data = "<_form>")]
async fn logout(
    _form: Csrf,
    user: Option<CurrentUser>,
    db: &State<Db>,
    sessions: &State<SessionCache>,
    cookies: &CookieJar<'_>,
) -> Result<Flash<Redirect>> {
    if let Some(user) = user {
        sessions.forget_user(user.user.id);
    }
    if let Some(token) = session::token(cookies) {
        db.write(move |conn| sessions::end(conn, &token)).await?;
    }
    session::end(cookies);
    Ok(Flash::success(
        Redirect::to("/login"),
        "You are logged out.",
    ))
}

#[get("/setup/<token>")]
async fn setup_page(
    token: &str,
    setup: &State<Setup>,
    db: &State<Db>,
    csrf: CsrfToken,
) -> Result<Template> {
    check_setup(token, setup, db).await?;
    Ok(Template::render(
        "setup",
        context! { layout: Layout::anonymous(&csrf, None), token, username: "", email: "" },
    ))
}

async fn check_setup(token: &str, setup: &Setup, db: &Db) -> Result<()> {
    if !crate::secrets::constant_time_eq(token.as_bytes(), setup.token.as_bytes())
        || db.run(users::count).await? > 0
    {
        return Err(AppError::NotFound.into());
    }
    Ok(())
}

#[derive(FromForm)]
struct AccountForm {
    username: String,
    email: String,
    password: String,
    confirm: String,
}

#[allow(clippy::too_many_arguments)]
#[post("/setup/<token>", data = "<form>")]
async fn setup(
    token: &str,
    form: CsrfForm<AccountForm>,
    setup: &State<Setup>,
    db: &State<Db>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
) -> Result<Reply> {
    check_setup(token, setup, db).await?;
    let form = form.0;
    let checked = (|| {
        let username = input::username(&form.username)?;
        let email = input::email(&form.email)?;
        new_password(&form.password, &form.confirm)?;
        Ok::<_, AppError>((username, email))
    })();
    let (username, email) = match checked {
        Ok(ok) => ok,
        Err(AppError::Invalid(message)) => {
            let page = Template::render(
                "setup",
                context! { layout: Layout::anonymous(&csrf, None), token, username: form.username, email: form.email, error: message },
            );
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
        Err(e) => return Err(e.into()),
    };
    let password = form.password;
    let hash = blocking(move || users::hash_password(&password)).await?;
    let now = chat::now();
    let agent = agent.0;
    let session_token = db
        .write(move |conn| {
            // Checked again inside the transaction: only the very first account can come from here.
            if users::count(conn)? > 0 {
                return Err(AppError::NotFound);
            }
            let id = users::create(conn, &username, &email, Some(&hash), true, now)?;
            sessions::create(conn, id, &agent, now)
        })
        .await?;
    session::start(cookies, settings, session_token);
    Ok(Reply::Flash(Flash::success(
        Redirect::to("/"),
        "Welcome! Your admin account is ready. Create a room in Admin.",
    )))
}

/// Checks a new password and its confirmation.
pub fn new_password(password: &str, confirm: &str) -> Result<(), AppError> {
    input::password(password)?;
    if password != confirm {
        return Err(AppError::Invalid("The two passwords do not match.".into()));
    }
    Ok(())
}

#[get("/password/forgot")]
fn forgot_page(csrf: CsrfToken) -> Template {
    Template::render(
        "forgot",
        context! { layout: Layout::anonymous(&csrf, None), sent: false },
    )
}

#[derive(FromForm)]
struct ForgotForm {
    who: String,
}

/// Mails a reset link through the outbox. The answer is the same whether or not an account
/// matched, so the page tells nobody which addresses have accounts.
#[post("/password/forgot", data = "<form>")]
async fn forgot(
    form: CsrfForm<ForgotForm>,
    app: super::App<'_>,
    csrf: CsrfToken,
) -> Result<Template> {
    // One reset mail per account per ten minutes; asking again meanwhile sends nothing more.
    accounts::forgot(app.svc, form.0.who).await?;
    Ok(Template::render(
        "forgot",
        context! { layout: Layout::anonymous(&csrf, None), sent: true },
    ))
}

#[get("/password/<token>")]
async fn password_page(token: String, db: &State<Db>, csrf: CsrfToken) -> Result<Template> {
    let lookup = token.clone();
    let (_, user) = db
        .run(move |conn| tokens::find(conn, &lookup, chat::now()))
        .await?;
    Ok(Template::render(
        "password",
        context! { layout: Layout::anonymous(&csrf, None), token, username: user.username },
    ))
}

#[derive(FromForm)]
struct PasswordForm {
    password: String,
    confirm: String,
}

#[allow(clippy::too_many_arguments)]
#[post("/password/<token>", data = "<form>")]
async fn set_password(
    token: String,
    form: CsrfForm<PasswordForm>,
    db: &State<Db>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
    sessions: &State<SessionCache>,
) -> Result<Reply> {
    let lookup = token.clone();
    let (_, user) = db
        .run(move |conn| tokens::find(conn, &lookup, chat::now()))
        .await?;
    let form = form.0;
    if let Err(AppError::Invalid(message)) = new_password(&form.password, &form.confirm) {
        let page = Template::render(
            "password",
            context! { layout: Layout::anonymous(&csrf, None), token, username: user.username, error: message },
        );
        return Ok(Reply::Page((Status::UnprocessableEntity, page)));
    }
    let password = form.password;
    let hash = blocking(move || users::hash_password(&password)).await?;
    let agent = agent.0;
    let session_token = db
        .write(move |conn| {
            let now = chat::now();
            let (token_id, user) = tokens::find(conn, &token, now)?;
            tokens::consume(conn, token_id, now)?;
            users::set_password(conn, user.id, &hash)?;
            sessions::revoke_all(conn, user.id, None)?;
            sessions::create(conn, user.id, &agent, now)
        })
        .await?;
    sessions.forget_user(user.id);
    session::start(cookies, settings, session_token);
    Ok(Reply::Flash(Flash::success(
        Redirect::to("/"),
        "Your password is set. Welcome to Confab!",
    )))
}
