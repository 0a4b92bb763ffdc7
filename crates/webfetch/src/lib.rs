//! Fetching a client-named URL from the server (Glance's `web-download`
//! import and `import` tasks) without letting the client reach what only the
//! server can: an SSRF guard.
//!
//! Glance's `[import_filtering_opts]` filters schemes, hosts and ports by
//! their spelling in the URL. A public cloud also needs to know where the
//! name *leads*: the host is resolved once, every address it resolves to must
//! be outside the internal classes (loopback, private, link-local, multicast,
//! unspecified, and the IPv6 forms embedding such an IPv4 address) unless the
//! operator allowlisted its network, and the connection goes to exactly the
//! address that was checked (no second lookup a rebinding DNS server could
//! answer differently). Redirects are followed by hand, each hop checked
//! again; the download is capped in size and time. Errors never echo what
//! the server learnt (addresses, resolver messages): a host that does not
//! resolve and one that resolves inside the cloud get the same answer.

use bytes::Bytes;
use futures::Stream;
use futures::future::BoxFuture;
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a URL was refused or its download failed. The texts are shown to
/// clients: they name only what the client sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// Not a URL, or one without a host or port.
    #[error("The URL is not valid.")]
    BadUrl,
    /// The scheme, host or port filter refused it.
    #[error("The URL is not allowed: {0}.")]
    Refused(&'static str),
    /// The host does not resolve, or resolves to an address the cloud does
    /// not fetch from (deliberately the same answer: no internal DNS oracle).
    #[error("The URL's host is not reachable from this cloud.")]
    Unreachable,
    /// More bytes than the cap.
    #[error("The download is larger than the {0} bytes allowed.")]
    TooLarge(u64),
    /// The time cap passed.
    #[error("The download did not complete in time.")]
    TimedOut,
    /// The server answered something other than success or a redirect.
    #[error("The URL answered HTTP status {0}.")]
    Status(u16),
    /// More redirects than allowed.
    #[error("The URL redirected too many times.")]
    TooManyRedirects,
    /// Connection or transfer failure (details are logged, not shown).
    #[error("The download failed.")]
    Transfer,
}

impl FetchError {
    /// Is this a refusal of the URL itself (Glance: 400 at create), rather
    /// than a failed transfer (the task fails)?
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::BadUrl | Self::Refused(_) | Self::Unreachable)
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address) an operator
/// lets the fetcher reach although its class is refused by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Does the network hold `ip`?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?
            }
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The class of an address the fetcher refuses by default, `None` for a
/// public one. IPv6 forms carrying an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are judged by that IPv4 address.
pub fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => v4_class(a),
        IpAddr::V6(a) => match embedded_v4(a) {
            Some(v4) => v4_class(v4).or_else(|| v6_class(a)),
            None => v6_class(a),
        },
    }
}

fn v4_class(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if o[0] == 0 {
        Some("unspecified")
    } else if a.is_loopback() {
        Some("loopback")
    } else if a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) || (o[0] == 192 && o[1] == 0 && o[2] == 0) {
        // RFC 1918, shared address space (carrier NAT, often a cloud's own), IETF protocol assignments.
        Some("private")
    } else if a.is_link_local() {
        Some("link-local")
    } else if a.is_multicast() {
        Some("multicast")
    } else if o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_class(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        Some("unspecified")
    } else if a.is_loopback() {
        Some("loopback")
    } else if a.is_multicast() {
        Some("multicast")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        // Unique local, and the deprecated site-local.
        Some("private")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, if any.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && !a.is_loopback() && !a.is_unspecified())) {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        Some(low)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix.
        Some(low)
    } else if s[0] == 0x2002 {
        // 6to4.
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// Resolves a host name to addresses (injectable: tests stand in for DNS).
pub type Resolver = Arc<dyn Fn(String, u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system resolver.
pub fn system_resolver() -> Resolver {
    Arc::new(|host, port| Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) }))
}

/// What the fetcher may reach, Glance's `[import_filtering_opts]` plus the
/// address classes. As in Glance, a non-empty allowlist makes its denylist
/// moot, and an empty allowlist allows all that the denylist does not deny.
#[derive(Clone)]
pub struct Guard {
    /// Schemes allowed (Glance's default: http, https).
    pub allowed_schemes: Vec<String>,
    /// Schemes refused (when `allowed_schemes` is empty).
    pub disallowed_schemes: Vec<String>,
    /// Host names (as spelled in the URL) allowed; empty: any.
    pub allowed_hosts: Vec<String>,
    /// Host names refused (when `allowed_hosts` is empty).
    pub disallowed_hosts: Vec<String>,
    /// Ports allowed (Glance's default: 80, 443); empty: any.
    pub allowed_ports: Vec<u16>,
    /// Ports refused (when `allowed_ports` is empty).
    pub disallowed_ports: Vec<u16>,
    /// Networks reachable although their class is refused by default.
    pub allowed_networks: Vec<Network>,
    /// Time cap of a whole download (all hops and the body).
    pub timeout: Duration,
    /// Redirects followed (each re-checked); 0: none.
    pub max_redirects: usize,
    /// How host names are resolved.
    pub resolver: Resolver,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allowed_schemes", &self.allowed_schemes)
            .field("disallowed_schemes", &self.disallowed_schemes)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("disallowed_hosts", &self.disallowed_hosts)
            .field("allowed_ports", &self.allowed_ports)
            .field("disallowed_ports", &self.disallowed_ports)
            .field("allowed_networks", &self.allowed_networks)
            .field("timeout", &self.timeout)
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            allowed_schemes: vec!["http".into(), "https".into()],
            disallowed_schemes: Vec::new(),
            allowed_hosts: Vec::new(),
            disallowed_hosts: Vec::new(),
            allowed_ports: vec![80, 443],
            disallowed_ports: Vec::new(),
            allowed_networks: Vec::new(),
            timeout: Duration::from_secs(600),
            max_redirects: 5,
            resolver: system_resolver(),
        }
    }
}

