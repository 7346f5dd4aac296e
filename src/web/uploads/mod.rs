//! Sharing files: the multipart upload form (see [`receive`]) and members-only downloads (see
//! [`download`]); storing and posting is [`crate::service::uploads`].

mod download;
pub(super) mod receive;

use rocket::data::Data;
use rocket::http::{ContentType, CookieJar, Status};
use rocket::response::Redirect;
use rocket::{post, routes, Route};

use super::error::{AppError, Error, Result};
use super::session::{CsrfToken, CurrentUser};
use super::view::Layout;
use super::{pages, App, Reply};
use crate::chat::messages::PageAt;
use crate::service::uploads::{self, Received};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    let mut routes = routes![upload];
    routes.extend(download::routes());
    routes
}

/// Reads an upload form (`multipart/form-data`, the CSRF token first): its small fields, and its
/// file streamed to a temporary file that is removed unless kept.
pub(super) async fn receive_form(
    content_type: Option<&ContentType>,
    data: Data<'_>,
    cookies: &CookieJar<'_>,
    app: &App<'_>,
) -> Result<(receive::Fields, Option<Received>)> {
    let boundary = content_type
        .filter(|ct| ct.is_form_data())
        .and_then(|ct| {
            ct.params()
                .find(|(key, _)| key == "boundary")
                .map(|(_, value)| value.to_string())
        })
        .ok_or_else(|| {
            Error::BadRequest("An upload must be sent as multipart/form-data.".into())
        })?;
    receive::receive(data, boundary, cookies, app.settings, &app.svc.store).await
}

#[allow(clippy::too_many_arguments)]
#[post("/rooms/<slug>/files", data = "<data>")]
async fn upload(
    slug: String,
    content_type: Option<&ContentType>,
    data: Data<'_>,
    user: CurrentUser,
    csrf: CsrfToken,
    cookies: &CookieJar<'_>,
    app: App<'_>,
) -> Result<Reply> {
    let uid = user.user.id;
    // Only members may send a file at all: nothing is written for anyone else.
    uploads::may_upload(app.svc, slug.clone(), uid).await?;
    let (fields, received) = receive_form(content_type, data, cookies, &app).await?;
    let posted = match received {
        Some(received) => {
            let client_id = pages::client_id(fields.client_id);
            uploads::upload(
                app.svc,
                &slug,
                uid,
                received,
                &fields.caption,
                client_id,
                None,
            )
            .await
        }
        None => Err(AppError::Invalid("Choose a file to upload.".into())),
    };
    match posted {
        Ok(id) => Ok(Reply::Redirect(Redirect::to(format!(
            "/rooms/{slug}#m{id}"
        )))),
        Err(AppError::Invalid(error)) => {
            let layout = Layout::new(&user, &csrf, None);
            let draft = pages::Draft {
                body: String::new(),
                error: Some(error),
            };
            let page = pages::render_room(&app, &user, layout, slug, PageAt::Latest, draft).await?;
            Ok(Reply::Page((Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e.into()),
    }
}
