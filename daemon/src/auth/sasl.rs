//! SASL over the binary protocol (`-S`), as memcached 1.6.18 with Cyrus SASL serves it.
//!
//! Owns: the password database named by `MEMCACHED_SASL_PWDB` (memcached's `sasl_defs.c`
//! format and matching), the PLAIN mechanism (RFC 4616 message parsing and Cyrus's checks on
//! it), and a connection's SASL state machine: which answer a list-mechs, auth or step gets
//! and when the connection counts as authenticated. Must not touch: frame bytes (the binary
//! front encodes the outcomes) or the `auth_cmds`/`auth_errors` counters (the command layer).
//!
//! memcached opens the database at every authentication (`sasl_server_userdb_checkpass`), so
//! an edited file applies to the next login without SIGHUP; this does the same. Unlike
//! memcached, which starts without the variable or the file and then fails every login, a
//! missing variable or unreadable file is a start-up error here: a server nobody can log in to
//! is a configuration mistake worth stopping for.

use super::authfile::{Entries, MAX_ENTRY_LEN, fgets_lines};
use std::path::{Path, PathBuf};

/// The environment variable memcached reads the database's path from.
pub const PWDB_ENV: &str = "MEMCACHED_SASL_PWDB";

/// What list-mechs answers: the mechanisms served, space-separated as `sasl_listmech` joins
/// them. Only PLAIN: a mechanism we do not serve is not listed.
pub const MECHANISMS: &[u8] = b"PLAIN";

/// memcached's MAX_SASL_MECH_LEN: a longer mechanism name is "Invalid arguments".
pub const MAX_MECH_LEN: usize = 32;

/// Why SASL cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error(
        "-S needs {PWDB_ENV} set to a file of user:password lines (ferrocached does not read \
         Cyrus sasldb)"
    )]
    NoPwdb,
    #[error("Could not open SASL password database [{path}] for reading, error {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

/// `-S`: where the password database is.
#[derive(Debug)]
pub struct SaslAuth {
    path: PathBuf,
}

impl SaslAuth {
    /// The database named by [`PWDB_ENV`], checked readable now.
    pub fn from_env() -> Result<SaslAuth, SaslError> {
        let path = std::env::var_os(PWDB_ENV).ok_or(SaslError::NoPwdb)?;
        SaslAuth::load(Path::new(&path))
    }

    pub fn load(path: &Path) -> Result<SaslAuth, SaslError> {
        std::fs::read(path).map_err(|source| SaslError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(SaslAuth {
            path: path.to_path_buf(),
        })
    }

    /// Whether the database, read now, accepts these credentials. An unreadable file refuses
    /// everyone, as memcached's callback does.
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        // memcached: "too long password" when user and password exceed MAX_ENTRY_LEN - 4.
        if user.len() + password.len() > MAX_ENTRY_LEN - 4 {
            return false;
        }
        match std::fs::read(&self.path) {
            Ok(data) => pwdb_entries(&data).check(user, password),
            Err(error) => {
                log::warn!(
                    "SASL: could not read {} for a login: {error}",
                    self.path.display()
                );
                false
            }
        }
    }
}

/// The database as credentials the constant-time [`Entries::check`] can test.
///
/// memcached takes the first line (as `fgets` cuts it: at most 255 bytes, a longer line goes
/// on as the next) that starts with `user:` and accepts a password `p` when the rest of that
/// line starts with `p` followed by `:`, `\n`, `\r`, NUL or the line's end. So every such
/// prefix of the first matching line's rest is an accepted password (`bob:pw:x` accepts `pw`
/// and `pw:x`), and later lines of the same user count for nothing. Lines without `:` are
/// skipped. One difference: a user whose name holds a `:` is looked up by the part before it.
pub fn pwdb_entries(data: &[u8]) -> Entries {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut seen: Vec<&[u8]> = Vec::new();
    for line in fgets_lines(data) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let user = &line[..colon];
        if seen.contains(&user) {
            continue;
        }
        seen.push(user);
        let tail = &line[colon + 1..];
        for end in 0..=tail.len() {
            if end == tail.len() || matches!(tail[end], b':' | b'\n' | b'\r') {
                pairs.push((user.to_vec(), tail[..end].to_vec()));
            }
        }
    }
    Entries::from_pairs(pairs)
}

/// A PLAIN message (RFC 4616: `authzid NUL authcid NUL passwd`), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    pub authzid: &'a [u8],
    pub authcid: &'a [u8],
    pub password: &'a [u8],
}

