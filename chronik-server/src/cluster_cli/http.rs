//! The one HTTP verb the cluster subcommands need: `GET` a JSON document from an admin endpoint, with a
//! deadline, over a fresh HTTP/1.1 connection (hyper's connection-level client; no pool is worth keeping
//! for a handful of requests).

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::CliError;

/// Deadline for one request, connect to last body byte: an admin endpoint that is slower than this is
/// treated as down, so a dead peer costs the operator at most this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest admin response accepted; `/admin/status` of a large cluster is well below this.
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `GET http://{addr}{path}` and parse the body as JSON; non-2xx statuses are errors.
pub async fn get_json(addr: &str, path: &str) -> Result<Value, CliError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, get_json_inner(addr, path)).await {
        Ok(r) => r,
        Err(_) => Err(CliError::Request { addr: addr.to_string(), path: path.to_string(), reason: format!("no answer within {REQUEST_TIMEOUT:?}") }),
    }
}

async fn get_json_inner(addr: &str, path: &str) -> Result<Value, CliError> {
    let fail = |reason: String| CliError::Request { addr: addr.to_string(), path: path.to_string(), reason };
    let stream = TcpStream::connect(addr).await.map_err(|e| fail(format!("connect: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| fail(format!("handshake: {e}")))?;
    // The connection future drives the socket; it ends when the response is read and `sender` dropped.
    let driver = tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(format!("building the request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| fail(format!("request: {e}")))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the body: {e}")))?
        .to_bytes();
    drop(sender);
    driver.abort();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(fail(format!("HTTP {status}: {}", text.trim())));
    }
    serde_json::from_slice(&body).map_err(|e| fail(format!("not JSON: {e}")))
}
