//! The HTTP health probe: one `GET`, a 2xx status within the timeout. Written by hand on a
//! raw socket because it needs nothing else (no pool, no body, `Connection: close`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Checks `GET path` on `127.0.0.1:port`; the error says what went wrong.
pub async fn probe(port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let check = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: pave-health\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
        let mut head = [0u8; 32];
        let mut got = 0;
        while got < 12 {
            let n = stream.read(&mut head[got..]).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before a status line".to_owned());
            }
            got += n;
        }
        let line = String::from_utf8_lossy(&head[..got]);
        let status = line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP response: {:?}", line.lines().next().unwrap_or("")))?;
        if (200..300).contains(&status) { Ok(()) } else { Err(format!("{path} answered {status}")) }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}
