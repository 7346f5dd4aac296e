//! Page rendering: [`Template`] is what handlers return, rendered by the page templates that
//! [`crate::assets::Theme`] assembled at ignition (embedded, with the theme's files over them).

use std::borrow::Cow;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::Request;
use rocket_dyn_templates::context;
use rocket_dyn_templates::tera::{Context, Tera};
use serde::Serialize;

use super::view::MessageView;
use crate::cache::Memo;

/// The page templates, managed as state, with the messages they rendered (see [`Pages::write_message`]).
pub struct Pages {
    tera: Tera,
    /// Each message's `<li>`, rendered once per distinct view and room.
    fragments: Memo,
    /// Stands for the reader's form token in a kept fragment (random, so no text can forge it).
    token_slot: String,
}

/// Bytes of message fragments kept per generation (a few KiB each, most of them).
const FRAGMENTS: usize = 16 * 1024 * 1024;

impl Pages {
    /// The templates `tera`, with an empty memo of messages.
    pub fn new(tera: Tera) -> Pages {
        Pages {
            tera,
            fragments: Memo::new(FRAGMENTS),
            token_slot: format!("csrf-{}", crate::secrets::random_token()),
        }
    }

    /// Renders one template (a page or a fragment such as `message`) to a string.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, String> {
        let context = Context::from_serialize(context).map_err(|e| e.to_string())?;
        self.tera
            .render(name, &context)
            .map_err(|e| format!("rendering `{name}`: {}", crate::assets::error_chain(&e)))
    }

    /// Writes message `m`'s `<li>` in room `slug` for a reader whose form token is `csrf` to
    /// `out`: the `message` template renders each distinct view once (every field it reads is in
    /// the key), and every page and poll answer showing it again reuses that, with the reader's
    /// token put in as it is written out.
    pub fn write_message(
        &self,
        out: &mut String,
        m: &MessageView,
        slug: &str,
        csrf: &str,
    ) -> Result<(), String> {
        // The token goes in as it is: it must be the plain hex token sessions have (or none).
        if !csrf.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("a form token that is not one".to_string());
        }
        let key = self.fragments.key(&(m, slug));
        let kept = self.fragments.get_or_render(key, || {
            let room = context! { slug };
            let layout = context! { csrf: &self.token_slot };
            self.render("message", context! { m, room, layout })
        })?;
        let mut pieces = kept.split(self.token_slot.as_str());
        if let Some(first) = pieces.next() {
            out.push_str(first);
        }
        for piece in pieces {
            out.push_str(csrf);
            out.push_str(piece);
        }
        Ok(())
    }
}

/// A page to render: a template name (`room`, `admin/rooms`) and its context.
pub struct Template {
    name: Cow<'static, str>,
    context: Result<Context, String>,
}

impl Template {
    /// The page `name` with `context` (anything serialisable to a map, such as `context! {…}`).
    pub fn render(name: impl Into<Cow<'static, str>>, context: impl Serialize) -> Template {
        Template {
            name: name.into(),
            context: Context::from_serialize(context).map_err(|e| e.to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for Template {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let Some(Pages { tera, .. }) = req.rocket().state::<Pages>() else {
            log::error!("page templates are not managed");
            return Err(Status::InternalServerError);
        };
        let html = self.context.and_then(|context| {
            tera.render(&self.name, &context)
                .map_err(|e| crate::assets::error_chain(&e))
        });
        match html {
            Ok(html) => (ContentType::HTML, html).respond_to(req),
            Err(e) => {
                log::error!("rendering page `{}`: {e}", self.name);
                Err(Status::InternalServerError)
            }
        }
    }
}
