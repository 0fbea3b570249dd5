//! Per-thread memo of decisions. `decision::decide` is pure: the same facts and policy give
//! the same decision. For requests whose marking comes from headers alone (no text body to
//! read), every fact is in the key — policy view, host, day, the marking headers, the cited
//! ISA and the declared purpose, legal basis and consent — so a repeated request reuses the
//! decision instead of recomputing it. Each request is still counted and recorded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use hyper::header::HeaderMap;

use crate::decision::Decision;

use super::request::is_marking_header;
use super::view::View;

const ENTRIES: usize = 4096;

/// Headers besides the marking headers that the decision depends on.
const FACT_HEADERS: [&str; 4] = [
    "x-isa-reference",
    "x-disclosure-purpose",
    "x-legal-basis",
    "x-consent",
];

#[derive(Default)]
struct Memo {
    /// The view the entries were decided with (held, so it cannot be mistaken for another).
    view: Option<Arc<View>>,
    entries: HashMap<String, Arc<Decision>>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// The key of a request's decision facts.
pub fn key(headers: &HeaderMap, host: &str, today: NaiveDate, view: &View) -> String {
    let mut key = String::with_capacity(96);
    key.push_str(host);
    key.push('\0');
    key.push_str(&today.to_string());
    for (name, value) in headers {
        let name = name.as_str();
        if FACT_HEADERS.contains(&name) || is_marking_header(name, &view.policy.markings) {
            key.push('\0');
            key.push_str(name);
            key.push('\0');
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    key
}

/// The memoised decision for `key` under `view`, or `decide()` and remember it.
pub fn get_or_decide(
    view: &Arc<View>,
    key: String,
    decide: impl FnOnce() -> Decision,
) -> Arc<Decision> {
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if !memo.view.as_ref().is_some_and(|v| Arc::ptr_eq(v, view))
            || memo.entries.len() >= ENTRIES
        {
            memo.view = Some(view.clone());
            memo.entries.clear();
        }
        if let Some(decision) = memo.entries.get(&key) {
            return decision.clone();
        }
        let decision = Arc::new(decide());
        memo.entries.insert(key, decision.clone());
        decision
    })
}
