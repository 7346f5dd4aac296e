//! Who is asking: the session cookie, the logged-in user guards, and the CSRF token every form carries.

use rocket::data::{FromData, Limits, Outcome as DataOutcome, ToByteUnit};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::{Data, Request, State};
use std::sync::Arc;

use super::error::{AppError, Error};
use crate::chat::users::User;
use crate::service::Services;
use crate::settings::Settings;

const SESSION_COOKIE: &str = "confab_session";
const CSRF_COOKIE: &str = "confab_csrf";

/// The logged-in person making the request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Their account, shared with the session cache.
    pub user: Arc<User>,
    /// The session the request came with.
    pub session_id: i64,
}

/// A logged-in admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

async fn lookup(req: &Request<'_>) -> Result<Option<CurrentUser>, Error> {
    let Some(token) = req
        .cookies()
        .get_private(SESSION_COOKIE)
        .map(|c| c.value().to_string())
    else {
        return Ok(None);
    };
    let Some(svc) = req.rocket().state::<Services>() else {
        return Err(
            AppError::internal("checking a session", "the services are not managed").into(),
        );
    };
    let found = crate::service::sessions::check(svc, token).await?;
    Ok(found.map(|(user, session_id)| CurrentUser { user, session_id }))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        let cached = req
            .local_cache_async(async { lookup(req).await.map_err(|e| (e.status(), e.to_string())) })
            .await;
        match cached {
            Ok(Some(user)) => Outcome::Success(user.clone()),
            Ok(None) => Outcome::Error((Status::Unauthorized, Error::Unauthorized)),
            Err((status, why)) => {
                Outcome::Error((*status, AppError::Unavailable(why.clone().into()).into()))
            }
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminUser {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        match CurrentUser::from_request(req).await {
            Outcome::Success(user) if user.user.is_admin => Outcome::Success(AdminUser(user)),
            Outcome::Success(_) => Outcome::Error((Status::Forbidden, AppError::Forbidden.into())),
            Outcome::Error(e) => Outcome::Error(e),
            Outcome::Forward(f) => Outcome::Forward(f),
        }
    }
}

fn cookie(settings: &Settings, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.is_https())
        .max_age(rocket::time::Duration::days(settings.login.session_days))
        .build()
}

/// Starts the browser's session after a login: sets the session cookie and a fresh form token.
pub fn start(cookies: &CookieJar<'_>, settings: &Settings, token: String) {
    cookies.add_private(cookie(settings, SESSION_COOKIE, token));
    cookies.add_private(cookie(
        settings,
        CSRF_COOKIE,
        crate::secrets::random_token(),
    ));
}

/// The session token the browser holds, if any.
pub fn token(cookies: &CookieJar<'_>) -> Option<String> {
    cookies
        .get_private(SESSION_COOKIE)
        .map(|c| c.value().to_string())
}

/// Forgets the browser's session and form token.
pub fn end(cookies: &CookieJar<'_>) {
    cookies.remove_private(Cookie::build(SESSION_COOKIE).path("/"));
    cookies.remove_private(Cookie::build(CSRF_COOKIE).path("/"));
}

/// The form token for this browser, to be put in every form as the `csrf` field; made on first use.
/// It lives in an encrypted, HttpOnly, SameSite cookie, so another site can neither read nor send it.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// This browser's form token, when it already has one (for forms inside fragments the live page
/// fetches); empty otherwise. Read only when something is rendered, so an empty poll costs nothing.
pub fn existing_csrf(cookies: &CookieJar<'_>) -> String {
    cookies
        .get_private(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        if let Some(existing) = req.cookies().get_private(CSRF_COOKIE) {
            return Outcome::Success(CsrfToken(existing.value().to_string()));
        }
        let settings = match req.guard::<&State<Settings>>().await {
            Outcome::Success(settings) => settings,
            _ => {
                return Outcome::Error((
                    Status::InternalServerError,
                    AppError::internal("reading a form", "the settings are not managed").into(),
                ))
            }
        };
        let token = crate::secrets::random_token();
        req.cookies()
            .add_private(cookie(settings, CSRF_COOKIE, token.clone()));
        Outcome::Success(CsrfToken(token))
    }
}

