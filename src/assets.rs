//! The templates and static files compiled into the binary, and the operator's theme folder: a file
//! under `<theme_dir>/templates/` or `<theme_dir>/static/` replaces the embedded file of the same path.
//! So `target/release/confab` (or a copy of it) runs from any folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rocket_dyn_templates::tera::Tera;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Where the look comes from: the embedded files, and an optional theme folder over them.
#[derive(Debug, Clone, Default)]
pub struct Theme {
    dir: Option<PathBuf>,
}

impl Theme {
    /// The embedded files, with the files of `dir` (when given) replacing them.
    pub fn new(dir: Option<PathBuf>) -> Theme {
        Theme { dir }
    }

    /// Every template whose path starts with `prefix`: (path relative to `templates/`, source).
    /// A theme file replaces the embedded one of the same path, and may add templates of its own.
    fn templates(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let mut found: std::collections::BTreeMap<String, String> = embedded::TEMPLATES
            .iter()
            .filter(|(path, _)| path.starts_with(prefix) && path.ends_with(".tera"))
            .map(|(path, bytes)| {
                (
                    path.to_string(),
                    String::from_utf8_lossy(bytes).into_owned(),
                )
            })
            .collect();
        if let Some(dir) = &self.dir {
            let root = dir.join("templates");
            let mut files = Vec::new();
            walk(&root, &mut files);
            for path in files {
                let Ok(relative) = path.strip_prefix(&root) else {
                    continue;
                };
                let relative = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !relative.starts_with(prefix) || !relative.ends_with(".tera") {
                    continue;
                }
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| format!("theme template {}: {e}", path.display()))?;
                found.insert(relative, source);
            }
        }
        Ok(found.into_iter().collect())
    }

    /// The page templates (everything but `email/`), named as Rocket names them (`admin/rooms` for
    /// `admin/rooms.html.tera`), every one HTML-escaped.
    pub fn page_templates(&self) -> Result<Tera, String> {
        let templates: Vec<(String, String)> = self
            .templates("")?
            .into_iter()
            .filter(|(path, _)| !path.starts_with("email/"))
            .map(|(path, source)| (page_name(&path), source))
            .collect();
        let mut tera = Tera::default();
        tera.autoescape_on(vec![""]);
        tera.add_raw_templates(templates)
            .map_err(|e| format!("page templates: {}", error_chain(&e)))?;
        Ok(tera)
    }

    /// The mail templates under `email/`, by file name; only the `.html.tera` parts are escaped.
    pub fn mail_templates(&self) -> Result<Tera, String> {
        let templates: Vec<(String, String)> = self
            .templates("email/")?
            .into_iter()
            .map(|(path, source)| (path.trim_start_matches("email/").to_string(), source))
            .collect();
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html.tera"]);
        tera.add_raw_templates(templates)
            .map_err(|e| format!("mail templates: {}", error_chain(&e)))?;
        Ok(tera)
    }

    /// A static file by its path under `static/` (already checked by Rocket to have no `..` or hidden
    /// segments): the theme's copy when there is one, else the embedded one.
    pub async fn static_file(&self, path: &Path) -> Option<Cow<'static, [u8]>> {
        if let Some(dir) = &self.dir {
            if let Ok(bytes) = tokio::fs::read(dir.join("static").join(path)).await {
                return Some(Cow::Owned(bytes));
            }
        }
        let wanted = path
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        embedded::STATIC
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, bytes)| Cow::Borrowed(*bytes))
    }
}

/// `admin/rooms.html.tera` → `admin/rooms`: the path without at most two extensions.
fn page_name(path: &str) -> String {
    let (dir, mut file) = match path.rsplit_once('/') {
        Some((dir, file)) => (Some(dir), file),
        None => (None, path),
    };
    for _ in 0..2 {
        match file.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => file = stem,
            _ => break,
        }
    }
    match dir {
        Some(dir) => format!("{dir}/{file}"),
        None => file.to_string(),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// An error with its causes, on one line (Tera puts the useful part in the source).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::page_name;

    #[test]
    fn page_names_drop_two_extensions() {
        assert_eq!(page_name("admin/rooms.html.tera"), "admin/rooms");
        assert_eq!(page_name("base.html.tera"), "base");
        assert_eq!(page_name("a.b.c.tera"), "a.b");
    }
}
