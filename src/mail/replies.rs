//! Reply addresses: `reply_address` with a signed token in place of `{token}`, naming the member,
//! the room and (for an alert about one message) the message. A token serves any number of replies
//! until it expires (`reply_token_days`); changing the secret key revokes all of them, and a member
//! revokes their own by raising their reply epoch ("Stop replies to mails already sent").

use chrono::NaiveDateTime;

use super::Mail;

/// What a reply address says, once its signature and age are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTarget {
    /// The member the mail went to.
    pub user_id: i64,
    /// The room a reply is posted in.
    pub room_id: i64,
    /// The message a reply answers, in its thread.
    pub message_id: Option<i64>,
}

/// A reply address read but not yet checked against the member's epoch.
#[derive(Debug, Clone)]
pub struct ReplyToken {
    /// What it names.
    pub target: ReplyTarget,
    expires_day: i64,
    signature: String,
}

/// Why a reply address is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of ours, altered, or revoked.
    Forged,
    /// Ours, but older than `reply_token_days`.
    Expired,
}

fn day_of(time: NaiveDateTime) -> i64 {
    time.and_utc().timestamp().div_euclid(86_400)
}

impl Mail {
    fn reply_signature(&self, target: &ReplyTarget, expires_day: i64, epoch: i32) -> String {
        let text = format!(
            "reply:{}:{}:{}:{expires_day}:{epoch}",
            target.user_id,
            target.room_id,
            target.message_id.unwrap_or(0)
        );
        self.mac(&text)[..20].to_string()
    }

    /// The address a reply to a mail about `target` goes to, valid from `now`; `None` when replies
    /// by email are not configured.
    pub fn reply_address(
        &self,
        target: &ReplyTarget,
        epoch: i32,
        now: NaiveDateTime,
    ) -> Option<String> {
        let (before, after) = self.replies.as_ref()?.parts()?;
        let expires_day = day_of(now) + self.replies.as_ref()?.token_days;
        let token = format!(
            "{}-{}-{}-{expires_day}-{}",
            target.user_id,
            target.room_id,
            target.message_id.unwrap_or(0),
            self.reply_signature(target, expires_day, epoch)
        );
        Some(format!("{before}{token}{after}"))
    }

    /// Reads the token of a reply address (any case, as some servers fold it); `None` when the
    /// address is not a reply address at all.
    pub fn read_reply_address(&self, address: &str) -> Option<ReplyToken> {
        let (before, after) = self.replies.as_ref()?.parts()?;
        let address = address
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        let token = address
            .strip_prefix(&before.to_lowercase())?
            .strip_suffix(&after.to_lowercase())?;
        let mut fields = token.split('-');
        let mut number = || fields.next()?.parse::<i64>().ok();
        let (user_id, room_id, message_id, expires_day) =
            (number()?, number()?, number()?, number()?);
        let signature = fields.next()?.to_string();
        if fields.next().is_some() {
            return None;
        }
        Some(ReplyToken {
            target: ReplyTarget {
                user_id,
                room_id,
                message_id: (message_id != 0).then_some(message_id),
            },
            expires_day,
            signature,
        })
    }

    /// Checks a token against its member's reply epoch at `now`.
    pub fn check_reply(
        &self,
        token: &ReplyToken,
        epoch: i32,
        now: NaiveDateTime,
    ) -> Result<ReplyTarget, Refusal> {
        let expected = self.reply_signature(&token.target, token.expires_day, epoch);
        if !crate::secrets::constant_time_eq(expected.as_bytes(), token.signature.as_bytes()) {
            return Err(Refusal::Forged);
        }
        if day_of(now) > token.expires_day {
            return Err(Refusal::Expired);
        }
        Ok(token.target)
    }

    /// Whether alert mail carries a reply address.
    pub fn replies_enabled(&self) -> bool {
        self.replies.is_some()
    }
}

/// The configured reply address, split around its token, and how long tokens live.
#[derive(Debug, Clone)]
pub(super) struct ReplyConfig {
    address: String,
    token_days: i64,
}

impl ReplyConfig {
    /// From settings, when replies by email are enabled.
    pub(super) fn from_settings(settings: &crate::settings::Replies) -> Option<ReplyConfig> {
        settings.enabled().then(|| ReplyConfig {
            address: settings.address.clone().unwrap_or_default(),
            token_days: settings.token_days,
        })
    }

    fn parts(&self) -> Option<(&str, &str)> {
        self.address.split_once("{token}")
    }
}
