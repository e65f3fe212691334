//! Pinning: a request header that forces a colour, for smoke tests and for
//! people checking green before any real traffic moves there.
//!
//! A pin is honoured only from a trusted source range or together with the
//! configured secret; anything else is ignored (the request is routed by the
//! split as if it carried no pin). Both headers are always stripped before the
//! request goes upstream, so applications never see them.

use crate::config::PinConfig;
use crate::headers::Headers;
use crate::split::Color;
use ipnetwork::IpNetwork;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// The response header that tells a pinned request which colour served it
/// (pinned requests only: a smoke check proves its pin was honoured).
pub const SERVED_BY: &str = "x-cutover-served-by";

pub struct PinPolicy {
    pub header: http::HeaderName,
    pub secret_header: http::HeaderName,
    trusted: Vec<IpNetwork>,
    secret: Option<String>,
}

impl PinPolicy {
    pub fn from_config(config: &PinConfig) -> Result<PinPolicy, String> {
        let secret = match &config.secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("pin.secret_file: cannot read {}: {e}", path.display()))?
                    .trim()
                    .to_owned(),
            )
            .filter(|s| !s.is_empty()),
            None => None,
        };
        Ok(PinPolicy {
            header: http::HeaderName::from_bytes(config.header.as_bytes())
                .map_err(|e| format!("pin.header: {e}"))?,
            secret_header: http::HeaderName::from_bytes(config.secret_header.as_bytes())
                .map_err(|e| format!("pin.secret_header: {e}"))?,
            trusted: config
                .trusted_sources
                .iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e| format!("pin.trusted_sources: {s}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            secret,
        })
    }

    /// The colour a request is pinned to, if its pin is to be honoured.
    pub fn pinned_color(
        &self,
        headers: &(impl Headers + ?Sized),
        client: Option<IpAddr>,
    ) -> Option<Color> {
        let color = Color::parse(headers.get(self.header.as_str())?)?;
        let trusted_source = client.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(ip)));
        let has_secret = match (&self.secret, headers.get(self.secret_header.as_str())) {
            (Some(secret), Some(given)) => bool::from(secret.as_bytes().ct_eq(given)),
            _ => false,
        };
        (trusted_source || has_secret).then_some(color)
    }

    /// Removes the pin headers; called for every request going upstream.
    pub fn strip(&self, head: &mut impl crate::headers::EditHead) {
        head.unset(&self.header);
        head.unset(&self.secret_header);
    }

    /// Whether a header is one of the pin headers, which never go upstream.
    pub fn is_pin_header(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(self.header.as_str())
            || name.eq_ignore_ascii_case(self.secret_header.as_str())
    }
}
