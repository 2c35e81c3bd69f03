//! TLS on the command line: `-Z` and memcached's `-o ssl_*` options, with memcached's names,
//! values and messages, mapped onto what rustls offers, and refused by name where rustls has no
//! counterpart.
//!
//! Owns: the option names, their parsing and validation, and the values `stats settings`
//! prints for them. Must not touch: files (the certificates are read by `tls::config`), sockets.

use rustls::SupportedCipherSuite;
use rustls::crypto::ring::cipher_suite as suites;
use std::path::PathBuf;

/// `-o ssl_wbuf_size` default: 16 KiB, as memcached (one TLS record's worth).
pub const DEFAULT_WBUF_SIZE: usize = 16 << 10;

/// `ssl_verify_mode`: whether and how client certificates are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// 0: no client certificate is asked for.
    None,
    /// 1: one is asked for and checked if sent; a client without one is served.
    Request,
    /// 2: a client without a valid certificate is refused.
    Require,
    /// 3: as 2, checked once per connection (rustls never renegotiates, so the same as 2).
    Once,
}

impl VerifyMode {
    /// The OpenSSL flags memcached stores and `stats settings` prints: SSL_VERIFY_PEER (1),
    /// | SSL_VERIFY_FAIL_IF_NO_PEER_CERT (2), | SSL_VERIFY_CLIENT_ONCE (4).
    pub fn openssl_flags(self) -> u32 {
        match self {
            VerifyMode::None => 0,
            VerifyMode::Request => 1,
            VerifyMode::Require => 3,
            VerifyMode::Once => 7,
        }
    }
}

/// `ssl_min_version`: memcached's 2 (TLS 1.2, the default) and 3 (TLS 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

impl MinVersion {
    /// As memcached's `ssl_proto_text`.
    pub fn name(self) -> &'static str {
        match self {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// `ssl_keyformat`: OpenSSL's SSL_FILETYPE_PEM (1) or SSL_FILETYPE_ASN1 (2, DER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    Pem,
    Der,
}

impl KeyFormat {
    pub fn number(self) -> u32 {
        match self {
            KeyFormat::Pem => 1,
            KeyFormat::Der => 2,
        }
    }
}

/// Everything `-Z` and `-o ssl_*` asked for.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `-Z`: TCP listeners speak TLS (those given as `notls:` excepted).
    pub enabled: bool,
    pub chain_cert: Option<PathBuf>,
    /// The private key; without it, the key is read from the chain file.
    pub key: Option<PathBuf>,
    pub key_format: KeyFormat,
    /// The CA client certificates are checked against.
    pub ca_cert: Option<PathBuf>,
    pub verify_mode: VerifyMode,
    pub min_version: MinVersion,
    /// `ssl_ciphers` as given (for `stats settings`), and the suites it names.
    pub ciphers: Option<String>,
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// Plaintext handed to TLS at a time per connection: the ciphertext one connection holds.
    pub wbuf_size: usize,
    /// `ssl_session_cache`: TLS 1.2 session ids and TLS 1.3 tickets, kept in a server-side cache.
    pub session_cache: bool,
    /// TCP addresses (as `ListenSpec::Tcp` holds them) given with the `notls:` prefix.
    pub plaintext_addresses: Vec<String>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: false,
            chain_cert: None,
            key: None,
            key_format: KeyFormat::Pem,
            ca_cert: None,
            verify_mode: VerifyMode::None,
            min_version: MinVersion::Tls12,
            ciphers: None,
            cipher_suites: Vec::new(),
            wbuf_size: DEFAULT_WBUF_SIZE,
            session_cache: false,
            plaintext_addresses: Vec::new(),
        }
    }
}

