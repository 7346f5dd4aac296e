//! Page rendering: [`Template`] is what handlers return, rendered by the page templates that
//! [`crate::assets::Theme`] assembled at ignition (embedded, with the theme's files over them).

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::{Arc, LazyLock};

use memchr::memmem;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Body, Responder};
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
    /// Finds [`Pages::token_slot`] in a fragment (vectorised: each page looks in a hundred).
    token_finder: memmem::Finder<'static>,
}

/// Bytes of message fragments kept per generation (a few KiB each, most of them).
const FRAGMENTS: usize = 16 * 1024 * 1024;

impl Pages {
    /// The templates `tera`, with an empty memo of messages.
    pub fn new(tera: Tera) -> Pages {
        let token_slot = format!("csrf-{}", crate::secrets::random_token());
        Pages {
            tera,
            fragments: Memo::new(FRAGMENTS),
            token_finder: memmem::Finder::new(token_slot.as_bytes()).into_owned(),
            token_slot,
        }
    }

    /// Renders one template (a page or a fragment such as `message`) to a string.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, String> {
        let context = Context::from_serialize(context).map_err(|e| e.to_string())?;
        self.tera
            .render(name, &context)
            .map_err(|e| format!("rendering `{name}`: {}", crate::assets::error_chain(&e)))
    }

    /// Template `name` rendered with `context`, once per distinct context (which must hold
    /// everything the template reads) and reused after.
    pub fn fragment<C: Serialize + Hash>(
        &self,
        name: &'static str,
        context: &C,
    ) -> Result<Arc<str>, String> {
        let key = self.fragments.key(&(name, context));
        self.fragments
            .get_or_render(key, || self.render(name, context))
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
        let mut written = 0;
        for slot in self.token_finder.find_iter(kept.as_bytes()) {
            out.push_str(&kept[written..slot]);
            out.push_str(csrf);
            written = slot + self.token_slot.len();
        }
        out.push_str(&kept[written..]);
        Ok(())
    }
}

/// A page to render: a template name (`room`, `admin/rooms`) and its context.
pub struct Template {
    name: Cow<'static, str>,
    context: Result<Context, String>,
    /// Finished HTML placed into the rendered page where the context holds its slot (see
    /// [`Template::with_html`]).
    html: Option<String>,
}

/// Stands for [`Template::with_html`]'s HTML in the rendered page (random, so no text can forge it).
static HTML_SLOT: LazyLock<String> =
    LazyLock::new(|| format!("<!--html-{}-->", crate::secrets::random_token()));

impl Template {
    /// The page `name` with `context` (anything serialisable to a map, such as `context! {…}`).
    pub fn render(name: impl Into<Cow<'static, str>>, context: impl Serialize) -> Template {
        Template {
            name: name.into(),
            context: Context::from_serialize(context).map_err(|e| e.to_string()),
            html: None,
        }
    }

    /// This page with the finished HTML `html` (a room's message list) where the template places
    /// `{{ key | safe }}`: the text goes into the page as it is written out, not through the
    /// template's context, so its size costs one copy and no template work. To the template,
    /// `key` is empty exactly when `html` is.
    pub fn with_html(mut self, key: &str, html: String) -> Template {
        if let Ok(context) = &mut self.context {
            if html.is_empty() {
                context.insert(key, "");
            } else {
                context.insert(key, HTML_SLOT.as_str());
                self.html = Some(html);
            }
        }
        self
    }
}

/// `rendered` with `html` in place of its slot (once; `rendered` as it is when it has none).
fn place(rendered: String, html: Option<String>) -> String {
    let Some(html) = html else {
        return rendered;
    };
    match rendered.split_once(HTML_SLOT.as_str()) {
        Some((head, tail)) => {
            let mut page = String::with_capacity(head.len() + html.len() + tail.len());
            page.push_str(head);
            page.push_str(&html);
            page.push_str(tail);
            page
        }
        None => rendered,
    }
}

impl<'r> Responder<'r, 'static> for Template {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let Some(Pages { tera, .. }) = req.rocket().state::<Pages>() else {
            log::error!("page templates are not managed");
            return Err(Status::InternalServerError);
        };
        let Template {
            name,
            context,
            html: placed,
        } = self;
        let html = context.and_then(|context| {
            tera.render(&name, &context)
                .map_err(|e| crate::assets::error_chain(&e))
        });
        match html {
            Ok(html) => {
                let html = place(html, placed);
                // The page in one piece: Rocket's default of 4 KiB would pass a room page to the
                // connection in some sixty chunks, each a hop between tasks and a write.
                let whole = html.len().max(Body::DEFAULT_MAX_CHUNK);
                let mut response = (ContentType::HTML, html).respond_to(req)?;
                response.set_max_chunk_size(whole);
                Ok(response)
            }
            Err(e) => {
                log::error!("rendering page `{name}`: {e}");
                Err(Status::InternalServerError)
            }
        }
    }
}
