//! Search across the rooms one may read, with operators (`from:`, `in:`, `has:file`, dates).

use rocket::form::FromForm;
use rocket::{get, routes, Route};
use rocket_dyn_templates::context;

use super::error::Result;
use super::session::{CsrfToken, CurrentUser};
use super::template::Template;
use super::view::{self, Layout};
use super::App;
use crate::chat::search;
use crate::format;
use crate::service::reading;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![search_page]
}

/// Results per search page.
const RESULTS_PER_PAGE: i64 = 25;

#[derive(Debug, FromForm)]
struct SearchForm {
    q: Option<String>,
    before: Option<i64>,
}

#[get("/search?<form..>")]
async fn search_page(
    form: SearchForm,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    // The sidebar is read after the search, so a search past its time fails at once.
    let layout = || Layout::load(&app, &user, &csrf, None, None);
    let raw = form.q.unwrap_or_default();
    let query = search::parse(&raw);
    let mut problems = query.problems.clone();
    if raw.trim().is_empty() {
        return Ok(Template::render(
            "search",
            context! { layout: layout().await?, q: raw, problems, searched: false },
        ));
    }
    if query.terms.is_empty() {
        problems.push(
            "Add a word or a \"quoted phrase\" to search for. Operators such as from:, in:, has:file, before: and after: only narrow a search down.".into(),
        );
        return Ok(Template::render(
            "search",
            context! { layout: layout().await?, q: raw, problems, searched: false },
        ));
    }
    let tz = user.user.tz();
    let hits = reading::search(
        app.svc,
        &user.user,
        query.clone(),
        form.before,
        RESULTS_PER_PAGE + 1,
    )
    .await?;
    let more = hits.len() as i64 > RESULTS_PER_PAGE;
    let words = query.highlight_words();
    let results: Vec<_> = hits
        .iter()
        .take(RESULTS_PER_PAGE as usize)
        .map(|hit| {
            let mut text = format::message_text(&hit.body);
            if let Some(name) = &hit.file_name {
                text = format!("{text} 📎 {name}").trim().to_string();
            }
            context! {
                id: hit.id,
                room_slug: &hit.room_slug,
                room_name: &hit.room_name,
                author: &hit.author,
                when: view::when(hit.created_at, tz),
                excerpt: format::excerpt(&text, &words, 240),
            }
        })
        .collect();
    let older = more
        .then(|| hits.get(RESULTS_PER_PAGE as usize - 1).map(|h| h.id))
        .flatten();
    Ok(Template::render(
        "search",
        context! { layout: layout().await?, q: &raw, q_encoded: view::encode_uri_component(&raw), problems, searched: true, results, older },
    ))
}
