//! Jobs that forward a bot's raw updates to its existing backend: one per update id, so a redelivered update
//! is not forwarded twice.

use serde_json::{Value, json};

use crate::repo::jobs::NewJob;

/// The job kind.
pub const FORWARD_UPDATE: &str = "forward_update";
/// Attempts before a forward is dead-lettered (with backoff capped at 15 minutes: several hours).
pub const FORWARD_ATTEMPTS: i32 = 30;

/// The job that forwards `update` of `account_id` to `url`.
pub fn forward_job(account_id: i64, url: &str, update: &Value) -> NewJob {
    let mut job = NewJob::now(
        FORWARD_UPDATE,
        json!({ "account_id": account_id, "url": url, "update": update }),
    );
    job.max_attempts = FORWARD_ATTEMPTS;
    job.dedupe_key = update
        .get("update_id")
        .and_then(Value::as_i64)
        .map(|id| format!("{FORWARD_UPDATE}:{account_id}:{id}"));
    job
}
