//! What a push subscription may name. Its endpoint is a URL this server will call later,
//! so it must be `https://` and must not lead into the server's own network: no
//! loopback, private, link-local, shared (CGNAT), multicast or otherwise special address,
//! whether written as an IP literal or behind a host name — checked when the subscription
//! is registered, and again, against DNS rebinding, by the resolver every push goes
//! through. `push.allow_insecure_endpoints` lifts these rules for local testing. Its keys
//! must be what a browser's `PushSubscription` gives: a P-256 public point and a 16-byte
//! auth secret, base64url.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::{Host, Url};

/// The longest endpoint accepted, in characters.
pub const MAX_ENDPOINT_LEN: usize = 2_048;

/// How long resolving an endpoint's host may take when a subscription is registered.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

const PRIVATE: &str =
    "must not point at a loopback, private, link-local or other non-public address";

/// The rules for endpoints, as `push.allow_insecure_endpoints` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointPolicy {
    allow_insecure: bool,
}

impl EndpointPolicy {
    /// `allow_insecure`: accept `http://` and any address (local testing only).
    pub fn new(allow_insecure: bool) -> Self {
        Self { allow_insecure }
    }

    /// The checks that need no DNS: an absolute `https://` URL of at most 2,048
    /// characters, without user info, whose host is neither a non-public IP literal nor a
    /// `localhost` name. The error is the message for the `endpoint` field.
    pub fn check_url(&self, endpoint: &str) -> Result<Url, String> {
        if endpoint.chars().count() > MAX_ENDPOINT_LEN {
            return Err(format!("must be at most {MAX_ENDPOINT_LEN} characters"));
        }
        let url = Url::parse(endpoint).map_err(|_| "must be an absolute URL".to_owned())?;
        let scheme_allowed = match url.scheme() {
            "https" => true,
            "http" => self.allow_insecure,
            _ => false,
        };
        if !scheme_allowed {
            return Err(if self.allow_insecure {
                "must be an http:// or https:// URL".into()
            } else {
                "must be an https:// URL".into()
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        match url.host() {
            None => return Err("must name a host".into()),
            Some(_) if self.allow_insecure => {}
            Some(Host::Ipv4(ip)) if !is_public_address(IpAddr::V4(ip)) => {
                return Err(PRIVATE.into());
            }
            Some(Host::Ipv6(ip)) if !is_public_address(IpAddr::V6(ip)) => {
                return Err(PRIVATE.into());
            }
            Some(Host::Domain(name)) if is_localhost(name) => return Err(PRIVATE.into()),
            Some(_) => {}
        }
        Ok(url)
    }

    /// [`Self::check_url`], and every address the host name resolves to must be public.
    pub async fn check(&self, endpoint: &str) -> Result<Url, String> {
        let url = self.check_url(endpoint)?;
        if self.allow_insecure {
            return Ok(url);
        }
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup =
                tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port)));
            let addresses: Vec<IpAddr> = match lookup.await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                _ => Vec::new(),
            };
            self.check_addresses(&addresses)?;
        }
        Ok(url)
    }

    /// What a host name's addresses must be: at least one, and (unless insecure endpoints
    /// are allowed) all public.
    pub fn check_addresses(&self, addresses: &[IpAddr]) -> Result<(), String> {
        if addresses.is_empty() {
            return Err("its host name does not resolve".into());
        }
        if !self.allow_insecure && !addresses.iter().all(|ip| is_public_address(*ip)) {
            return Err(PRIVATE.into());
        }
        Ok(())
    }

    /// The resolver that pushes must go through: `None` (the system's) when insecure
    /// endpoints are allowed, else one that hands out public addresses only.
    pub(crate) fn resolver(&self) -> Option<PublicResolver> {
        (!self.allow_insecure).then_some(PublicResolver)
    }
}

/// `localhost` and the names under it (RFC 6761), which always mean this machine.
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether a push may be sent to `ip`: a globally routable unicast address, not one of
/// the special-purpose ranges (IANA's IPv4 and IPv6 special-purpose registries). An IPv4
/// address inside IPv6 (mapped, or NAT64's well-known prefix) is judged as IPv4.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // Global unicast is 2000::/3; everything else (unspecified, loopback, unique local,
    // link-local, multicast, IPv4-compatible, discard) is not for us.
    let global_unicast = s[0] & 0xe000 == 0x2000;
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
        || s[0] == 0x2002
        || (s[0] == 0x3fff && s[1] < 0x1000);
    global_unicast && !special
}

