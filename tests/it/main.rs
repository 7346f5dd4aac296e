//! Confab's integration tests: one binary, each data-layer test on SQLite and on PostgreSQL.

mod common;

mod abuse;
mod accessibility;
mod accounts;
mod admin;
mod alerts;
mod avatars;
mod browser;
mod direct;
mod housekeeping;
mod imports;
mod layout;
mod live;
mod operations;
mod pins;
mod posting;
mod process;
mod reactions;
mod reading;
mod replies;
mod room_pages;
mod rooms;
mod shipped;
mod smtp;
mod threads;
mod uploads;
