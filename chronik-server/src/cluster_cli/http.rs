//! The two HTTP verbs the cluster subcommands need: `GET` a JSON document from an admin endpoint and
//! `POST` one to it, with a deadline, over a fresh HTTP/1.1 connection (hyper's connection-level client; no pool is worth keeping
//! for a handful of requests).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::CliError;

/// Deadline for one request, connect to last body byte: an admin endpoint that is slower than this is
/// treated as down, so a dead peer costs the operator at most this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Deadline for one membership change: an addition waits for the learner to catch up (up to a minute).
pub const MUTATION_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest admin response accepted; `/admin/status` of a large cluster is well below this.
pub const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// `GET http://{addr}{path}` and parse the body as JSON; non-2xx statuses are errors.
pub async fn get_json(addr: &str, path: &str) -> Result<Value, CliError> {
    let (status, body) = request_json(addr, "GET", path, None, None, REQUEST_TIMEOUT).await?;
    if !status.is_success() {
        return Err(CliError::Request { addr: addr.to_string(), path: path.to_string(), reason: format!("HTTP {status}: {body}") });
    }
    Ok(body)
}

/// `POST http://{addr}{path}` with a JSON body (and `Authorization: Bearer <token>` when given);
/// returns the status and the JSON answer, refusals (4xx) included.
pub async fn post_json(addr: &str, path: &str, body: &Value, token: Option<&str>) -> Result<(hyper::StatusCode, Value), CliError> {
    request_json(addr, "POST", path, Some(body), token, MUTATION_TIMEOUT).await
}

/// One request with a deadline, connect to last body byte.
async fn request_json(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
    deadline: Duration,
) -> Result<(hyper::StatusCode, Value), CliError> {
    match tokio::time::timeout(deadline, request_inner(addr, method, path, body, token)).await {
        Ok(r) => r,
        Err(_) => Err(CliError::Request { addr: addr.to_string(), path: path.to_string(), reason: format!("no answer within {deadline:?}") }),
    }
}

async fn request_inner(addr: &str, method: &str, path: &str, body: Option<&Value>, token: Option<&str>) -> Result<(hyper::StatusCode, Value), CliError> {
    let fail = |reason: String| CliError::Request { addr: addr.to_string(), path: path.to_string(), reason };
    let stream = TcpStream::connect(addr).await.map_err(|e| fail(format!("connect: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| fail(format!("handshake: {e}")))?;
    // The connection future drives the socket; it ends when the response is read and `sender` dropped.
    let driver = tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let payload = match body {
        Some(v) => {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(payload)).map_err(|e| fail(format!("building the request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| fail(format!("request: {e}")))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the body: {e}")))?
        .to_bytes();
    drop(sender);
    driver.abort();
    let value = serde_json::from_slice(&body).map_err(|e| fail(format!("HTTP {status}, not JSON ({e}): {}", String::from_utf8_lossy(&body).trim())))?;
    Ok((status, value))
}
