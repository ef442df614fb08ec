//! The target of a run: a loopback `http://` URL, checked before anything is sent, and the
//! request sent to it, built once.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};

/// Where the load goes and what it sends.
pub struct Target {
    /// Resolved loopback addresses, in resolution order.
    pub addrs: Vec<SocketAddr>,
    /// The request every worker sends; cloned per request (the URI and the body are shared
    /// buffers, so a clone copies only the header map).
    pub request: Request<Full<Bytes>>,
}

/// The host part of a URL that passed the loopback check.
#[derive(Debug, PartialEq)]
enum LoopbackHost {
    Ip(IpAddr),
    Localhost,
}

/// Accepts only `http://` URLs whose host is a loopback IP literal (127.0.0.0/8, ::1) or
/// `localhost`; names are refused without being looked up.
fn loopback_host(uri: &Uri) -> Result<LoopbackHost> {
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("only http:// URLs are supported, not {other}://"),
        None => bail!("the URL needs the form http://HOST[:PORT]/PATH"),
    }
    let host = uri.host().context("the URL has no host")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let refuse = || {
        anyhow::anyhow!(
            "refusing to send load to {host}: only loopback hosts (127.0.0.0/8, ::1, localhost) are allowed"
        )
    };
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(LoopbackHost::Ip(ip)),
        Ok(_) => Err(refuse()),
        Err(_) if bare.eq_ignore_ascii_case("localhost") => Ok(LoopbackHost::Localhost),
        Err(_) => Err(refuse()),
    }
}

/// Parses and checks `url`, resolves it, and builds the request.
pub fn target(url: &str, method: &str, headers: &[String], body: Bytes) -> Result<Target> {
    let uri: Uri = url.parse().with_context(|| format!("{url:?} is not a valid URL"))?;
    let port = uri.port_u16().unwrap_or(80);
    let addrs = match loopback_host(&uri)? {
        LoopbackHost::Ip(ip) => vec![SocketAddr::new(ip, port)],
        LoopbackHost::Localhost => {
            let addrs: Vec<SocketAddr> =
                ("localhost", port).to_socket_addrs().context("cannot resolve localhost")?.collect();
            if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                bail!("refusing to send load to localhost: it resolves to {}, which is not loopback", a.ip());
            }
            if addrs.is_empty() {
                bail!("localhost resolves to no address");
            }
            addrs
        }
    };
    let authority = uri.authority().context("the URL has no host")?.as_str();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let method = Method::from_bytes(method.as_bytes()).with_context(|| format!("{method:?} is not an HTTP method"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body))
        .with_context(|| format!("{path:?} is not a valid request target"))?;
    let map = request.headers_mut();
    map.insert(HOST, HeaderValue::from_str(authority).context("the URL's host is not a valid Host header")?);
    for line in headers {
        let (name, value) = line.split_once(':').with_context(|| format!("header {line:?} is not `Name: value`"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("header {line:?} has an invalid name"))?;
        let value =
            HeaderValue::from_str(value.trim()).with_context(|| format!("header {line:?} has an invalid value"))?;
        if name == HOST {
            map.insert(name, value);
        } else {
            map.append(name, value);
        }
    }
    Ok(Target { addrs, request })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_pass() {
        let cases: &[(&str, Result<LoopbackHost, &str>)] = &[
            ("http://127.0.0.1:8080/x", Ok(LoopbackHost::Ip("127.0.0.1".parse().unwrap()))),
            ("http://127.9.8.7/", Ok(LoopbackHost::Ip("127.9.8.7".parse().unwrap()))),
            ("http://[::1]:9000/", Ok(LoopbackHost::Ip("::1".parse().unwrap()))),
            ("http://LocalHost:1/", Ok(LoopbackHost::Localhost)),
            ("http://user@127.0.0.1/", Ok(LoopbackHost::Ip("127.0.0.1".parse().unwrap()))),
            ("http://10.1.2.3/", Err("refusing to send load to 10.1.2.3")),
            ("http://192.168.0.1:80/", Err("refusing to send load to 192.168.0.1")),
            ("http://0.0.0.0:80/", Err("refusing to send load to 0.0.0.0")),
            ("http://[2001:db8::1]/", Err("refusing to send load to [2001:db8::1]")),
            ("http://example.com/", Err("refusing to send load to example.com")),
            ("http://localhost.example.com/", Err("refusing to send load to localhost.example.com")),
            ("http://127.0.0.1.nip.io/", Err("refusing to send load to 127.0.0.1.nip.io")),
            ("https://127.0.0.1/", Err("only http://")),
            ("127.0.0.1:80", Err("the URL needs the form")),
        ];
        for (url, want) in cases {
            let got = loopback_host(&url.parse().unwrap());
            match (got, want) {
                (Ok(host), Ok(want)) => assert_eq!(&host, want, "{url}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn request_is_built_once_with_host_and_headers() {
        let t = target(
            "http://127.0.0.1:8080/a/b?c=1",
            "POST",
            &["Authorization: Bearer x".into(), "host: other".into()],
            Bytes::from_static(b"{}"),
        )
        .unwrap();
        assert_eq!(t.addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(t.request.method(), Method::POST);
        assert_eq!(t.request.uri(), "/a/b?c=1");
        assert_eq!(t.request.headers()["authorization"], "Bearer x");
        assert_eq!(t.request.headers().get_all(HOST).iter().count(), 1);
        assert_eq!(t.request.headers()[HOST], "other");
    }

    #[test]
    fn default_path_and_port() {
        let t = target("http://127.0.0.1", "GET", &[], Bytes::new()).unwrap();
        assert_eq!(t.addrs, vec!["127.0.0.1:80".parse().unwrap()]);
        assert_eq!(t.request.uri(), "/");
        assert_eq!(t.request.headers()[HOST], "127.0.0.1");
    }

    #[test]
    fn malformed_headers_are_named() {
        let err = target("http://127.0.0.1/", "GET", &["no-colon".into()], Bytes::new()).err().unwrap();
        assert!(err.to_string().contains("no-colon"), "{err}");
    }
}