/// The logged-in user and form token of a request, when a guard has already checked the session
/// (never a query: for error pages, which keep the navigation when the person is known).
pub fn known_user(req: &Request<'_>) -> Option<(CurrentUser, CsrfToken)> {
    let checked = req.local_cache(|| Ok::<Option<CurrentUser>, (Status, String)>(None));
    let user = checked.as_ref().ok()?.clone()?;
    let token = req.cookies().get_private(CSRF_COOKIE)?;
    Some((user, CsrfToken(token.value().to_string())))
}

/// Set on a request whose form token was missing or wrong, so that the 403 page can say so.
pub struct CsrfRejected(pub bool);

/// A urlencoded form whose `csrf` field matched this browser's form token. Every state-changing
/// form goes through this guard; a forged or stale form answers 403 "this form has expired".
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

/// A JSON request from the live page, carrying the form token in `X-CSRF-Token`.
#[derive(Debug)]
pub struct CsrfHeader;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfHeader {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Error> {
        match verify_csrf(
            req.cookies(),
            req.headers().get_one("X-CSRF-Token").unwrap_or(""),
        ) {
            Ok(()) => Outcome::Success(CsrfHeader),
            Err(e) => {
                req.local_cache(|| CsrfRejected(true));
                Outcome::Error((Status::Forbidden, e))
            }
        }
    }
}

/// A state-changing form with no fields but its token (buttons such as "log out" or "delete").
#[derive(Debug)]
pub struct Csrf;

/// Reads a urlencoded body and checks its `csrf` field against the browser's form token.
async fn checked_body<'r>(req: &'r Request<'_>, data: Data<'r>) -> Result<String, (Status, Error)> {
    let limit = req.limits().get("form").unwrap_or(Limits::FORM);
    let body = match data.open(limit).into_string().await {
        Ok(body) if body.is_complete() => body.into_inner(),
        Ok(_) => {
            return Err((
                Status::PayloadTooLarge,
                Error::from_status(Status::PayloadTooLarge),
            ))
        }
        Err(e) => return Err((Status::BadRequest, Error::BadRequest(e.to_string()))),
    };
    let sent = Form::values(&body)
        .find(|field| field.name == "csrf")
        .map(|field| field.value.to_string());
    let expected = req
        .cookies()
        .get_private(CSRF_COOKIE)
        .map(|c| c.value().to_string());
    let valid = matches!((&sent, &expected), (Some(s), Some(e)) if crate::secrets::constant_time_eq(s.as_bytes(), e.as_bytes()));
    if !valid {
        req.local_cache(|| CsrfRejected(true));
        return Err((Status::Forbidden, Error::CsrfExpired));
    }
    Ok(body)
}

#[rocket::async_trait]
impl<'r, T: for<'a> FromForm<'a> + 'static> FromData<'r> for CsrfForm<T> {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        let body = match checked_body(req, data).await {
            Ok(body) => body,
            Err(failure) => return DataOutcome::Error(failure),
        };
        match Form::<T>::parse_encoded(rocket::http::RawStr::new(&body)) {
            Ok(form) => DataOutcome::Success(CsrfForm(form)),
            Err(errors) => DataOutcome::Error((
                Status::UnprocessableEntity,
                Error::invalid(errors.to_string()),
            )),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromData<'r> for Csrf {
    type Error = Error;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> DataOutcome<'r, Self> {
        match checked_body(req, data).await {
            Ok(_) => DataOutcome::Success(Csrf),
            Err(failure) => DataOutcome::Error(failure),
        }
    }
}

/// Checks a form's `csrf` value against the browser's form token.
pub fn verify_csrf(cookies: &CookieJar<'_>, sent: &str) -> Result<(), Error> {
    match cookies.get_private(CSRF_COOKIE) {
        Some(expected)
            if !sent.is_empty()
                && crate::secrets::constant_time_eq(
                    sent.as_bytes(),
                    expected.value().as_bytes(),
                ) =>
        {
            Ok(())
        }
        _ => Err(Error::CsrfExpired),
    }
}

/// The largest form Confab accepts: a message at its maximum length in 4-byte characters, percent-encoded, plus room.
pub fn form_limit(settings: &Settings) -> rocket::data::ByteUnit {
    ((settings.max_message_chars as u64) * 12 + 16 * 1024).bytes()
}
