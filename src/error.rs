//! The domain's one error type, in the words the user will see. It knows nothing of HTTP: the web
//! layer (`web::error`) maps it to a status and a page, the CLI to a line.

use std::error::Error as StdError;

use crate::db::DbUnavailable;

/// A failure's cause, kept whole so that the log shows the chain.
pub type Source = Box<dyn StdError + Send + Sync>;

/// Everything a use case can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or the requester may not know it does.
    #[error("Nothing here, or nothing you can see.")]
    NotFound,
    /// Known to the requester, but not theirs to change (another's message, admin work).
    #[error("You are not allowed to do that.")]
    Forbidden,
    /// Input that the user can correct; the message says how.
    #[error("{0}")]
    Invalid(String),
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
    Unavailable(#[source] Source),
    /// A bug or an unexpected failure; `context` and the source chain go to the log, not the page.
    #[error("Something went wrong on our side.")]
    Internal {
        /// What Confab was doing.
        context: String,
        /// Why it failed.
        #[source]
        source: Source,
    },
}

/// Shorthand for results in Confab.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An unexpected failure while doing `context`.
    pub fn internal(context: impl Into<String>, source: impl Into<Source>) -> Error {
        Error::Internal {
            context: context.into(),
            source: source.into(),
        }
    }

    /// This error again, for another requester who waited on the same work: a refusal as it is, a
    /// failure (whose cause is not shared) with the same description.
    pub fn again(&self) -> Error {
        match self {
            Error::NotFound => Error::NotFound,
            Error::Forbidden => Error::Forbidden,
            Error::Invalid(why) => Error::Invalid(why.clone()),
            Error::Conflict(why) => Error::Conflict(why.clone()),
            Error::TooManyRequests { retry_after_secs } => Error::TooManyRequests {
                retry_after_secs: *retry_after_secs,
            },
            Error::RateLimited { retry_after_secs } => Error::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            Error::Unavailable(_) => Error::Unavailable(self.causes().into()),
            Error::Internal { context, .. } => Error::internal(context.clone(), self.causes()),
        }
    }

    /// The operator's view: for failures, what was being done and the whole chain of causes;
    /// otherwise the user's message.
    pub fn detail(&self) -> String {
        let what = match self {
            Error::Internal { context, .. } => context.clone(),
            Error::Unavailable(_) => "the database is unavailable".to_string(),
            other => return other.to_string(),
        };
        match self.causes() {
            causes if causes.is_empty() => what,
            causes => format!("{what}: {causes}"),
        }
    }

    /// The chain of causes, `: `-separated (empty for a refusal).
    fn causes(&self) -> String {
        let mut out = Vec::new();
        let mut cause = self.source();
        while let Some(e) = cause {
            out.push(e.to_string());
            cause = e.source();
        }
        out.join(": ")
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            D::NotFound => Error::NotFound,
            D::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => Error::Unavailable(e.into()),
            other => Error::internal("a database query failed", other),
        }
    }
}

impl From<DbUnavailable> for Error {
    fn from(e: DbUnavailable) -> Error {
        match e {
            DbUnavailable::Pool(_) => Error::Unavailable(e.into()),
            DbUnavailable::Task(_) => Error::internal("a database task", e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_keeps_the_whole_chain() {
        let io = std::io::Error::other("disk full");
        let e = Error::internal("writing an upload", io);
        assert_eq!(e.to_string(), "Something went wrong on our side.");
        assert_eq!(e.detail(), "writing an upload: disk full");
        let down = Error::from(DbUnavailable::Pool("timed out".into()));
        assert_eq!(
            down.detail(),
            "the database is unavailable: the database is not answering: timed out"
        );
        assert_eq!(Error::NotFound.detail(), Error::NotFound.to_string());
    }
}
