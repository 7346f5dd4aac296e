//! Replies by email: a mail to a reply address becomes the member's message in the room (in the
//! thread of the alerted message when there is one), its attachments uploads. Both ways in (the
//! SMTP/LMTP listener and the IMAP poller) come here.

use sha2::Digest;

use super::{messages, uploads, Services};
use crate::chat::{self, outbox, rooms, users};
use crate::error::{Error, Result};
use crate::mail::incoming::{self, Incoming};
use crate::mail::{Refusal, ReplyTarget};

/// What became of a mail to a reply address.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Posted (or, for a redelivered mail, posted before): the messages' ids.
    Posted(Vec<i64>),
    /// Sent by a machine (auto-reply, bounce, list): dropped, so no loop forms.
    Automatic,
    /// From another address than the member's: not posted, and the sender told why.
    WrongSender,
    /// Nothing to post: no text and no attachment.
    Empty,
}

/// Checks a reply address: the member and room it names, or why it is refused (not ours, altered,
/// revoked, expired, or its member deactivated).
pub async fn check_address(
    svc: &Services,
    address: &str,
) -> Result<std::result::Result<ReplyTarget, Refusal>> {
    let Some(token) = svc.mail.read_reply_address(address) else {
        return Ok(Err(Refusal::Forged));
    };
    let uid = token.target.user_id;
    let user = match svc.db.run(move |conn| users::find(conn, uid)).await {
        Ok(user) if user.is_active => user,
        Ok(_) | Err(Error::NotFound) => return Ok(Err(Refusal::Forged)),
        Err(e) => return Err(e),
    };
    Ok(svc.mail.check_reply(&token, user.reply_epoch, chat::now()))
}

/// A short hash of a Message-ID, for the posts' one-time tokens.
fn client_id(message_id: &str, part: usize) -> String {
    let hash = hex::encode(&sha2::Sha256::digest(message_id.as_bytes())[..12]);
    format!("mail:{hash}:{part}")
}

/// Posts the mail `raw`, sent to a checked reply address for `target`. Idempotent by Message-ID:
/// a redelivered mail finds its messages already there. A mail the member cannot post (they left
/// the room, the text is too long) is [`Error::Invalid`] or [`Error::NotFound`]; a database that is
/// down is [`Error::Unavailable`], so the mail can be tried again.
pub async fn receive(svc: &Services, target: ReplyTarget, raw: &[u8]) -> Result<Outcome> {
    let mail = incoming::parse(raw).ok_or_else(|| Error::Invalid("That is not a mail.".into()))?;
    if mail.automatic {
        return Ok(Outcome::Automatic);
    }
    let (uid, room_id) = (target.user_id, target.room_id);
    let (user, slug) = svc
        .db
        .run(move |conn| Ok::<_, Error>((users::find(conn, uid)?, rooms::slug_of(conn, room_id)?)))
        .await?;
    if mail.from.as_deref() != Some(user.email.to_lowercase().as_str()) {
        answer_wrong_sender(svc, &mail).await?;
        return Ok(Outcome::WrongSender);
    }
    let Incoming {
        message_id,
        mut text,
        attachments,
        ..
    } = mail;
    let limit = svc.settings.uploads.max_bytes;
    let (fitting, too_large): (Vec<_>, Vec<_>) = attachments
        .into_iter()
        .partition(|(_, bytes)| bytes.len() as u64 <= limit);
    for (name, bytes) in &too_large {
        text.push_str(&format!(
            "\n\n({} was not attached: {}, more than the limit of {}.)",
            chat::input::file_name(name),
            crate::format::size(i64::try_from(bytes.len()).unwrap_or(i64::MAX)),
            crate::format::size(i64::try_from(limit).unwrap_or(i64::MAX))
        ));
    }
    let text = text.trim().to_string();
    if text.is_empty() && fitting.is_empty() {
        return Ok(Outcome::Empty);
    }
    let mut posted = Vec::new();
    if !text.is_empty() {
        let message = messages::post(
            svc,
            &slug,
            &user,
            &text,
            Some(client_id(&message_id, 0)),
            target.message_id,
        )
        .await?;
        posted.push(message.message.id);
    }
    for (n, (name, bytes)) in fitting.iter().enumerate() {
        let received = uploads::received_bytes(svc, name, bytes).await?;
        let id = uploads::upload(
            svc,
            &slug,
            uid,
            received,
            "",
            Some(client_id(&message_id, n + 1)),
            target.message_id,
        )
        .await?;
        posted.push(id);
    }
    Ok(Outcome::Posted(posted))
}

/// Tells the sender of a mail from the wrong address why it was not posted (without naming the
/// member's own address).
async fn answer_wrong_sender(svc: &Services, mail: &Incoming) -> Result<()> {
    let Some(to) = mail.from.clone() else {
        return Ok(());
    };
    refuse(
        svc,
        &to,
        "replies to that address are accepted only from the address the alert was sent to.",
    )
    .await
}

/// Mails `to` a short note that their mail was not posted, and why.
pub async fn refuse(svc: &Services, to: &str, reason: &str) -> Result<()> {
    let note = svc
        .mail
        .refusal_mail(to, reason)
        .map_err(|e| Error::internal("rendering a refusal", e))?;
    let now = chat::now();
    svc.db
        .write(move |conn| outbox::enqueue(conn, &note, now))
        .await
}

/// Revokes every reply address given out to member `uid` so far.
pub async fn revoke(svc: &Services, uid: i64) -> Result<()> {
    svc.db
        .write(move |conn| users::revoke_reply_addresses(conn, uid))
        .await
}
