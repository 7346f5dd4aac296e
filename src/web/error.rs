//! The web's error: a domain [`AppError`] or a failure that only HTTP has (no login, a forged
//! form, a malformed or oversized request), and how it renders: a styled HTML page, or
//! `{"error": …}` on `/api/`. Failures are logged with their whole source chain.

use rocket::http::{Header, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Request;
use rocket_dyn_templates::context;

use super::template::Template;
pub use crate::error::Error as AppError;

/// Everything a request can fail with, in the words the user will see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What the use case said.
    #[error(transparent)]
    App(#[from] AppError),
    /// A form arrived without the token of the page it came from.
    #[error("This form has expired or did not come from Confab. Go back, reload the page and try again.")]
    CsrfExpired,
    /// Not logged in.
    #[error("Please log in.")]
    Unauthorized,
    /// The request could not be understood at all.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over its limit.
    #[error("That is too large. Please send something smaller.")]
    TooLarge,
    /// The client stopped sending in the middle of a request.
    #[error("The upload stalled: nothing arrived for a while. Please try again.")]
    Stalled,
}

/// Shorthand for results in the web layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        Error::App(e.into())
    }
}

impl From<crate::db::DbUnavailable> for Error {
    fn from(e: crate::db::DbUnavailable) -> Error {
        Error::App(e.into())
    }
}

impl Error {
    /// Input the user can correct.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::App(AppError::Invalid(message.into()))
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> Status {
        match self {
            Error::App(e) => match e {
                AppError::NotFound => Status::NotFound,
                AppError::Forbidden => Status::Forbidden,
                AppError::Invalid(_) => Status::UnprocessableEntity,
                AppError::Conflict(_) => Status::Conflict,
                AppError::TooManyRequests { .. } | AppError::RateLimited { .. } => {
                    Status::TooManyRequests
                }
                AppError::Unavailable(_) => Status::ServiceUnavailable,
                AppError::Internal { .. } => Status::InternalServerError,
            },
            Error::CsrfExpired => Status::Forbidden,
            Error::Unauthorized => Status::Unauthorized,
            Error::BadRequest(_) => Status::BadRequest,
            Error::TooLarge => Status::PayloadTooLarge,
            Error::Stalled => Status::RequestTimeout,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Error::App(e) => match e {
                AppError::NotFound => "Not found",
                AppError::Forbidden => "Not allowed",
                AppError::Invalid(_) => "Please check your input",
                AppError::Conflict(_) => "Already taken",
                AppError::TooManyRequests { .. } => "Too many attempts",
                AppError::RateLimited { .. } => "Slow down",
                AppError::Unavailable(_) => "Temporarily unavailable",
                AppError::Internal { .. } => "Something went wrong",
            },
            Error::CsrfExpired => "This form has expired",
            Error::Unauthorized => "Please log in",
            Error::BadRequest(_) => "Bad request",
            Error::TooLarge => "Too large",
            Error::Stalled => "Upload stalled",
        }
    }

    /// The error a bare status stands for, for Rocket's catchers.
    pub fn from_status(status: Status) -> Error {
        match status.code {
            401 => Error::Unauthorized,
            403 => AppError::Forbidden.into(),
            404 => AppError::NotFound.into(),
            400 => Error::BadRequest("The request was malformed.".into()),
            413 => Error::TooLarge,
            422 => Error::invalid("The form was incomplete or malformed."),
            503 => AppError::Unavailable(status.to_string().into()).into(),
            _ => AppError::internal("a request Rocket refused", status.to_string()).into(),
        }
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        match &self {
            Error::App(e @ AppError::Internal { .. }) => {
                log::error!("{} {}: {}", req.method(), req.uri(), e.detail())
            }
            Error::App(e @ AppError::Unavailable(_)) => {
                log::warn!("{} {}: {}", req.method(), req.uri(), e.detail())
            }
            _ => {}
        }
        let message = self.to_string();
        let mut response = if req.uri().path().starts_with("/api/") {
            Json(serde_json::json!({ "error": message })).respond_to(req)?
        } else {
            let (title, code) = (self.title(), status.code);
            // The navigation stays when a guard already knows who is asking.
            match super::session::known_user(req) {
                Some((user, csrf)) => {
                    let layout = super::view::Layout::new(&user, &csrf, None);
                    Template::render("error", context! { layout, title, message, code })
                }
                None => Template::render("error", context! { title, message, code }),
            }
            .respond_to(req)?
        };
        response.set_status(status);
        if let Error::App(
            AppError::TooManyRequests { retry_after_secs }
            | AppError::RateLimited { retry_after_secs },
        ) = self
        {
            response.set_header(Header::new(
                "Retry-After",
                retry_after_secs.max(1).to_string(),
            ));
        }
        Ok(response)
    }
}
