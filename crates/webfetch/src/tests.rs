use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-purpose HTTP/1.0 server on 127.0.0.1: `answer(path)` gives the
/// raw response (status line, headers, body) for each request.
async fn serve(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test value");
    let port = listener.local_addr().expect("test value").port();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                let _ = sock.write_all(&answer(&path)).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

fn ok(body: &[u8], with_length: bool) -> Vec<u8> {
    let mut r = b"HTTP/1.0 200 OK\r\n".to_vec();
    if with_length {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

fn redirect(to: &str) -> Vec<u8> {
    format!("HTTP/1.0 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// The default guard, any port, with loopback allowlisted (the test server).
fn local_guard() -> Guard {
    Guard {
        allowed_ports: vec![],
        allowed_networks: vec!["127.0.0.1/32".parse().expect("test value")],
        ..Guard::default()
    }
}

/// A resolver answering `addr` for every name, counting its lookups.
fn fixed_resolver(addr: IpAddr, count: Arc<AtomicUsize>) -> Resolver {
    Arc::new(move |_host, port| {
        count.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(vec![SocketAddr::new(addr, port)]) })
    })
}

async fn read_all(body: Body) -> Result<Vec<u8>, FetchError> {
    use futures::StreamExt as _;
    let mut s = std::pin::pin!(body.into_stream());
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

// Every internal address class is refused (a public cloud's SSRF line; Glance itself has none).
#[test]
fn internal_address_classes_are_refused() {
    for (ip, class) in [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
    ] {
        assert_eq!(refused_class(ip.parse().expect("test value")), Some(class), "{ip}");
    }
    for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:4860:4860::8888", "2a00:1450::1"] {
        assert_eq!(refused_class(ip.parse().expect("test value")), None, "{ip}");
    }
}

// IPv6 spellings of an internal IPv4 address are judged by that address (mapped, compatible, NAT64, 6to4).
#[test]
fn ipv6_forms_of_internal_ipv4_are_refused() {
    for ip in [
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
    ] {
        assert!(refused_class(ip.parse().expect("test value")).is_some(), "{ip}");
    }
    assert_eq!(refused_class("::ffff:8.8.8.8".parse().expect("test value")), None);
}

#[test]
fn networks_parse_and_contain() {
    let n: Network = "10.0.0.0/8".parse().expect("test value");
    assert!(n.contains("10.200.1.1".parse().expect("test value")));
    assert!(!n.contains("11.0.0.1".parse().expect("test value")));
    let one: Network = "127.0.0.1".parse().expect("test value");
    assert!(
        one.contains("127.0.0.1".parse().expect("test value"))
            && !one.contains("127.0.0.2".parse().expect("test value"))
    );
    let v6: Network = "fd00::/8".parse().expect("test value");
    assert!(v6.contains("fd12::1".parse().expect("test value")));
    assert!("10.0.0.0/33".parse::<Network>().is_err());
    assert!("nope".parse::<Network>().is_err());
}

// Glance's import_filtering_opts: schemes http/https and ports 80/443 by default; allowlist beats denylist.
#[tokio::test]
async fn scheme_host_and_port_filters_follow_glance() {
    let count = Arc::new(AtomicUsize::new(0));
    let g = Guard { resolver: fixed_resolver("8.8.8.8".parse().expect("test value"), count), ..Guard::default() };
    assert!(g.check("http://images.example/a.qcow2").await.is_ok());
    assert!(g.check("https://images.example/a.qcow2").await.is_ok());
    assert_eq!(g.check("ftp://images.example/a").await, Err(FetchError::Refused("scheme not allowed")));
    assert_eq!(g.check("file:///etc/passwd").await, Err(FetchError::Refused("scheme not allowed")));
    assert_eq!(g.check("http://images.example:8080/a").await, Err(FetchError::Refused("port not allowed")));
    assert_eq!(g.check("not a url").await, Err(FetchError::BadUrl));
    let hosts = Guard { disallowed_hosts: vec!["Bad.Example".into()], ..g.clone() };
    assert_eq!(hosts.check("http://bad.example./a").await, Err(FetchError::Refused("host not allowed")));
    let only = Guard { allowed_hosts: vec!["good.example".into()], disallowed_hosts: vec!["good.example".into()], ..g };
    assert!(only.check("http://good.example/a").await.is_ok());
    assert_eq!(only.check("http://other.example/a").await, Err(FetchError::Refused("host not allowed")));
}

// Internal addresses, literal or resolved, are refused unless the operator allowlists their network.
#[tokio::test]
async fn internal_addresses_refused_unless_allowlisted() {
    let g = Guard::default();
    for url in [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://localhost/",
    ] {
        assert_eq!(g.check(url).await, Err(FetchError::Unreachable), "{url}");
    }
    let allowed = Guard { allowed_networks: vec!["127.0.0.1/32".parse().expect("test value")], ..Guard::default() };
    assert!(allowed.check("http://127.0.0.1/").await.is_ok());
    assert!(allowed.check("http://[::ffff:127.0.0.1]/").await.is_ok());
    assert_eq!(allowed.check("http://127.0.0.2/").await, Err(FetchError::Unreachable));
    // One bad address among a name's addresses refuses the name.
    let mixed = Guard {
        resolver: Arc::new(|_h, p| {
            Box::pin(async move {
                Ok(vec![
                    SocketAddr::new("8.8.8.8".parse().expect("test value"), p),
                    SocketAddr::new("10.0.0.1".parse().expect("test value"), p),
                ])
            })
        }),
        ..Guard::default()
    };
    assert_eq!(mixed.check("http://images.example/").await, Err(FetchError::Unreachable));
}

// A host that does not resolve gets the same answer as an internal one (no DNS oracle).
#[tokio::test]
async fn unresolvable_host_is_unreachable() {
    let g = Guard {
        resolver: Arc::new(|_h, _p| Box::pin(async { Err(std::io::Error::other("NXDOMAIN")) })),
        ..Guard::default()
    };
    let e = g.check("http://dummy-img-file.qcow2/").await.expect_err("an error");
    assert_eq!(e, FetchError::Unreachable);
    assert!(e.is_refusal() && !e.to_string().contains("NXDOMAIN"));
}

// DNS rebinding: the name is resolved once and the connection goes to the checked address.
#[tokio::test]
async fn connects_to_the_checked_address_without_a_second_lookup() {
    let port = serve(|_| ok(b"image bytes", true)).await;
    let count = Arc::new(AtomicUsize::new(0));
    let g =
        Guard { resolver: fixed_resolver("127.0.0.1".parse().expect("test value"), count.clone()), ..local_guard() };
    // `images.invalid` exists in no DNS: only the pinned address can answer.
    let body = g.fetch(&format!("http://images.invalid:{port}/a.img"), 1024).await.expect("test value");
    assert_eq!(read_all(body).await.expect("test value"), b"image bytes");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

// Redirects are followed only to URLs that pass the guard again.
#[tokio::test]
async fn redirects_are_rechecked_at_each_hop() {
    let port = serve(move |path| match path {
        "/meta" => redirect("http://169.254.169.254/latest/meta-data"),
        "/mapped" => redirect("http://[::ffff:10.0.0.1]/"),
        "/hop" => redirect("/img"),
        "/loop" => redirect("/loop"),
        "/img" => ok(b"data", true),
        _ => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    })
    .await;
    let g = local_guard();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(g.fetch(&format!("{base}/meta"), 1024).await.expect_err("an error"), FetchError::Unreachable);
    assert_eq!(g.fetch(&format!("{base}/mapped"), 1024).await.expect_err("an error"), FetchError::Unreachable);
    assert_eq!(
        read_all(g.fetch(&format!("{base}/hop"), 1024).await.expect("test value")).await.expect("test value"),
        b"data"
    );
    assert_eq!(g.fetch(&format!("{base}/loop"), 1024).await.expect_err("an error"), FetchError::TooManyRedirects);
    let none = Guard { max_redirects: 0, ..local_guard() };
    assert_eq!(none.fetch(&format!("{base}/hop"), 1024).await.expect_err("an error"), FetchError::TooManyRedirects);
    assert_eq!(g.fetch(&format!("{base}/missing"), 1024).await.expect_err("an error"), FetchError::Status(404));
}

// The size cap holds whether or not the server announces a length.
#[tokio::test]
async fn size_cap_holds_with_and_without_content_length() {
    let port = serve(|path| ok(&[7u8; 100], path == "/announced")).await;
    let g = local_guard();
    let announced = g.fetch(&format!("http://127.0.0.1:{port}/announced"), 10).await.expect_err("an error");
    assert_eq!(announced, FetchError::TooLarge(10));
    let body = g.fetch(&format!("http://127.0.0.1:{port}/silent"), 10).await.expect("test value");
    assert_eq!(read_all(body).await.expect_err("an error"), FetchError::TooLarge(10));
    let body = g.fetch(&format!("http://127.0.0.1:{port}/silent"), 100).await.expect("test value");
    assert_eq!(read_all(body).await.expect("test value").len(), 100);
}
