//! The app's one error type, and how it renders: a styled HTML page, or `{"error": …}` on `/api/`.

use crate::web::template::Template;
use rocket::http::{Header, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Request;
use rocket_dyn_templates::context;

use crate::db::DbUnavailable;

/// Everything that can go wrong, in the words the user will see.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or the requester may not know it does.
    #[error("Nothing here, or nothing you can see.")]
    NotFound,
    /// Logged in, but not allowed (admin pages for non-admins).
    #[error("You are not allowed to do that.")]
    Forbidden,
    /// A form arrived without the token of the page it came from.
    #[error("This form has expired or did not come from Confab. Go back, reload the page and try again.")]
    CsrfExpired,
    /// Not logged in.
    #[error("Please log in.")]
    Unauthorized,
    /// Input that the user can correct; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The request could not be understood at all.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over its limit.
    #[error("That is too large. Please send something smaller.")]
    TooLarge,
    /// The client stopped sending in the middle of a request.
    #[error("The upload stalled: nothing arrived for a while. Please try again.")]
    Stalled,
    /// The request clashes with what exists (a taken name).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed logins for one account.
    #[error("Too many failed attempts. Try again in {} minute(s).", (retry_after_secs + 59) / 60)]
    TooManyRequests {
        /// Seconds until attempts are accepted again.
        retry_after_secs: i64,
    },
    /// A member posting faster than the posting limit.
    #[error("You are sending messages very fast. Wait {retry_after_secs} second(s) and send again; your text is kept.")]
    RateLimited {
        /// Seconds until the next post is accepted.
        retry_after_secs: i64,
    },
    /// The database (or another service) is not answering.
    #[error("Confab cannot reach its database right now. Please try again in a moment.")]
    Unavailable(String),
    /// A bug or an unexpected failure; the detail goes to the log, not the page.
    #[error("Something went wrong on our side.")]
    Internal(String),
}

/// Shorthand for results in Confab.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> Status {
        match self {
            Error::NotFound => Status::NotFound,
            Error::Forbidden | Error::CsrfExpired => Status::Forbidden,
            Error::Unauthorized => Status::Unauthorized,
            Error::Invalid(_) => Status::UnprocessableEntity,
            Error::BadRequest(_) => Status::BadRequest,
            Error::TooLarge => Status::PayloadTooLarge,
            Error::Stalled => Status::RequestTimeout,
            Error::Conflict(_) => Status::Conflict,
            Error::TooManyRequests { .. } | Error::RateLimited { .. } => Status::TooManyRequests,
            Error::Unavailable(_) => Status::ServiceUnavailable,
            Error::Internal(_) => Status::InternalServerError,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Error::NotFound => "Not found",
            Error::Forbidden => "Not allowed",
            Error::CsrfExpired => "This form has expired",
            Error::Unauthorized => "Please log in",
            Error::Invalid(_) => "Please check your input",
            Error::BadRequest(_) => "Bad request",
            Error::TooLarge => "Too large",
            Error::Stalled => "Upload stalled",
            Error::Conflict(_) => "Already taken",
            Error::TooManyRequests { .. } => "Too many attempts",
            Error::RateLimited { .. } => "Slow down",
            Error::Unavailable(_) => "Temporarily unavailable",
            Error::Internal(_) => "Something went wrong",
        }
    }

    /// The error a bare status stands for, for Rocket's catchers.
    pub fn from_status(status: Status) -> Error {
        match status.code {
            401 => Error::Unauthorized,
            403 => Error::Forbidden,
            404 => Error::NotFound,
            400 => Error::BadRequest("The request was malformed.".into()),
            413 => Error::TooLarge,
            422 => Error::Invalid("The form was incomplete or malformed.".into()),
            503 => Error::Unavailable(status.to_string()),
            _ => Error::Internal(status.to_string()),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            D::NotFound => Error::NotFound,
            D::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Error::Unavailable(info.message().to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<DbUnavailable> for Error {
    fn from(e: DbUnavailable) -> Error {
        match e {
            DbUnavailable::Pool(why) => Error::Unavailable(why),
            DbUnavailable::Task(why) => Error::Internal(why),
        }
    }
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        match &self {
            Error::Internal(detail) => log::error!("{} {}: {detail}", req.method(), req.uri()),
            Error::Unavailable(detail) => log::warn!(
                "{} {}: database unavailable: {detail}",
                req.method(),
                req.uri()
            ),
            _ => {}
        }
        let message = self.to_string();
        let mut response = if req.uri().path().starts_with("/api/") {
            Json(serde_json::json!({ "error": message })).respond_to(req)?
        } else {
            Template::render(
                "error",
                context! { title: self.title(), message, code: status.code },
            )
            .respond_to(req)?
        };
        response.set_status(status);
        if let Error::TooManyRequests { retry_after_secs }
        | Error::RateLimited { retry_after_secs } = self
        {
            response.set_header(Header::new(
                "Retry-After",
                retry_after_secs.max(1).to_string(),
            ));
        }
        Ok(response)
    }
}
