//! The ways replies by email come in: an SMTP/LMTP listener (`inbound_smtp_address`) and an IMAP
//! poller (`imap_url`). Both hand each mail to [`crate::service::replies`].

pub mod imap;
pub mod smtp;

use rocket::fairing::AdHoc;

use crate::service::Services;

/// Starts the inbound listener at liftoff (an address in use stops Confab with a clear message),
/// and the IMAP poller when `jobs_enabled`.
pub fn stage() -> AdHoc {
    AdHoc::on_liftoff("Replies by email", |rocket| {
        Box::pin(async move {
            let Some(svc) = rocket.state::<Services>() else {
                return;
            };
            let replies = &svc.settings.replies;
            if let Some(address) = replies.smtp_address {
                match smtp::bind(address).await {
                    Ok(listener) => {
                        println!("Replies by email: listening for SMTP and LMTP on {address}");
                        tokio::spawn(smtp::serve(svc.clone(), listener, rocket.shutdown()));
                    }
                    Err(e) => {
                        eprintln!("confab: cannot listen on inbound_smtp_address {address}: {e}");
                        rocket.shutdown().notify();
                    }
                }
            }
            if let (Some(url), true) = (&replies.imap_url, svc.settings.jobs_enabled) {
                if let Ok(mailbox) = imap::Mailbox::parse(url) {
                    tokio::spawn(imap::run(svc.clone(), mailbox, rocket.shutdown()));
                }
            }
        })
    })
}