/// Why a PLAIN message was refused, with Cyrus's log texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("Can only find author (no password)")]
    NoAuthcid,
    #[error("Can only find author/en (no password)")]
    NoPassword,
    #[error("Got more data than we were expecting in the PLAIN plugin")]
    TrailingData,
    #[error("All-whitespace username.")]
    EmptyUser,
    #[error("Requested identity not authenticated identity")]
    OtherIdentity,
}

/// Cyrus's canonicalization: leading and trailing whitespace (C `isspace`) go.
fn canonical(name: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = name.iter().position(|b| !space(b)).unwrap_or(name.len());
    let end = name
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |last| last + 1);
    &name[start..end]
}

/// Parses a PLAIN message as Cyrus's plain plugin does and applies its identity checks: the
/// user is the canonical authcid (not empty); an authzid, if given, must be that same user
/// (Cyrus allows no proxying without an authorization policy, which memcached sets none of).
pub fn parse_plain(data: &[u8]) -> Result<PlainMessage<'_>, PlainError> {
    let mut fields = data.splitn(3, |&b| b == 0);
    let authzid = fields.next().unwrap_or(&[]);
    let authcid = fields.next().ok_or(PlainError::NoAuthcid)?;
    let password = fields.next().ok_or(PlainError::NoPassword)?;
    if password.contains(&0) {
        return Err(PlainError::TrailingData);
    }
    let authcid = canonical(authcid);
    if authcid.is_empty() {
        return Err(PlainError::EmptyUser);
    }
    let authzid = canonical(authzid);
    if !authzid.is_empty() && authzid != authcid {
        return Err(PlainError::OtherIdentity);
    }
    Ok(PlainMessage {
        authzid,
        authcid,
        password,
    })
}

/// What a SASL request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslOutcome {
    /// Success, "Authenticated"; counts an `auth_cmds`.
    Authenticated,
    /// `AuthContinue` with an empty challenge: PLAIN started without its initial response.
    Continue,
    /// `AuthError`, "Auth failure."; counts an `auth_cmds` and an `auth_errors`.
    Failure,
}

/// Where a connection's PLAIN exchange is (Cyrus's connection state as memcached drives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exchange {
    /// No auth started, or the last auth failed (memcached's `sasl_started` false).
    Idle,
    /// An auth without data answered Continue: steps carry the PLAIN message. PLAIN keeps
    /// no state, so a failed step leaves it here and the next step may still succeed.
    AwaitingResponse,
    /// The exchange succeeded: Cyrus fails any further step ("step after doneflag").
    Done,
}

/// One connection's SASL state.
#[derive(Debug, Clone)]
pub struct SaslConn {
    authenticated: bool,
    exchange: Exchange,
}

impl Default for SaslConn {
    fn default() -> Self {
        SaslConn::new()
    }
}

impl SaslConn {
    pub fn new() -> Self {
        SaslConn {
            authenticated: false,
            exchange: Exchange::Idle,
        }
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// List-mechs. memcached's `init_sasl_conn` clears the authenticated flag on every SASL
    /// request, this one included, so a client is logged out by asking.
    pub fn list_mechs(&mut self) -> &'static [u8] {
        self.authenticated = false;
        MECHANISMS
    }

    /// SASL_AUTH with `mechanism` (the request's key) and `data` (its value). `check` tests
    /// a user and password against the database.
    pub fn auth(
        &mut self,
        mechanism: &[u8],
        data: &[u8],
        check: impl FnOnce(&[u8], &[u8]) -> bool,
    ) -> SaslOutcome {
        self.authenticated = false;
        // memcached copies the key into a C string: a NUL ends the name. Cyrus compares
        // mechanism names without regard to case.
        let name = mechanism.split(|&b| b == 0).next().unwrap_or(&[]);
        if !name.eq_ignore_ascii_case(b"PLAIN") {
            self.exchange = Exchange::Idle;
            return SaslOutcome::Failure;
        }
        if data.is_empty() {
            // PLAIN wants the client to go first: Cyrus answers an empty challenge.
            self.exchange = Exchange::AwaitingResponse;
            return SaslOutcome::Continue;
        }
        let outcome = self.verify(data, check);
        self.exchange = match outcome {
            SaslOutcome::Authenticated => Exchange::Done,
            _ => Exchange::Idle,
        };
        outcome
    }

    /// SASL_STEP with `data` (its key, a mechanism name, is ignored as memcached ignores it).
    pub fn step(&mut self, data: &[u8], check: impl FnOnce(&[u8], &[u8]) -> bool) -> SaslOutcome {
        self.authenticated = false;
        match self.exchange {
            Exchange::Idle | Exchange::Done => SaslOutcome::Failure,
            Exchange::AwaitingResponse => {
                let outcome = self.verify(data, check);
                if outcome == SaslOutcome::Authenticated {
                    self.exchange = Exchange::Done;
                }
                outcome
            }
        }
    }

