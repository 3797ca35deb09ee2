//! Which webhook URLs are allowed: http(s) only, and no private, loopback or link-local
//! addresses unless the configuration allows them (a webhook must not become a way to reach
//! the service's own network).

use std::net::IpAddr;

use reqwest::Url;

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
    #[error("`{0}` does not resolve")]
    Unresolvable(String),
}

/// Whether an address belongs to a private, loopback, link-local or otherwise local network.
pub fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10, carrier NAT
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                    || (v6.segments()[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
            }
        },
    }
}

/// Parses the URL and checks every address its host resolves to.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, UrlError> {
    let parsed = Url::parse(url).map_err(|_| UrlError::Invalid(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| UrlError::Invalid(url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| UrlError::Unresolvable(host.clone()))?
            .map(|socket| socket.ip())
            .collect(),
    };
    if let Some(address) = addresses.into_iter().find(|a| is_private(*a)) {
        return Err(UrlError::Private { host, address });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(is_private(address.parse().expect("address")), "{address}");
        }
        for address in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_private(address.parse().expect("address")), "{address}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert_eq!(
            check("ftp://example.com/x", false).await,
            Err(UrlError::Scheme)
        );
        assert!(matches!(
            check("not a url", false).await,
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            check("http://127.0.0.1:9/hook", false).await,
            Err(UrlError::Private { .. })
        ));
        assert!(matches!(
            check("http://[::1]:9/hook", false).await,
            Err(UrlError::Private { .. })
        ));
        assert!(check("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check("https://93.184.216.34/hook", false).await.is_ok());
    }
}
