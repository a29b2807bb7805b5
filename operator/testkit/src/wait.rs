//! Polling helper for tests.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Calls `check` every `interval` until it returns `Some(value)` (→ `Ok(value)`) or `timeout` passes
/// (→ [`Error::Timeout`] naming `what`).
///
/// ```no_run
/// # async fn f(client: kube::Client) -> cairn_kube_testkit::Result<()> {
/// use std::time::Duration;
/// use k8s_openapi::api::core::v1::Pod;
/// let pods: kube::Api<Pod> = kube::Api::namespaced(client, "default");
/// let pod = cairn_kube_testkit::poll_until("pod web-0", Duration::from_secs(30), Duration::from_millis(200), || async {
///     pods.get_opt("web-0").await.ok().flatten()
/// })
/// .await?;
/// # let _ = pod; Ok(()) }
/// ```
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, interval: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.to_string(),
                waited: start.elapsed(),
                last: "condition not met".into(),
            });
        }
        tokio::time::sleep(interval).await;
    }
}
