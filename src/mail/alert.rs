//! Composing the alert mail from what the planner found due.

use rocket_dyn_templates::tera::Context;
use serde::Serialize;

use chrono::NaiveDateTime;

use super::{Mail, ReplyTarget};
use crate::chat::alerts::Due;
use crate::chat::outbox::NewMail;

#[derive(Serialize)]
struct MessageLine {
    author: String,
    time: String,
    excerpt: String,
    mention: bool,
}

#[derive(Serialize)]
struct RoomSection {
    name: String,
    count: usize,
    link: String,
    messages: Vec<MessageLine>,
    more: usize,
    mentions: usize,
    /// The reply-by-email address of this room, when replies are on.
    reply: Option<String>,
}

/// "Design", "Design and Ops", "Design and 2 more rooms".
fn rooms_phrase(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [a, b] => format!("{a} and {b}"),
        [first, rest @ ..] => format!("{first} and {} more rooms", rest.len()),
    }
}

impl Mail {
    /// The alert (or digest) mail for one member: what they missed, room by room, with links
    /// back, a one-click unsubscribe and, when replies by email are on, a reply address for each
    /// room (the mail's `Reply-To` is the first room's; about one message, its thread's).
    pub fn alert_mail(&self, due: &Due, now: NaiveDateTime) -> Result<NewMail, String> {
        let tz = due.user.tz();
        let sections: Vec<RoomSection> = due
            .rooms
            .iter()
            .map(|room| {
                let first = room.first_id;
                // Shown oldest first, as in the room (the planner picked mentions, then the newest).
                let mut shown: Vec<_> = room.messages.iter().collect();
                shown.sort_by_key(|m| (m.created_at, m.id));
                let lines: Vec<MessageLine> = shown
                    .into_iter()
                    .map(|m| {
                        let text = crate::format::message_text(&m.body);
                        let excerpt: String = text.chars().take(200).collect();
                        let when = crate::format::when(m.created_at, tz);
                        MessageLine {
                            author: m.author.clone(),
                            time: format!("{} {}", when.day, when.time),
                            excerpt: if text.chars().count() > 200 {
                                format!("{excerpt}…")
                            } else {
                                excerpt
                            },
                            mention: m.mention,
                        }
                    })
                    .collect();
                let target = ReplyTarget {
                    user_id: due.user.id,
                    room_id: room.room_id,
                    message_id: (room.count == 1).then_some(room.newest_id),
                };
                RoomSection {
                    reply: self.reply_address(&target, due.user.reply_epoch, now),
                    name: room.name.clone(),
                    count: room.count,
                    link: format!(
                        "{}/rooms/{}?around={first}#m{first}",
                        self.public_url, room.slug
                    ),
                    more: room.count.saturating_sub(lines.len()),
                    messages: lines,
                    mentions: room.mentions,
                }
            })
            .collect();
        let names: Vec<&str> = due.rooms.iter().map(|r| r.name.as_str()).collect();
        let unsubscribe = self.unsubscribe_url(due.user.id);
        let mut context = Context::new();
        context.insert("username", &due.user.username);
        context.insert("count", &due.count());
        context.insert("rooms_phrase", &rooms_phrase(&names));
        context.insert("rooms", &sections);
        context.insert("settings_url", &format!("{}/settings", self.public_url));
        context.insert("unsubscribe_url", &unsubscribe);
        context.insert("digest", &(due.user.alert_mode == "digest"));
        context.insert("time_zone", tz.name());
        let reply_to = sections.first().and_then(|s| s.reply.clone());
        if reply_to.is_some() {
            context.insert("reply_room", &due.rooms[0].name);
            context.insert("reply_thread", &(due.rooms[0].count == 1));
        }
        let rendered = self.render("alert", &context)?;
        Ok(NewMail {
            kind: "alert",
            user_id: Some(due.user.id),
            recipient: due.user.email.clone(),
            rendered,
            summary: names.join(", "),
            reply_to,
        })
    }
}
