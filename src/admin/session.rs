//! Browser sessions of the admin listener. A session is a random id in an HttpOnly,
//! SameSite=Strict cookie that expires; it records whom it belongs to (the token holder, or
//! an approver the force's identity system named) and carries the per-session token every
//! form must send back (CSRF), so a form posted from anywhere else, or into another person's
//! session, is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "markgate_session";
/// How long a browser session lasts.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; opening one beyond this drops the oldest.
const MAX_SESSIONS: usize = 256;

/// Whom a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Signed in with the shared admin token: may read, never approve.
    Token,
    /// An approver, by the email address the force's identity system gave.
    Person(String),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub holder: Holder,
    /// The token each form of this session carries.
    pub csrf: String,
    expires: Instant,
}

#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `holder`.
    pub fn open(&self, holder: Holder) -> Session {
        let now = Instant::now();
        let session = Session {
            id: hex::encode(rand::random::<[u8; 32]>()),
            holder,
            csrf: hex::encode(rand::random::<[u8; 32]>()),
            expires: now + LIFETIME,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live
                .values()
                .min_by_key(|s| s.expires)
                .map(|s| s.id.clone())
            {
                live.remove(&oldest);
            }
        }
        live.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session with this id (compared in constant time).
    pub fn find(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.values()
            .find(|s| constant_time_eq(&s.id, id) && s.expires > now)
            .cloned()
    }
}

/// The `Set-Cookie` value for `session`.
pub fn cookie(session: &Session) -> String {
    format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        session.id,
        LIFETIME.as_secs()
    )
}

/// The session ids the request's cookies carry.
pub fn cookie_ids(headers: &hyper::HeaderMap) -> Vec<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
        .collect()
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