/// Base64url with or without its padding, as browsers and libraries write it.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let text = text
        .strip_suffix("==")
        .or_else(|| text.strip_suffix('='))
        .unwrap_or(text);
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A subscription's `p256dh` key: an uncompressed P-256 point (65 bytes) on the curve.
/// The error is the message for the field.
pub fn decode_p256dh(text: &str) -> Result<Vec<u8>, String> {
    const RULE: &str = "must be an uncompressed P-256 public key (65 bytes), base64url";
    let bytes = base64url(text).ok_or_else(|| RULE.to_owned())?;
    if bytes.len() != 65 || bytes.first() != Some(&4) {
        return Err(RULE.into());
    }
    p256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| RULE.to_owned())?;
    Ok(bytes)
}

/// A subscription's `auth` secret: 16 bytes. The error is the message for the field.
pub fn decode_auth_secret(text: &str) -> Result<Vec<u8>, String> {
    match base64url(text) {
        Some(bytes) if bytes.len() == 16 => Ok(bytes),
        _ => Err("must be a 16-byte secret, base64url".into()),
    }
}

/// Resolves push endpoints' host names to their public addresses only, so that a name
/// that pointed at a public address when it was registered cannot later lead a push into
/// the private network.
pub(crate) struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public_address(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_global_unicast_addresses_are_public() {
        for private in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:a00:1::1",
            "3fff::1",
        ] {
            assert!(!is_public_address(ip(private)), "{private} passed");
        }
        for public in [
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "193.0.0.1",
            "::ffff:8.8.4.4",
            "64:ff9b::808:808",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert!(is_public_address(ip(public)), "{public} refused");
        }
    }

    #[test]
    fn endpoints_must_be_public_https_urls() {
        let strict = EndpointPolicy::new(false);
        assert!(
            strict
                .check_url("https://push.example.net/send/abc")
                .is_ok()
        );
        assert!(strict.check_url("https://[2606:4700::1111]/x").is_ok());
        for refused in [
            "http://push.example.net/send/abc",
            "ftp://push.example.net/",
            "push.example.net/send",
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://localhost/x",
            "https://LOCALHOST./x",
            "https://api.localhost:8443/x",
            "https://user:pw@push.example.net/x",
        ] {
            assert!(strict.check_url(refused).is_err(), "{refused} passed");
        }
        let long = format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert!(strict.check_url(&long).is_err());
        let insecure = EndpointPolicy::new(true);
        assert!(insecure.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(insecure.check_url("https://localhost/x").is_ok());
        assert!(insecure.check_url("ftp://push.example.net/").is_err());
    }

    #[test]
    fn resolved_addresses_must_all_be_public() {
        let strict = EndpointPolicy::new(false);
        assert!(strict.check_addresses(&[ip("8.8.8.8")]).is_ok());
        assert!(
            strict
                .check_addresses(&[ip("8.8.8.8"), ip("10.0.0.1")])
                .is_err()
        );
        assert!(strict.check_addresses(&[]).is_err());
        assert!(
            EndpointPolicy::new(true)
                .check_addresses(&[ip("10.0.0.1")])
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_resolver_hands_out_no_private_address() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(PublicResolver.resolve(name).await.is_err());
    }

    #[test]
    fn keys_decode_with_or_without_padding() {
        let point = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert_eq!(decode_p256dh(point).map(|b| b.len()), Ok(65));
        assert_eq!(decode_p256dh(&format!("{point}=")).map(|b| b.len()), Ok(65));
        // The same length, but not on the curve.
        let off_curve = format!("B{}", "A".repeat(point.len() - 1));
        assert!(decode_p256dh(&off_curve).is_err());
        assert!(decode_p256dh("BTBZMqHH6r4Tts7J_aSIgg").is_err());
        assert!(decode_p256dh("not base64!").is_err());
        assert_eq!(
            decode_auth_secret("BTBZMqHH6r4Tts7J_aSIgg").map(|b| b.len()),
            Ok(16)
        );
        assert_eq!(
            decode_auth_secret("BTBZMqHH6r4Tts7J_aSIgg==").map(|b| b.len()),
            Ok(16)
        );
        assert!(decode_auth_secret("BTBZMqHH6r4Tts7J").is_err());
        assert!(decode_auth_secret(point).is_err());
    }
}