    fn verify(&mut self, data: &[u8], check: impl FnOnce(&[u8], &[u8]) -> bool) -> SaslOutcome {
        match parse_plain(data) {
            Ok(message) if check(message.authcid, message.password) => {
                self.authenticated = true;
                SaslOutcome::Authenticated
            }
            Ok(_) => SaslOutcome::Failure,
            Err(error) => {
                log::debug!("SASL PLAIN refused: {error}");
                SaslOutcome::Failure
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_splits_at_the_nuls() {
        assert_eq!(
            parse_plain(b"\0alice\0secret"),
            Ok(PlainMessage {
                authzid: b"",
                authcid: b"alice",
                password: b"secret"
            })
        );
        // An empty password is a password.
        assert_eq!(parse_plain(b"\0alice\0").map(|m| m.password), Ok(&b""[..]));
    }

    #[test]
    fn plain_authzid_must_be_the_user() {
        assert!(parse_plain(b"alice\0alice\0secret").is_ok());
        assert_eq!(
            parse_plain(b"bob\0alice\0secret"),
            Err(PlainError::OtherIdentity)
        );
        // Cyrus strips whitespace before comparing.
        assert_eq!(
            parse_plain(b" alice\0alice \0secret").map(|m| m.authcid),
            Ok(&b"alice"[..])
        );
    }

    #[test]
    fn malformed_plain_messages_are_refused() {
        assert_eq!(parse_plain(b""), Err(PlainError::NoAuthcid));
        assert_eq!(parse_plain(b"alicesecret"), Err(PlainError::NoAuthcid));
        assert_eq!(parse_plain(b"\0alicesecret"), Err(PlainError::NoPassword));
        assert_eq!(
            parse_plain(b"\0alice\0secret\0"),
            Err(PlainError::TrailingData)
        );
        assert_eq!(parse_plain(b"\0\0secret"), Err(PlainError::EmptyUser));
        assert_eq!(parse_plain(b"\0 \t\0secret"), Err(PlainError::EmptyUser));
    }

    #[test]
    fn pwdb_matches_as_sasl_defs_c() {
        let db = pwdb_entries(b"alice:secret\nbob:pw:extra\r\nalice:other\nnocolon\n:x\n");
        assert!(db.check(b"alice", b"secret"));
        // Only the first line of a user counts.
        assert!(!db.check(b"alice", b"other"));
        // A password may stop at a ':' or run to the end of the line.
        assert!(db.check(b"bob", b"pw"));
        assert!(db.check(b"bob", b"pw:extra"));
        assert!(!db.check(b"bob", b"p"));
        assert!(!db.check(b"nocolon", b""));
        // The last line without a newline counts whole.
        assert!(pwdb_entries(b"carol:pass").check(b"carol", b"pass"));
    }

    #[test]
    fn pwdb_lines_are_cut_as_fgets_cuts_them() {
        let mut data = b"long:".to_vec();
        data.extend(std::iter::repeat_n(b'p', 250));
        data.extend_from_slice(b"\nshort:x\n");
        let db = pwdb_entries(&data);
        assert!(db.check(b"long", &[b'p'; 250]));
        assert!(db.check(b"short", b"x"));
        let mut cut = b"u:".to_vec();
        cut.extend(std::iter::repeat_n(b'q', 300));
        // fgets stops after 255 bytes: the password read is the first 253 `q`s.
        assert!(pwdb_entries(&cut).check(b"u", &[b'q'; 253]));
    }

    fn accept(user: &[u8], password: &[u8]) -> bool {
        user == b"alice" && password == b"secret"
    }

    #[test]
    fn exchange_follows_memcached_with_cyrus() {
        let mut conn = SaslConn::new();
        assert_eq!(conn.step(b"\0alice\0secret", accept), SaslOutcome::Failure);
        assert_eq!(conn.auth(b"CRAM-MD5", b"x", accept), SaslOutcome::Failure);
        assert_eq!(
            conn.auth(b"plain", b"\0alice\0secret", accept),
            SaslOutcome::Authenticated
        );
        assert!(conn.authenticated());
        // A step after success fails and logs out, as does list-mechs.
        assert_eq!(conn.step(b"\0alice\0secret", accept), SaslOutcome::Failure);
        assert!(!conn.authenticated());
        assert_eq!(conn.auth(b"PLAIN", b"", accept), SaslOutcome::Continue);
        assert_eq!(conn.step(b"\0alice\0bad", accept), SaslOutcome::Failure);
        assert_eq!(
            conn.step(b"\0alice\0secret", accept),
            SaslOutcome::Authenticated
        );
        assert_eq!(conn.list_mechs(), b"PLAIN");
        assert!(!conn.authenticated());
    }
}
