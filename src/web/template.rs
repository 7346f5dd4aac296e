//! Page rendering: [`Template`] is what handlers return, rendered by the page templates that
//! [`crate::assets::Theme`] assembled at ignition (embedded, with the theme's files over them).

use std::borrow::Cow;

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::Request;
use rocket_dyn_templates::tera::{Context, Tera};
use serde::Serialize;

/// The page templates, managed as state.
pub struct Pages(pub Tera);

impl Pages {
    /// Renders one template (a page or a fragment such as `message`) to a string.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, String> {
        let context = Context::from_serialize(context).map_err(|e| e.to_string())?;
        self.0
            .render(name, &context)
            .map_err(|e| format!("rendering `{name}`: {}", crate::assets::error_chain(&e)))
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
        let Some(Pages(tera)) = req.rocket().state::<Pages>() else {
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