/// The suites rustls (with ring) offers, by their OpenSSL names: what `ssl_ciphers` may list.
fn suite_by_openssl_name(name: &str) -> Option<SupportedCipherSuite> {
    Some(match name {
        "TLS_AES_128_GCM_SHA256" => suites::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => suites::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => suites::TLS13_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256" => suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

const OFFERED_SUITES: &str = "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, \
     TLS_CHACHA20_POLY1305_SHA256, ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, \
     ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384, \
     ECDHE-RSA-CHACHA20-POLY1305";

/// `ssl_ciphers`: names separated by `:` (or spaces), as OpenSSL's cipher lists. As with
/// memcached (whose list is OpenSSL's TLS 1.2 cipher list), naming only TLS 1.2 suites leaves
/// TLS 1.3's suites as they are; naming TLS 1.3 suites restricts those too.
fn parse_ciphers(list: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut tls13 = Vec::new();
    let mut tls12 = Vec::new();
    for name in list.split([':', ' ']).filter(|n| !n.is_empty()) {
        let suite = suite_by_openssl_name(name).ok_or_else(|| {
            format!(
                "error: -o ssl_ciphers: '{name}' is not a cipher suite rustls offers (it offers {OFFERED_SUITES})"
            )
        })?;
        let list = match suite {
            SupportedCipherSuite::Tls13(_) => &mut tls13,
            SupportedCipherSuite::Tls12(_) => &mut tls12,
        };
        if !list.contains(&suite) {
            list.push(suite);
        }
    }
    if tls13.is_empty() && tls12.is_empty() {
        return Err(format!(
            "error: Error setting the provided cipher(s): {list}"
        ));
    }
    if tls13.is_empty() {
        tls13 = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .collect();
    }
    tls13.extend(tls12);
    Ok(tls13)
}

/// memcached's `safe_strtol` for the numeric options: an optional sign and digits.
fn integer(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}

impl TlsSettings {
    /// Applies one `-o ssl_*` option; `Ok(false)` if `name` is not a TLS option.
    pub fn apply_option(&mut self, name: &str, value: Option<&str>) -> Result<bool, String> {
        let required = |what: &str| -> Result<&str, String> {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("error: Missing {what} argument"))
        };
        match name {
            "ssl_chain_cert" => self.chain_cert = Some(required(name)?.into()),
            "ssl_key" => self.key = Some(required(name)?.into()),
            "ssl_ca_cert" => self.ca_cert = Some(required(name)?.into()),
            "ssl_verify_mode" => {
                let number = integer(required(name)?).ok_or_else(|| {
                    "error: could not parse argument to ssl_verify_mode".to_string()
                })?;
                self.verify_mode = match number {
                    0 => VerifyMode::None,
                    1 => VerifyMode::Request,
                    2 => VerifyMode::Require,
                    3 => VerifyMode::Once,
                    _ => {
                        return Err(
                            "error: Invalid ssl_verify_mode. Use help to see valid options."
                                .to_string(),
                        );
                    }
                };
            }
            "ssl_keyformat" => {
                let number = integer(required(name)?).ok_or_else(|| {
                    "error: could not parse argument to ssl_keyformat".to_string()
                })?;
                self.key_format = match number {
                    1 => KeyFormat::Pem,
                    2 => KeyFormat::Der,
                    other => {
                        return Err(format!(
                            "error: -o ssl_keyformat={other} is not supported by ferrocached: keys are read as 1 (PEM) or 2 (DER); OpenSSL engines do not exist in rustls"
                        ));
                    }
                };
            }
            "ssl_ciphers" => {
                let list = required(name)?;
                self.cipher_suites = parse_ciphers(list)?;
                self.ciphers = Some(list.to_string());
            }
            "ssl_wbuf_size" => {
                let kilobytes = required(name)?
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|&kb| kb >= 1)
                    .ok_or_else(|| {
                        "error: could not parse argument to ssl_wbuf_size".to_string()
                    })?;
                self.wbuf_size = kilobytes as usize * 1024;
            }
            "ssl_session_cache" => self.session_cache = true,
            "ssl_min_version" => {
                let value = required(name)?;
                // memcached takes 0-3; the names it prints are accepted too.
                self.min_version = match value {
                    "2" | "tlsv1.2" => MinVersion::Tls12,
                    "3" | "tlsv1.3" => MinVersion::Tls13,
                    "0" | "tlsv1.0" | "1" | "tlsv1.1" => {
                        return Err(format!(
                            "error: -o ssl_min_version={value} is not supported by ferrocached: TLS 1.0 and 1.1 are obsolete (RFC 8996) and rustls offers TLS 1.2 and 1.3 only"
                        ));
                    }
                    _ if integer(value).is_none() => {
                        return Err(
                            "error: could not parse argument to ssl_min_version".to_string()
                        );
                    }
                    _ => {
                        return Err(
                            "error: Invalid ssl_min_version. Use help to see valid options."
                                .to_string(),
                        );
                    }
                };
            }
            "ssl_kernel_tls" => {
                return Err(
                    "error: -o ssl_kernel_tls is not supported by ferrocached: rustls keeps the record layer in the process (handing keys to the kernel would need its own handling of key updates and tickets), and kernels without the \"tls\" TCP ULP cannot take it"
                        .to_string(),
                );
            }
            _ if name.starts_with("ssl_") => {
                return Err(format!("error: Illegal suboption \"{name}\""));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the options together, once the whole command line is read. `tcp` tells whether
    /// any TCP listener is configured.
    pub fn validate(&self, tcp: bool) -> Result<(), String> {
        if !self.enabled {
            if !self.plaintext_addresses.is_empty() {
                return Err("error: 'notls' option is valid only when SSL is enabled".to_string());
            }
            return Ok(());
        }
        if !tcp {
            return Err("error: You cannot enable SSL without a TCP port.".to_string());
        }
        if self.chain_cert.is_none() {
            return Err(
                "error: -Z needs -o ssl_chain_cert=FILE (the server's certificate chain, PEM)"
                    .to_string(),
            );
        }
        if self.verify_mode != VerifyMode::None && self.ca_cert.is_none() {
            return Err(format!(
                "error: -o ssl_verify_mode={} needs -o ssl_ca_cert=FILE, the CA that client certificates are checked against",
                match self.verify_mode {
                    VerifyMode::Request => 1,
                    VerifyMode::Require => 2,
                    _ => 3,
                }
            ));
        }
        Ok(())
    }

    /// Whether connections accepted on this TCP address speak TLS.
    pub fn serves_tls(&self, address: &str) -> bool {
        self.enabled && !self.plaintext_addresses.iter().any(|a| a == address)
    }
}

/// Splits memcached's `notls:` listener prefix off a `-l` entry.
pub fn strip_notls(spec: &str) -> (bool, &str) {
    match spec.trim().strip_prefix("notls:") {
        Some(rest) => (true, rest),
        None => (false, spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(options: &[(&str, Option<&str>)]) -> Result<TlsSettings, String> {
        let mut settings = TlsSettings::default();
        for (name, value) in options {
            assert!(
                settings.apply_option(name, *value)?,
                "{name} is a TLS option"
            );
        }
        Ok(settings)
    }

    #[test]
    fn memcached_values_map_onto_settings() {
        let settings = apply(&[
            ("ssl_chain_cert", Some("/c.pem")),
            ("ssl_key", Some("/k.pem")),
            ("ssl_ca_cert", Some("/ca.pem")),
            ("ssl_verify_mode", Some("2")),
            ("ssl_keyformat", Some("2")),
            ("ssl_wbuf_size", Some("32")),
            ("ssl_session_cache", None),
            ("ssl_min_version", Some("3")),
        ])
        .unwrap();
        assert_eq!(settings.verify_mode, VerifyMode::Require);
        assert_eq!(settings.verify_mode.openssl_flags(), 3);
        assert_eq!(settings.key_format, KeyFormat::Der);
        assert_eq!(settings.wbuf_size, 32 << 10);
        assert!(settings.session_cache);
        assert_eq!(settings.min_version.name(), "tlsv1.3");
        assert_eq!(VerifyMode::Once.openssl_flags(), 7);
    }

    #[test]
    fn what_rustls_lacks_is_refused_by_name() {
        for (name, value, expected) in [
            ("ssl_min_version", Some("0"), "TLS 1.0 and 1.1"),
            ("ssl_min_version", Some("tlsv1.1"), "TLS 1.0 and 1.1"),
            ("ssl_min_version", Some("9"), "Invalid ssl_min_version"),
            ("ssl_min_version", Some("x"), "could not parse"),
            ("ssl_verify_mode", Some("4"), "Invalid ssl_verify_mode"),
            ("ssl_keyformat", Some("3"), "engines"),
            ("ssl_kernel_tls", None, "ssl_kernel_tls"),
            (
                "ssl_ciphers",
                Some("HIGH:!aNULL"),
                "'HIGH' is not a cipher suite",
            ),
            ("ssl_ciphers", Some("AES128-SHA"), "'AES128-SHA'"),
            ("ssl_chain_cert", None, "Missing ssl_chain_cert argument"),
            ("ssl_bogus", Some("1"), "Illegal suboption \"ssl_bogus\""),
        ] {
            let error = apply(&[(name, value)]).unwrap_err();
            assert!(error.contains(expected), "{name}={value:?}: {error}");
            assert!(error.starts_with("error:") && !error.contains('\n'));
        }
    }

    #[test]
    fn ciphers_map_to_rustls_suites() {
        let settings = apply(&[(
            "ssl_ciphers",
            Some("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
        )])
        .unwrap();
        let names: Vec<String> = settings
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        // TLS 1.3 keeps its suites, TLS 1.2 has the two named.
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names.iter().any(|n| n.contains("TLS13_AES_128_GCM")));
        assert!(names.iter().any(|n| n.contains("ECDSA_WITH_AES_128_GCM")));
        let only13 = apply(&[("ssl_ciphers", Some("TLS_AES_256_GCM_SHA384"))]).unwrap();
        assert_eq!(only13.cipher_suites.len(), 1);
    }

    #[test]
    fn validation_needs_a_certificate_and_a_ca_for_client_checks() {
        let mut settings = TlsSettings {
            enabled: true,
            ..TlsSettings::default()
        };
        assert!(
            settings
                .validate(true)
                .unwrap_err()
                .contains("ssl_chain_cert")
        );
        settings.chain_cert = Some("/c.pem".into());
        assert!(settings.validate(true).is_ok());
        assert!(settings.validate(false).unwrap_err().contains("TCP port"));
        settings.verify_mode = VerifyMode::Request;
        assert!(settings.validate(true).unwrap_err().contains("ssl_ca_cert"));
        let plain = TlsSettings {
            plaintext_addresses: vec!["127.0.0.1:1".into()],
            ..TlsSettings::default()
        };
        assert_eq!(
            plain.validate(true).unwrap_err(),
            "error: 'notls' option is valid only when SSL is enabled"
        );
    }

    #[test]
    fn notls_prefix_marks_a_plaintext_listener() {
        assert_eq!(
            strip_notls("notls:127.0.0.1:11212"),
            (true, "127.0.0.1:11212")
        );
        assert_eq!(strip_notls("127.0.0.1"), (false, "127.0.0.1"));
        let settings = TlsSettings {
            enabled: true,
            plaintext_addresses: vec!["127.0.0.1:11212".into()],
            ..TlsSettings::default()
        };
        assert!(!settings.serves_tls("127.0.0.1:11212"));
        assert!(settings.serves_tls("127.0.0.1:11211"));
    }
}
