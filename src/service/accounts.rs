//! Accounts: creating people (the first admin, others with a password or an invitation mailed
//! through the outbox), one-time password links, passwords, time zones, alert preferences and
//! deactivation. A change to an account forgets its cached session checks.

use chrono::Duration;

use super::{blocking, Services};
use crate::chat::rooms::{self, Membership, Room};
use crate::chat::users::{self, User};
use crate::chat::{self, alert_log, alerts, input, outbox, sessions, tokens};
use crate::db::AnyConnection;
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

/// Stores a new password hash and ends every session of the account: whoever knew the old
/// password is out (the caller may start a new session in the same transaction).
fn replace_password(conn: &mut AnyConnection, user_id: i64, hash: &str) -> Result<()> {
    users::set_password(conn, user_id, hash)?;
    sessions::revoke_all(conn, user_id, None)?;
    Ok(())
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
            replace_password(conn, user.id, &hash)?;
            Ok::<_, Error>(user)
        })
        .await
        .inspect(|user| svc.sessions.forget_user(user.id))
}

/// Creates the very first account, an admin, from the one-time setup link, and logs it in.
/// Returns the new session's token; once any account exists this is "not found".
pub async fn set_up_first_admin(
    svc: &Services,
    username: &str,
    email: &str,
    password: &str,
    user_agent: &str,
) -> Result<String> {
    let username = input::username(username)?;
    let email = input::email(email)?;
    let password = input::password(password)?.to_string();
    let hash = blocking(move || users::hash_password(&password)).await?;
    let agent = user_agent.to_string();
    svc.db
        .write(move |conn| {
            // Checked inside the transaction: only the very first account can come from here.
            if users::count(conn)? > 0 {
                return Err(Error::NotFound);
            }
            let now = chat::now();
            let id = users::create(conn, &username, &email, Some(&hash), true, now)?;
            sessions::create(conn, id, &agent, now)
        })
        .await
}

/// Whether no account exists yet (the setup link works only then).
pub async fn none_yet(svc: &Services) -> Result<bool> {
    Ok(svc.db.run(users::count).await? == 0)
}

/// The person a one-time password link is for, while it is valid.
pub async fn link_holder(svc: &Services, token: String) -> Result<User> {
    let (_, user) = svc
        .db
        .run(move |conn| tokens::find(conn, &token, chat::now()))
        .await?;
    Ok(user)
}

/// Sets a password through a one-time link: the link is used up, every other session of the
/// person ends, and a new one starts. Returns its token.
pub async fn set_password_by_link(
    svc: &Services,
    token: String,
    password: &str,
    user_agent: &str,
) -> Result<String> {
    let password = input::password(password)?.to_string();
    let hash = blocking(move || users::hash_password(&password)).await?;
    let agent = user_agent.to_string();
    let (user_id, session) = svc
        .db
        .write(move |conn| {
            let now = chat::now();
            let (token_id, user) = tokens::find(conn, &token, now)?;
            tokens::consume(conn, token_id, now)?;
            replace_password(conn, user.id, &hash)?;
            Ok::<_, Error>((user.id, sessions::create(conn, user.id, &agent, now)?))
        })
        .await?;
    svc.sessions.forget_user(user_id);
    Ok(session)
}

/// Changes `user`'s password, given the current one. Every session ends (the caller's continues
/// under the returned new token) and every outstanding reset or invitation link stops working, so
/// whoever knew the old password or holds an old link is out.
pub async fn change_password(
    svc: &Services,
    user: &User,
    current: &str,
    new: &str,
    user_agent: &str,
) -> Result<String> {
    let new = input::password(new)?.to_string();
    let (stored, given) = (user.password_hash.clone(), current.to_string());
    let hash = blocking(move || {
        if !users::verify_password(stored.as_deref(), &given) {
            return Err(Error::Invalid("Your current password is not right.".into()));
        }
        users::hash_password(&new)
    })
    .await?;
    let (uid, agent) = (user.id, user_agent.to_string());
    let token = svc
        .db
        .write(move |conn| {
            replace_password(conn, uid, &hash)?;
            tokens::revoke_unused(conn, uid)?;
            sessions::create(conn, uid, &agent, chat::now())
        })
        .await?;
    svc.sessions.forget_user(uid);
    Ok(token)
}

