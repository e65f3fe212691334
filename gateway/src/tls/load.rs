//! One certificate and its key read from PEM files and checked the way a
//! rotation needs: the chain parses, the key parses and belongs to the
//! leaf, and the names it serves come from its subjectAltName.

use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{select_next_proto, AlpnError, SslAcceptor, SslContext, SslMethod};
use openssl::x509::X509;
use std::path::{Path, PathBuf};

/// A certificate ready to serve: its own TLS context (the listener's
/// settings, this chain and key), switched to per handshake.
pub struct LoadedCertificate {
    pub cert_file: PathBuf,
    /// DNS names from the subjectAltName, lower case (`*.` wildcards kept);
    /// the subject's common name when there is no subjectAltName.
    pub names: Vec<String>,
    /// When the leaf expires, in seconds since the Unix epoch.
    pub not_after: i64,
    pub context: SslContext,
}

impl LoadedCertificate {
    /// Reads and checks one pair; `field` names it in errors
    /// (`listeners[0].tls`).
    pub fn load(field: &str, cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let cert_at = format!("{field}.cert_file {}", cert_file.display());
        let key_at = format!("{field}.key_file {}", key_file.display());
        let pem = std::fs::read(cert_file).map_err(|e| format!("{cert_at}: cannot read: {e}"))?;
        let mut chain = X509::stack_from_pem(&pem)
            .map_err(|e| format!("{cert_at}: not a PEM certificate chain: {e}"))?
            .into_iter();
        let leaf = chain
            .next()
            .ok_or_else(|| format!("{cert_at}: holds no PEM certificate"))?;
        let key_pem = std::fs::read(key_file).map_err(|e| format!("{key_at}: cannot read: {e}"))?;
        let key = PKey::private_key_from_pem(&key_pem)
            .map_err(|e| format!("{key_at}: not a PEM private key: {e}"))?;
        let public = leaf
            .public_key()
            .map_err(|e| format!("{cert_at}: unreadable public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err(format!(
                "{key_at}: is not the key of the certificate in {}",
                cert_file.display()
            ));
        }
        let not_after = Asn1Time::from_unix(0)
            .and_then(|epoch| epoch.diff(leaf.not_after()))
            .map(|d| i64::from(d.days) * 86_400 + i64::from(d.secs))
            .map_err(|e| format!("{cert_at}: unreadable expiry date: {e}"))?;
        let names = names(&leaf);
        let context = context(leaf, chain, &key).map_err(|e| format!("{cert_at}: {e}"))?;
        Ok(LoadedCertificate {
            cert_file: cert_file.to_owned(),
            names,
            not_after,
            context,
        })
    }

    pub fn expired(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.not_after <= now
    }
}

fn names(leaf: &X509) -> Vec<String> {
    let from_san: Vec<String> = leaf
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if !from_san.is_empty() {
        return from_san;
    }
    leaf.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase()))
        .collect()
}

/// The listener's TLS settings (Mozilla intermediate, as pingora's
/// listeners; HTTP/2 preferred through ALPN) with this chain and key.
fn context(
    leaf: X509,
    intermediates: impl Iterator<Item = X509>,
    key: &PKey<openssl::pkey::Private>,
) -> Result<SslContext, openssl::error::ErrorStack> {
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder.set_certificate(&leaf)?;
    for cert in intermediates {
        builder.add_extra_chain_cert(cert)?;
    }
    builder.set_private_key(key)?;
    builder.check_private_key()?;
    builder.set_alpn_select_callback(prefer_h2);
    Ok(builder.build().into_context())
}

/// ALPN: HTTP/2 when the client offers it, else HTTP/1.1.
fn prefer_h2<'a>(_: &mut openssl::ssl::SslRef, offered: &'a [u8]) -> Result<&'a [u8], AlpnError> {
    select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
}
