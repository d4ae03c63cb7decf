//! Browser sessions for the web UI, behind the cluster token.
//!
//! A browser cannot send `Authorization: Bearer`, so it signs in once and
//! then carries a session cookie:
//!
//! - `gridmr ui` (any holder of the token) asks `POST /ui/grant` for a
//!   **one-time code**, valid [`CODE_TTL`], and opens
//!   `/ui/login?code=…`; or the login form takes the token itself.
//! - Either gives a **session**: 256 random bits in an `HttpOnly`,
//!   `SameSite=Strict` cookie scoped to `/ui` (`Secure` over TLS), valid
//!   [`SESSION_TTL`], kept in memory only (a master restart signs everyone
//!   out).
//! - A session only **reads**: the UI is GET pages, and the token middleware
//!   takes the cookie for `GET /ui/…` alone, so a forged cross-site request
//!   can change nothing.
//!
//! Both tables are bounded; the oldest entries go first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a login code is good for.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(120);
/// How long a session lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub(crate) const COOKIE: &str = "gridmr_session";
/// Most codes and sessions held.
const MAX_ENTRIES: usize = 1024;

/// Login codes and sessions, each with when it expires.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    codes: Mutex<HashMap<String, Instant>>,
    sessions: Mutex<HashMap<String, Instant>>,
    /// Whether the master serves TLS (cookies are then `Secure`).
    pub(crate) tls: bool,
}

/// 256 random bits, as hex.
fn secret() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Adds `key` to `table`, expiring after `ttl`, dropping expired entries
/// and, past the bound, the one closest to expiry.
fn insert(table: &Mutex<HashMap<String, Instant>>, key: String, ttl: Duration) {
    let Ok(mut t) = table.lock() else { return };
    let now = Instant::now();
    t.retain(|_, until| *until > now);
    while t.len() >= MAX_ENTRIES {
        let Some(oldest) = t.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone()) else {
            break;
        };
        t.remove(&oldest);
    }
    t.insert(key, now + ttl);
}

impl Sessions {
    /// No sessions yet; cookies `Secure` when the master serves `tls`.
    pub(crate) fn new(tls: bool) -> Self {
        Sessions {
            tls,
            ..Sessions::default()
        }
    }

    /// A new one-time login code.
    pub(crate) fn grant(&self) -> Option<String> {
        let code = secret()?;
        insert(&self.codes, code.clone(), CODE_TTL);
        Some(code)
    }

    /// Spends a login code: a new session, if the code was good.
    pub(crate) fn redeem(&self, code: &str) -> Option<String> {
        let until = self.codes.lock().ok()?.remove(code)?;
        (until > Instant::now()).then(|| self.open())?
    }

    /// A new session (the caller has shown the token).
    pub(crate) fn open(&self) -> Option<String> {
        let id = secret()?;
        insert(&self.sessions, id.clone(), SESSION_TTL);
        Some(id)
    }

    /// Whether `id` is a live session.
    pub(crate) fn is_valid(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .is_ok_and(|t| t.get(id).is_some_and(|until| *until > Instant::now()))
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        if let Ok(mut t) = self.sessions.lock() {
            t.remove(id);
        }
    }

    /// The `Set-Cookie` value that carries session `id` (an empty `id` and
    /// no lifetime: the cookie is removed).
    pub(crate) fn cookie(&self, id: &str) -> String {
        let age = if id.is_empty() {
            0
        } else {
            SESSION_TTL.as_secs()
        };
        let secure = if self.tls { "; Secure" } else { "" };
        format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
    }

    /// The session id a `Cookie` header carries, if any.
    pub(crate) fn from_cookies(header: &str) -> Option<&str> {
        header.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then_some(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_spent_once_and_a_session_lasts() {
        let s = Sessions::default();
        let code = s.grant().unwrap();
        assert_eq!(code.len(), 64);
        let session = s.redeem(&code).unwrap();
        assert!(s.is_valid(&session));
        assert!(s.redeem(&code).is_none(), "a code works once");
        assert!(!s.is_valid("forged"));
        s.close(&session);
        assert!(!s.is_valid(&session));
        let header = format!("a=b; {COOKIE}={session}; c=d");
        assert_eq!(Sessions::from_cookies(&header), Some(session.as_str()));
        assert!(s.cookie("x").contains("HttpOnly; SameSite=Strict"));
    }

    #[test]
    fn the_tables_are_bounded() {
        let s = Sessions::default();
        for _ in 0..MAX_ENTRIES + 10 {
            s.open();
        }
        assert_eq!(s.sessions.lock().unwrap().len(), MAX_ENTRIES);
    }
}
