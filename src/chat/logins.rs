//! Failed logins, counted per name tried and client address, per client address alone, and per
//! name from anywhere, each in a fixed window that starts at its first failure. Guessing locks out
//! the guesser's address, not the owner (who logs in from another address); guesses from many
//! addresses slow the name down without locking it; a name that does not exist is counted exactly
//! like one that does.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::AnyConnection;
use crate::error::Result;

/// The subject under which every failure from one address is counted, whatever the name.
const ANY_NAME: &str = "*";

/// The address under which every failure for one name is counted, wherever it comes from.
const ANY_ADDRESS: &str = "*";

/// The failures counted so far in the current windows, this attempt included.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    /// For any name from this address.
    pub for_address: i32,
    /// When the address's window started.
    pub address_started: NaiveDateTime,
    /// For this name from this address (0 when the address was already over its limit: then the
    /// name is not counted at all).
    pub for_name: i32,
    /// When that window started.
    pub name_started: NaiveDateTime,
    /// For this name from any address: it slows logins down, it never locks the owner out.
    pub for_name_anywhere: i32,
}

/// A name as counted: case and surrounding space do not make a new subject.
fn subject(name: &str) -> String {
    let name = name.trim().to_lowercase();
    if name == ANY_NAME {
        // A user cannot pick the address-wide subject as a name.
        return format!("{ANY_NAME}{ANY_NAME}");
    }
    name.chars().take(100).collect()
}

/// Counts one failure for `(subject, address)` and returns the count and when its window started;
/// a window older than `window_start` begins again. One atomic statement after the reset, so that
/// parallel guesses are all counted.
fn count(
    conn: &mut AnyConnection,
    subject: &str,
    address: &str,
    now: NaiveDateTime,
    window_start: NaiveDateTime,
) -> Result<(i32, NaiveDateTime)> {
    diesel::delete(
        login_failures::table
            .filter(login_failures::subject.eq(subject))
            .filter(login_failures::address.eq(address))
            .filter(login_failures::first_failed_at.lt(window_start)),
    )
    .execute(conn)?;
    // Upserts are not part of the multi-backend dialect: the statement goes to the backend's own connection.
    let upsert = diesel::insert_into(login_failures::table)
        .values((
            login_failures::subject.eq(subject),
            login_failures::address.eq(address),
            login_failures::failures.eq(1),
            login_failures::first_failed_at.eq(now),
        ))
        .on_conflict((login_failures::subject, login_failures::address))
        .do_update()
        .set(login_failures::failures.eq(login_failures::failures + 1))
        .returning((login_failures::failures, login_failures::first_failed_at));
    Ok(match conn {
        AnyConnection::Postgresql(pg) => upsert.get_result(pg)?,
        AnyConnection::Sqlite(sqlite) => upsert.get_result(sqlite)?,
    })
}

/// Counts a login attempt as a failure before its password is checked (a success takes it back
/// with [`succeeded`]), so that no guess is checked without being counted. The address comes first:
/// past `address_limit` nothing more is counted for it.
pub fn count_attempt(
    conn: &mut AnyConnection,
    name: &str,
    address: &str,
    now: NaiveDateTime,
    window_start: NaiveDateTime,
    address_limit: i32,
) -> Result<Counted> {
    let (for_address, address_started) = count(conn, ANY_NAME, address, now, window_start)?;
    if for_address > address_limit {
        return Ok(Counted {
            for_address,
            address_started,
            for_name: 0,
            name_started: now,
            for_name_anywhere: 0,
        });
    }
    let name = subject(name);
    let (for_name, name_started) = count(conn, &name, address, now, window_start)?;
    let (for_name_anywhere, _) = count(conn, &name, ANY_ADDRESS, now, window_start)?;
    Ok(Counted {
        for_address,
        address_started,
        for_name,
        name_started,
        for_name_anywhere,
    })
}

/// A login succeeded: the name's count from this address ends, and the attempt no longer counts
/// against the address or the name elsewhere.
pub fn succeeded(conn: &mut AnyConnection, name: &str, address: &str) -> Result<()> {
    let name = subject(name);
    diesel::delete(
        login_failures::table
            .filter(login_failures::subject.eq(&name))
            .filter(login_failures::address.eq(address)),
    )
    .execute(conn)?;
    for (subject, address) in [(ANY_NAME, address), (name.as_str(), ANY_ADDRESS)] {
        diesel::update(
            login_failures::table
                .filter(login_failures::subject.eq(subject))
                .filter(login_failures::address.eq(address))
                .filter(login_failures::failures.gt(0)),
        )
        .set(login_failures::failures.eq(login_failures::failures - 1))
        .execute(conn)?;
    }
    Ok(())
}

/// Deletes windows that ended before `window_start`; returns how many.
pub fn prune(conn: &mut AnyConnection, window_start: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        login_failures::table.filter(login_failures::first_failed_at.lt(window_start)),
    )
    .execute(conn)?)
}
