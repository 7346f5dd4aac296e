//! Logging in and out, the first-run setup link, and one-time "set your password" links.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::{CookieJar, Status};
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::error::{AppError, Result};
use super::session::{self, Csrf, CsrfForm, CsrfToken, CurrentUser};
use super::view::Layout;
use super::{App, ClientAddress, Reply, UserAgent};
use crate::chat::input;
use crate::service::accounts;
use crate::service::sessions::{self, LoggedIn};

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
    app: App<'_>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
    address: ClientAddress,
) -> Result<Reply> {
    let form = form.0;
    let next = safe_next(form.next.as_deref());
    let attempt = sessions::Attempt {
        username: &form.username,
        password: &form.password,
        address: &address.0,
        user_agent: &agent.0,
    };
    let message = match sessions::log_in(app.svc, attempt).await? {
        LoggedIn::Session(token) => {
            session::start(cookies, app.settings, token);
            return Ok(Reply::Redirect(Redirect::to(next)));
        }
        LoggedIn::Deactivated => "This account is deactivated. Please ask an admin.",
        LoggedIn::Wrong => "Wrong username or password.",
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

#[post("/logout", data = "<_form>")]
async fn logout(
    _form: Csrf,
    user: Option<CurrentUser>,
    app: App<'_>,
    cookies: &CookieJar<'_>,
) -> Result<Flash<Redirect>> {
    sessions::log_out(app.svc, session::token(cookies), user.map(|u| u.user.id)).await?;
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
    app: App<'_>,
    csrf: CsrfToken,
) -> Result<Template> {
    check_setup(token, setup, &app).await?;
    Ok(Template::render(
        "setup",
        context! { layout: Layout::anonymous(&csrf, None), token, username: "", email: "" },
    ))
}

async fn check_setup(token: &str, setup: &Setup, app: &App<'_>) -> Result<()> {
    if !crate::secrets::constant_time_eq(token.as_bytes(), setup.token.as_bytes())
        || !accounts::none_yet(app.svc).await?
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

#[post("/setup/<token>", data = "<form>")]
async fn setup(
    token: &str,
    form: CsrfForm<AccountForm>,
    setup: &State<Setup>,
    app: App<'_>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
) -> Result<Reply> {
    check_setup(token, setup, &app).await?;
    let form = form.0;
    let created = match new_password(&form.password, &form.confirm) {
        Ok(()) => {
            accounts::set_up_first_admin(
                app.svc,
                &form.username,
                &form.email,
                &form.password,
                &agent.0,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let session_token = match created {
        Ok(token) => token,
        Err(AppError::Invalid(message)) => {
            let page = Template::render(
                "setup",
                context! { layout: Layout::anonymous(&csrf, None), token, username: form.username, email: form.email, error: message },
            );
            return Ok(Reply::Page((Status::UnprocessableEntity, page)));
        }
        Err(e) => return Err(e.into()),
    };
    session::start(cookies, app.settings, session_token);
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
async fn password_page(token: String, app: App<'_>, csrf: CsrfToken) -> Result<Template> {
    let user = accounts::link_holder(app.svc, token.clone()).await?;
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

#[post("/password/<token>", data = "<form>")]
async fn set_password(
    token: String,
    form: CsrfForm<PasswordForm>,
    app: App<'_>,
    cookies: &CookieJar<'_>,
    csrf: CsrfToken,
    agent: UserAgent,
) -> Result<Reply> {
    let user = accounts::link_holder(app.svc, token.clone()).await?;
    let form = form.0;
    if let Err(AppError::Invalid(message)) = new_password(&form.password, &form.confirm) {
        let page = Template::render(
            "password",
            context! { layout: Layout::anonymous(&csrf, None), token, username: user.username, error: message },
        );
        return Ok(Reply::Page((Status::UnprocessableEntity, page)));
    }
    let session_token =
        accounts::set_password_by_link(app.svc, token, &form.password, &agent.0).await?;
    session::start(cookies, app.settings, session_token);
    Ok(Reply::Flash(Flash::success(
        Redirect::to("/"),
        "Your password is set. Welcome to Confab!",
    )))
}
