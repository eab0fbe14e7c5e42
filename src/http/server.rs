//! The server half: accepts connections, parses one request each, and answers through a handler.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::MAX_BODY;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// Lower-case header names and their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A response: status and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
}

impl Reply {
    /// `200` with `body`.
    pub fn ok(body: serde_json::Value) -> Reply {
        Reply { status: 200, body }
    }

    /// An error status with `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply { status, body: serde_json::json!({ "error": message.into() }) }
    }
}

/// Binds `address` and serves every request with `handler` on the shared I/O runtime.
/// Returns the bound address (useful with port 0).
pub fn serve(address: SocketAddr, handler: Arc<dyn Fn(Request) -> Reply + Send + Sync>) -> Result<SocketAddr> {
    let listener =
        crate::runtime::block_on(TcpListener::bind(address)).with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    crate::runtime::runtime().spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let reply = match read_request(BufReader::new(read)).await {
                    Ok(request) => tokio::task::spawn_blocking(move || handler(request))
                        .await
                        .unwrap_or_else(|_| Reply::error(500, "internal error")),
                    Err(error) => Reply::error(400, format!("bad request: {error}")),
                };
                let body = serde_json::to_vec_pretty(&reply.body).unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.status,
                    reason(reply.status),
                    body.len()
                );
                let _ = write.write_all(head.as_bytes()).await;
                let _ = write.write_all(&body).await;
                let _ = write.shutdown().await;
            });
        }
    });
    Ok(bound)
}

async fn read_request<R: tokio::io::AsyncRead + Unpin>(mut reader: BufReader<R>) -> Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else { anyhow::bail!("no request line") };
    let (method, path) = (method.to_string(), target.split('?').next().unwrap_or("/").to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
        if headers.len() > 100 {
            anyhow::bail!("too many headers");
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(Ok(0), |(_, v)| v.parse())?;
    if length > MAX_BODY {
        anyhow::bail!("body too large");
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Request { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}
