//! Which webhook URLs are allowed: http(s) only, and no private, loopback or link-local
//! addresses unless the configuration allows them (a webhook must not become a way to reach
//! the service's own network); with `webhooks.allowed_destinations`, only addresses inside
//! those networks ([`Destinations`]). Checked when a webhook is registered, and again at
//! delivery on the addresses actually connected to ([`GuardedResolver`]).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use futures_util::future::BoxFuture;
use ipnet::IpNet;
use reqwest::Url;

use tgwatch_core::config::WebhooksConfig;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("`{0}` is not a valid URL")]
    Invalid(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error(
        "`{host}` resolves to {address}, a private, loopback or link-local address (set webhooks.allow_private_addresses to allow it)"
    )]
    Private { host: String, address: IpAddr },
    #[error(
        "`{host}` resolves to {address}, outside webhooks.allowed_destinations (the networks webhooks may reach)"
    )]
    NotAllowed { host: String, address: IpAddr },
    #[error("`{0}` does not resolve")]
    Unresolvable(String),
    #[error(
        "the URL carries a user name or password, which would be stored and shown as they are: authenticate the receiver by the webhook signature (or a secret path) instead"
    )]
    Credentials,
}

/// The addresses webhooks may reach.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    allow_private: bool,
    /// `webhooks.allowed_destinations`: when not empty, the only networks allowed.
    allowed: Vec<IpNet>,
}

impl Destinations {
    pub fn new(config: &WebhooksConfig) -> Destinations {
        Destinations {
            allow_private: config.allow_private_addresses,
            allowed: config.allowed_networks(),
        }
    }

    /// Any public address, and private ones too when `allow_private`.
    pub fn public(allow_private: bool) -> Destinations {
        Destinations {
            allow_private,
            allowed: Vec::new(),
        }
    }

    /// Only addresses inside `networks` (private ones included).
    pub fn only(networks: Vec<IpNet>) -> Destinations {
        Destinations {
            allow_private: false,
            allowed: networks,
        }
    }

    /// Every address is allowed: nothing to resolve before registering a URL.
    fn allows_all(&self) -> bool {
        self.allow_private && self.allowed.is_empty()
    }

    pub fn permits(&self, address: IpAddr) -> bool {
        if self.allowed.is_empty() {
            self.allow_private || !is_private(address)
        } else {
            self.allowed
                .iter()
                .any(|network| network.contains(&address))
        }
    }

    /// Why `address` (of `host`) is refused.
    fn refusal(&self, host: String, address: IpAddr) -> UrlError {
        if self.allowed.is_empty() {
            UrlError::Private { host, address }
        } else {
            UrlError::NotAllowed { host, address }
        }
    }
}

/// Whether an address is anything but a public unicast address: private, loopback, link-local,
/// shared (carrier NAT), benchmarking, multicast, reserved or unspecified, including IPv4
/// addresses carried inside IPv6 (mapped, compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`),
/// which reach the same hosts.
pub fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0 // 0/8, "this network"
                || a == 100 && (b & 0xc0) == 64 // 100.64/10, carrier NAT
                || a == 198 && (b & 0xfe) == 18 // 198.18/15, benchmarking
                || a == 192 && b == 0 && v4.octets()[2] == 0 // 192.0.0/24, protocol assignments
                || a >= 240 // 240/4, reserved
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded_v4 = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            match segments {
                // ::a.b.c.d (IPv4-compatible, deprecated but still routed by some stacks)
                [0, 0, 0, 0, 0, 0, high, low] => return is_private(embedded_v4(high, low)),
                // 64:ff9b::a.b.c.d, NAT64
                [0x64, 0xff9b, 0, 0, 0, 0, high, low] => {
                    return is_private(embedded_v4(high, low));
                }
                // 2002:aabb:ccdd::, 6to4
                [0x2002, high, low, ..] => return is_private(embedded_v4(high, low)),
                _ => {}
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation 2001:db8::/32
        }
    }
}

