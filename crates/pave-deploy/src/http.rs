//! A minimal HTTP/1.1 client for the engine's own calls out (Prometheus queries, webhook
//! deliveries): one request per connection, `http://` URLs only (these are loopback or
//! in-cluster endpoints; put a TLS-terminating proxy in front of anything else).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Splits `http://host:port/path?query` into the authority and the path (with its query).
pub(crate) fn split(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok((authority.to_owned(), path.to_owned()))
}

/// Sends one request and reads the whole answer, all within `timeout`.
pub(crate) async fn send(
    method: hyper::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let (authority, path) = split(url)?;
    let call = async {
        let stream = tokio::net::TcpStream::connect(&authority).await.map_err(|e| format!("{authority}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, &authority);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(timeout, call).await.map_err(|_| format!("{url} did not answer within {timeout:?}"))?
}
