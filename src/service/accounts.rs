//! Accounts: creating people (with a password, or an invitation mailed through the outbox),
//! one-time password links and setting a password.

use chrono::Duration;

use super::{blocking, Services};
use crate::chat::users::{self, User};
use crate::chat::{self, input, outbox, sessions, tokens};
use crate::error::{Error, Result};

/// Who to create: the admin page's form and `confab user add` alike.
pub struct NewAccount<'a> {
    /// Login name (checked here).
    pub username: &'a str,
    /// Where mail goes (checked here).
    pub email: &'a str,
    /// A password to set now; `None` mails an invitation link instead.
    pub password: Option<&'a str>,
    /// May use the admin pages.
    pub admin: bool,
}

/// Creates an account. Without a password, the person is invited: a one-time link is mailed to
/// them (through the outbox, in the same transaction) and returned, so the admin can pass it on.
pub async fn create(svc: &Services, account: NewAccount<'_>) -> Result<(User, Option<String>)> {
    let username = input::username(account.username)?;
    let email = input::email(account.email)?;
    let hash = match account.password {
        Some(password) => {
            let password = input::password(password)?.to_string();
            Some(blocking(move || users::hash_password(&password)).await?)
        }
        None => None,
    };
    let (admin, mail) = (account.admin, svc.mail.clone());
    svc.db
        .write(move |conn| {
            let now = chat::now();
            let id = users::create(conn, &username, &email, hash.as_deref(), admin, now)?;
            let user = users::find(conn, id)?;
            if hash.is_some() {
                return Ok((user, None));
            }
            let token = tokens::issue(conn, id, tokens::SET_PASSWORD, now)?;
            let invite = mail
                .link_mail("invite", &user, &token)
                .map_err(|e| Error::internal("rendering an invitation", e))?;
            outbox::enqueue(conn, &invite, now)?;
            Ok((user, Some(token)))
        })
        .await
}

/// A new one-time "set your password" link for user `user_id`, for an admin to hand over.
pub async fn password_link(svc: &Services, user_id: i64) -> Result<(User, String)> {
    svc.db
        .write(move |conn| {
            let user = users::find(conn, user_id)?;
            let token = tokens::issue(conn, user.id, tokens::SET_PASSWORD, chat::now())?;
            Ok((user, token))
        })
        .await
}

/// "I forgot my password": mails a reset link to the account named by `who` (a username or an
/// address), at most one per account per ten minutes. Says nothing about whether one matched.
pub async fn forgot(svc: &Services, who: String) -> Result<()> {
    let mail = svc.mail.clone();
    svc.db
        .write(move |conn| {
            let Some(user) = users::find_by_name_or_email(conn, &who)? else {
                return Ok(());
            };
            let now = chat::now();
            if tokens::recently_issued(conn, user.id, tokens::RESET, now - Duration::minutes(10))? {
                return Ok(());
            }
            let token = tokens::issue(conn, user.id, tokens::RESET, now)?;
            let reset = mail
                .link_mail("reset", &user, &token)
                .map_err(|e| Error::internal("rendering a reset mail", e))?;
            outbox::enqueue(conn, &reset, now)
        })
        .await
}

/// Sets the password of `username` and ends all their sessions (`confab user password`).
pub async fn set_password(svc: &Services, username: &str, password: &str) -> Result<User> {
    let password = input::password(password)?.to_string();
    let hash = blocking(move || users::hash_password(&password)).await?;
    let username = username.to_string();
    svc.db
        .write(move |conn| {
            let user = users::find_by_username(conn, &username)?.ok_or_else(|| {
                Error::Invalid(format!("There is no user `{}`.", input::clean(&username)))
            })?;
            users::set_password(conn, user.id, &hash)?;
            sessions::revoke_all(conn, user.id, None)?;
            Ok(user)
        })
        .await
}
