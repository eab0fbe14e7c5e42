//! The client half: one blocking request, with an optional bearer token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::MAX_BODY;

/// A response: status and parsed JSON body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body (`null` if empty).
    pub body: serde_json::Value,
}

/// Sends `method path` with a JSON `body` to `address` (host:port) and waits for the answer.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> Result<Response> {
    let mut stream = TcpStream::connect(address)
        .with_context(|| format!("cannot reach the control API at {address} (is the cluster running?)"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    let mut raw = Vec::new();
    stream.take(MAX_BODY as u64 + 64 * 1024).read_to_end(&mut raw)?;
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { bail!("malformed response from {address}") };
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("malformed status line")?;
    let payload = &raw[split + 4..];
    let body = if payload.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(payload).context("response is not JSON")?
    };
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{serve, Reply};
    use super::*;

    #[test]
    fn round_trip() {
        let handler = Arc::new(|req: super::super::Request| {
            if req.header("authorization") != Some("Bearer s3cret") {
                return Reply::error(401, "no");
            }
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            Reply::ok(serde_json::json!({ "path": req.path, "method": req.method, "echo": body }))
        });
        let address = serve("127.0.0.1:0".parse().unwrap(), handler).unwrap().to_string();
        let response =
            request(&address, "POST", "/v1/x?y=1", Some(&serde_json::json!({"a": 1})), Some("s3cret")).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body["path"], "/v1/x");
        assert_eq!(response.body["echo"]["a"], 1);
        assert_eq!(request(&address, "GET", "/", None, None).unwrap().status, 401);
    }
}