/// A URL that passed the guard, and the one address to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The URL.
    pub url: Url,
    /// The checked address (the URL's port).
    pub addr: SocketAddr,
}

fn listed<T: PartialEq>(allowed: &[T], denied: &[T], v: &T) -> bool {
    if !allowed.is_empty() { allowed.iter().any(|a| a == v) } else { !denied.iter().any(|d| d == v) }
}

impl Guard {
    /// Parse `url` and check it against the filters and its resolved
    /// addresses (resolved once, here).
    pub async fn check(&self, url: &str) -> Result<Checked, FetchError> {
        let url = Url::parse(url.trim()).map_err(|_| FetchError::BadUrl)?;
        self.check_url(url).await
    }

    async fn check_url(&self, url: Url) -> Result<Checked, FetchError> {
        let scheme = url.scheme().to_ascii_lowercase();
        if !listed(&self.allowed_schemes, &self.disallowed_schemes, &scheme) {
            return Err(FetchError::Refused("scheme not allowed"));
        }
        let host = url.host().ok_or(FetchError::BadUrl)?;
        let host_name = url.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
        let host_lists =
            |l: &[String]| l.iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect::<Vec<_>>();
        if !listed(&host_lists(&self.allowed_hosts), &host_lists(&self.disallowed_hosts), &host_name) {
            return Err(FetchError::Refused("host not allowed"));
        }
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        if !listed(&self.allowed_ports, &self.disallowed_ports, &port) {
            return Err(FetchError::Refused("port not allowed"));
        }
        let addrs = match host {
            url::Host::Ipv4(a) => vec![SocketAddr::new(IpAddr::V4(a), port)],
            url::Host::Ipv6(a) => vec![SocketAddr::new(IpAddr::V6(a), port)],
            url::Host::Domain(d) => {
                let lookup = (self.resolver)(d.to_string(), port);
                match tokio::time::timeout(self.timeout, lookup).await {
                    Ok(Ok(a)) => a,
                    Ok(Err(e)) => {
                        tracing::info!(host = d, error = %e, "web download: host does not resolve");
                        return Err(FetchError::Unreachable);
                    }
                    Err(_) => return Err(FetchError::Unreachable),
                }
            }
        };
        let first = *addrs.first().ok_or(FetchError::Unreachable)?;
        for a in &addrs {
            if let Some(class) = refused_class(a.ip()) {
                let ip = a.ip();
                let allowed = self.allowed_networks.iter().any(|n| {
                    n.contains(ip)
                        || matches!(ip, IpAddr::V6(v6) if embedded_v4(v6).is_some_and(|v4| n.contains(IpAddr::V4(v4))))
                });
                if !allowed {
                    tracing::info!(host = %host_name, addr = %ip, class, "web download: refused address");
                    return Err(FetchError::Unreachable);
                }
            }
        }
        Ok(Checked { url, addr: SocketAddr::new(first.ip(), port) })
    }

    /// Check `url`, connect to the checked address, follow redirects (each
    /// hop checked again), and return the body capped at `max_bytes`.
    pub async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Body, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let mut next = Url::parse(url.trim()).map_err(|_| FetchError::BadUrl)?;
        let mut hops = 0;
        loop {
            let checked = self.check_url(next).await?;
            let left = deadline.checked_duration_since(Instant::now()).ok_or(FetchError::TimedOut)?;
            let mut builder =
                reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).timeout(left);
            if let Some(url::Host::Domain(d)) = checked.url.host() {
                builder = builder.resolve(d, checked.addr);
            }
            let client = builder.build().map_err(|e| {
                tracing::warn!(error = %e, "web download: cannot build an HTTP client");
                FetchError::Transfer
            })?;
            let resp = client.get(checked.url.clone()).send().await.map_err(transfer)?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                hops += 1;
                if hops > self.max_redirects {
                    return Err(FetchError::TooManyRedirects);
                }
                next = checked.url.join(location).map_err(|_| FetchError::BadUrl)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            if resp.content_length().is_some_and(|n| n > max_bytes) {
                return Err(FetchError::TooLarge(max_bytes));
            }
            return Ok(Body { resp, max_bytes, seen: 0 });
        }
    }
}

fn transfer(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::TimedOut
    } else {
        tracing::info!(error = %e, "web download: transfer failed");
        FetchError::Transfer
    }
}

/// A download in progress, capped in size.
#[derive(Debug)]
pub struct Body {
    resp: reqwest::Response,
    max_bytes: u64,
    seen: u64,
}

impl Body {
    /// The next bytes, `None` at the end; `TooLarge` past the cap.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let Some(c) = self.resp.chunk().await.map_err(transfer)? else { return Ok(None) };
        self.seen = self.seen.saturating_add(c.len() as u64);
        if self.seen > self.max_bytes {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        Ok(Some(c))
    }

    /// The body as a stream of chunks.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, FetchError>> {
        futures::stream::unfold(Some(self), |body| async move {
            let mut body = body?;
            match body.chunk().await {
                Ok(Some(c)) => Some((Ok(c), Some(body))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests;