/// How names become addresses. The system's resolver in the service; tests use one whose answer
/// they change.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .map(|socket| socket.ip())
                .collect())
        })
    }
}

/// Parses the URL and checks every address its host resolves to (when a webhook is registered
/// or changed).
pub async fn check(url: &str, destinations: &Destinations) -> Result<Url, UrlError> {
    check_with(url, destinations, &SystemLookup).await
}

/// [`check`] with a given resolver.
pub async fn check_with(
    url: &str,
    destinations: &Destinations,
    resolver: &dyn Lookup,
) -> Result<Url, UrlError> {
    let parsed = Url::parse(url).map_err(|_| UrlError::Invalid(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| UrlError::Invalid(url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if destinations.allows_all() {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => resolver
            .lookup(&host, port)
            .await
            .map_err(|_| UrlError::Unresolvable(host.clone()))?,
    };
    if let Some(address) = addresses.into_iter().find(|a| !destinations.permits(*a)) {
        return Err(destinations.refusal(host, address));
    }
    Ok(parsed)
}

/// The check again at delivery time, for what the resolver below cannot see: a URL whose host is
/// an address literal is never resolved. (The configuration may have changed since the webhook
/// was registered.)
pub fn check_literal_host(url: &str, destinations: &Destinations) -> Result<(), UrlError> {
    let parsed = Url::parse(url).map_err(|_| UrlError::Invalid(url.to_owned()))?;
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if !destinations.permits(literal) {
        return Err(destinations.refusal(literal.to_string(), literal));
    }
    Ok(())
}

/// The resolver webhook deliveries connect through: the lookup's answer without the addresses
/// the policy refuses. A name that was public when the webhook was registered and now points at
/// a private address (DNS rebinding) then resolves to nothing and the attempt fails, instead of
/// reaching the service's own network. The check is on the addresses actually connected to.
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    destinations: Destinations,
}

impl GuardedResolver {
    pub fn new(lookup: Arc<dyn Lookup>, destinations: Destinations) -> GuardedResolver {
        GuardedResolver {
            lookup,
            destinations,
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let destinations = self.destinations.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // reqwest puts the URL's port on the addresses it connects to.
            let addresses = lookup.lookup(&host, 0).await?;
            let refused = addresses
                .iter()
                .copied()
                .find(|a| !destinations.permits(*a));
            let permitted: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|address| destinations.permits(*address))
                .map(|address| SocketAddr::new(address, 0))
                .collect();
            match (permitted.is_empty(), refused) {
                (true, Some(address)) => Err(Box::new(destinations.refusal(host, address)) as _),
                (true, None) => Err(Box::new(UrlError::Unresolvable(host)) as _),
                (false, _) => Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_list_admits_its_networks_only_private_or_not() {
        let loopback = Destinations::only(vec!["127.0.0.0/8".parse().unwrap()]);
        for allowed in ["127.0.0.1", "127.255.0.9"] {
            assert!(loopback.permits(allowed.parse().unwrap()), "{allowed}");
        }
        for refused in ["8.8.8.8", "10.0.0.1", "::1", "128.0.0.1"] {
            assert!(!loopback.permits(refused.parse().unwrap()), "{refused}");
        }
        let error = check_literal_host("http://8.8.8.8/hook", &loopback).unwrap_err();
        assert!(
            error.to_string().contains("webhooks.allowed_destinations"),
            "{error}"
        );
        assert!(check_literal_host("http://127.0.0.1:9/hook", &loopback).is_ok());
        // Without a list: public addresses only, unless private ones are allowed.
        assert!(Destinations::public(false).permits("8.8.8.8".parse().unwrap()));
        assert!(!Destinations::public(false).permits("127.0.0.1".parse().unwrap()));
        assert!(Destinations::public(true).permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn local_networks_are_private() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fec0::1",
            "ff02::1",
            "0.1.2.3",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_private(address.parse().expect("address")), "{address}");
        }
        for address in [
            "93.184.216.34",
            "2606:4700::1111",
            "8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!is_private(address.parse().expect("address")), "{address}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert_eq!(
            check("ftp://example.com/x", &Destinations::public(false)).await,
            Err(UrlError::Scheme)
        );
        assert!(matches!(
            check("not a url", &Destinations::public(false)).await,
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            check("http://127.0.0.1:9/hook", &Destinations::public(false)).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://[::1]:9/hook", &Destinations::public(false)).await,
            Err(UrlError::Private { .. })
        ));
        assert!(
            check("http://127.0.0.1:9/hook", &Destinations::public(true))
                .await
                .is_ok()
        );
        for with_credentials in [
            "http://user:pw@93.184.216.34/hook",
            "https://user@93.184.216.34/hook",
            "http://:pw@127.0.0.1:9/hook",
        ] {
            assert_eq!(
                check(with_credentials, &Destinations::public(true)).await,
                Err(UrlError::Credentials),
                "{with_credentials}"
            );
        }
        assert!(
            check("https://93.184.216.34/hook", &Destinations::public(false))
                .await
                .is_ok()
        );
    }

    /// A resolver whose answer the test changes.
    struct Rebinding(std::sync::Mutex<IpAddr>);

    impl Lookup for Rebinding {
        fn lookup(&self, _: &str, _: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
            let address = *self.0.lock().expect("lock");
            Box::pin(async move { Ok(vec![address]) })
        }
    }

    fn delivery_client(lookup: Arc<Rebinding>, allow_private: bool) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(
                lookup,
                Destinations::public(allow_private),
            )))
            .build()
            .expect("client")
    }

    /// DNS rebinding: the name was public when the webhook was registered and points at the
    /// loopback listener at delivery. The delivery's resolver drops the private answer, so the
    /// listener is never reached; with private addresses allowed the same set-up reaches it.
    #[tokio::test]
    async fn a_name_rebound_to_loopback_after_registration_reaches_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let url = format!(
            "http://rebind.test:{}/hook",
            listener.local_addr().expect("address").port()
        );
        let rebinding = Arc::new(Rebinding(std::sync::Mutex::new(
            "93.184.216.34".parse().expect("address"),
        )));
        // Registration resolves, never connects.
        assert!(
            check_with(&url, &Destinations::public(false), rebinding.as_ref())
                .await
                .is_ok()
        );
        *rebinding.0.lock().expect("lock") = "127.0.0.1".parse().expect("address");
        assert!(matches!(
            check_with(&url, &Destinations::public(false), rebinding.as_ref()).await,
            Err(UrlError::Private { .. })
        ));

        let refused = delivery_client(Arc::clone(&rebinding), false)
            .post(&url)
            .send()
            .await
            .expect_err("the private answer is dropped");
        let mut chain = refused.to_string();
        let mut source = std::error::Error::source(&refused);
        while let Some(cause) = source {
            chain = format!("{chain}: {cause}");
            source = cause.source();
        }
        assert!(chain.contains("private"), "{chain}");
        let reached =
            tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
        assert!(
            reached.is_err(),
            "nothing connected to the loopback listener"
        );

        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
            tokio::io::AsyncWriteExt::write_all(
                &mut stream,
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            )
            .await
            .expect("answer");
        });
        let allowed = delivery_client(rebinding, true)
            .post(&url)
            .send()
            .await
            .expect("allowed private addresses are reached");
        assert_eq!(allowed.status().as_u16(), 204);
        server.await.expect("server");
    }

    #[test]
    fn address_literals_are_checked_at_delivery() {
        assert!(matches!(
            check_literal_host("http://[::127.0.0.1]:9/hook", &Destinations::public(false)),
            Err(UrlError::Private { .. })
        ));
        assert!(check_literal_host("http://127.0.0.1:9/hook", &Destinations::public(true)).is_ok());
        assert!(
            check_literal_host("https://93.184.216.34/hook", &Destinations::public(false)).is_ok()
        );
        assert!(
            check_literal_host("https://example.com/hook", &Destinations::public(false)).is_ok()
        );
    }
}