/// Sets `uid`'s time zone (an IANA name).
pub async fn set_time_zone(svc: &Services, uid: i64, time_zone: String) -> Result<()> {
    svc.db
        .write(move |conn| users::set_time_zone(conn, uid, &time_zone))
        .await?;
    svc.sessions.forget_user(uid);
    Ok(())
}

/// Deactivates user `user_id` (ending all their sessions) or makes them active again; an admin
/// cannot deactivate themselves.
pub async fn set_active(svc: &Services, admin_id: i64, user_id: i64, active: bool) -> Result<User> {
    if user_id == admin_id && !active {
        return Err(Error::Invalid(
            "You cannot deactivate your own account.".into(),
        ));
    }
    let user = svc
        .db
        .write(move |conn| {
            users::set_active(conn, user_id, active)?;
            users::find(conn, user_id)
        })
        .await;
    svc.sessions.forget_user(user_id);
    user
}

/// Every account (admin).
pub async fn list(svc: &Services) -> Result<Vec<User>> {
    svc.db.run(users::list).await
}

/// What the settings page shows of a member.
pub struct Overview {
    /// Their sessions.
    pub sessions: Vec<sessions::Session>,
    /// Their rooms with alert levels.
    pub memberships: Vec<(Room, Membership)>,
    /// Alert mail sent to them.
    pub sent: Vec<outbox::OutboxRow>,
    /// The alert planner's recent decisions about them.
    pub decisions: Vec<alert_log::Logged>,
}

/// What the settings page shows of `uid`.
pub async fn overview(svc: &Services, uid: i64) -> Result<Overview> {
    let now = chat::now();
    svc.db
        .run(move |conn| {
            Ok(Overview {
                sessions: sessions::list(conn, uid)?,
                memberships: rooms::memberships(conn, uid)?,
                sent: outbox::recent_alerts(conn, uid, 20)?,
                decisions: alert_log::recent(conn, uid, now, 30)?,
            })
        })
        .await
}

/// Sets how `uid` gets alert mail (`off`, `alerts`, `digest` at `digest_hour`).
pub async fn set_alert_mode(
    svc: &Services,
    uid: i64,
    mode: String,
    digest_hour: i32,
) -> Result<()> {
    let result = svc
        .db
        .write(move |conn| alerts::set_mode(conn, uid, &mode, digest_hour))
        .await;
    svc.sessions.forget_user(uid);
    result
}

/// Turns alert mail off for user `user_id` (the signed one-click link; an unknown user is "not found").
pub async fn unsubscribe(svc: &Services, user_id: i64) -> Result<()> {
    svc.db
        .write(move |conn| {
            alerts::set_mode(conn, user_id, "off", 8).map_err(|e| match e {
                Error::Invalid(_) => Error::NotFound,
                other => other,
            })
        })
        .await?;
    svc.sessions.forget_user(user_id);
    Ok(())
}

/// Sets how much of room `slug` alerts its member `uid`; returns the room's name.
pub async fn set_room_alerts(
    svc: &Services,
    slug: String,
    uid: i64,
    level: String,
) -> Result<String> {
    svc.db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            alerts::set_room_level(conn, room.id, uid, &level)?;
            Ok(room.name)
        })
        .await
}

/// Mail not delivered yet, oldest first (admin).
pub async fn undelivered_mail(svc: &Services, limit: i64) -> Result<Vec<outbox::OutboxRow>> {
    svc.db
        .run(move |conn| outbox::undelivered(conn, limit))
        .await
}
