//! Helpers shared by the node's HTTP integration tests.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

/// The value of the sample `name{labels…}` in a Prometheus text exposition (labels matched as a
/// subset, in any order).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_part) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let all = labels.iter().all(|(k, v)| label_part.split(',').any(|p| p == format!("{k}=\"{v}\"")));
        if all { value.parse().ok() } else { None }
    })
}

/// Asserts a Nacos-style 400: status 400, body `caused: <message mentioning hint>;`.
pub fn assert_bad_request(status: StatusCode, body: &str, hint: &str, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: expected 400, got {status}: {body}");
    assert!(body.starts_with("caused: ") && body.ends_with(';'), "{what}: body not in `caused: …;` form: {body:?}");
    assert!(body.len() > "caused: ;".len(), "{what}: empty message");
    assert!(body.to_lowercase().contains(&hint.to_lowercase()), "{what}: message should mention {hint:?}: {body:?}");
}

/// Polls `cond` every `every` until it holds; returns the time since `since`, or `None` after
/// `limit` (counted from the call).
pub async fn wait_until<F, Fut>(since: Instant, limit: Duration, every: Duration, mut cond: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await {
            return Some(since.elapsed());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

pub mod http;
