//! memcached 1.6's `-Y` auth file: `user:password` lines, read as authfile.c reads them.
//!
//! Owns: the format and its limits, byte for byte: the user is everything before the first
//! `:` (it may be empty), the password everything after it up to `\r`, `\n` or a NUL; a line
//! without a `:` (a blank line too) makes the whole file malformed; at most 8 entries are
//! read, the rest silently ignored; a line longer than 255 bytes is cut there and ends the
//! file, as does a NUL (memcached reads lines with `fgets` into C strings). Must not touch:
//! connections, or how a login is parsed.
//!
//! One deliberate difference: memcached's first `fgets` is given the file's size rather than
//! one more, so a file of a single line without a final newline loses that line's last byte
//! (`a:bc` logs in as `a b`). Here the whole line counts.

use std::path::Path;

/// memcached's MAX_ENTRIES: "Not supposed to be a huge database!"
pub const MAX_ENTRIES: usize = 8;

/// memcached's MAX_ENTRY_LEN (authfile.c and sasl_defs.c alike): `fgets` reads at most this
/// many bytes less one per line.
pub(crate) const MAX_ENTRY_LEN: usize = 256;

/// The lines of a password file as memcached's C code sees them: cut as `fgets` cuts them (at
/// a newline, which is kept, or after MAX_ENTRY_LEN - 1 bytes, the rest going on as the next
/// line), each up to its first NUL. Shared by the `-Y` file and the SASL database.
pub(crate) fn fgets_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let limit = rest.len().min(MAX_ENTRY_LEN - 1);
        let line_len = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |newline| newline + 1);
        let (line, after) = rest.split_at(line_len);
        rest = after;
        Some(line.split(|&b| b == 0).next().unwrap_or(&[]))
    })
}

/// Why a file could not be used, with memcached's messages.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("Could not open authfile [{path}] for reading, error {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("Authfile [{path}] has a malformed entry. Should be 'user:password'")]
    Malformed { path: String },
}

/// The users and passwords of one reading of the file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Entries {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        f.debug_struct("Entries")
            .field("count", &self.entries.len())
            .finish()
    }
}

/// The file is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Entries {
    pub fn load(path: &Path) -> Result<Entries, AuthFileError> {
        let shown = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| AuthFileError::Open {
            path: shown.clone(),
            source,
        })?;
        Entries::parse(&data).map_err(|Malformed| AuthFileError::Malformed { path: shown })
    }

    pub fn parse(data: &[u8]) -> Result<Entries, Malformed> {
        let mut entries = Vec::new();
        for text in fgets_lines(data) {
            if entries.len() >= MAX_ENTRIES {
                break;
            }
            let colon = text.iter().position(|&b| b == b':').ok_or(Malformed)?;
            let password_and_end = &text[colon + 1..];
            let password_len = password_and_end
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(password_and_end.len());
            entries.push((
                text[..colon].to_vec(),
                password_and_end[..password_len].to_vec(),
            ));
            // A password that ran to the end of the string (a NUL, or a line cut at
            // MAX_ENTRY_LEN - 1 bytes) reads to authfile.c as the end of the file.
            if password_len == password_and_end.len() {
                break;
            }
        }
        Ok(Entries { entries })
    }

    /// Entries from another source's `(user, password)` pairs (the SASL database's), so
    /// that its logins are checked by the same constant-time [`Entries::check`].
    pub fn from_pairs(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Entries {
        Entries { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `user` and `password` are an entry's, compared in constant time: every entry
    /// is compared in full whatever the outcome, so the time says nothing about which bytes
    /// matched (only, as in memcached, the number of entries).
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mut found = subtle::Choice::from(0);
        for (known_user, known_password) in &self.entries {
            found |= known_user.as_slice().ct_eq(user) & known_password.as_slice().ct_eq(password);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(data: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
        Entries::parse(data).map(|e| {
            e.entries
                .iter()
                .map(|(u, p)| {
                    (
                        String::from_utf8_lossy(u).into_owned(),
                        String::from_utf8_lossy(p).into_owned(),
                    )
                })
                .collect()
        })
    }

    fn pair(u: &str, p: &str) -> (String, String) {
        (u.to_string(), p.to_string())
    }

    // Each case was checked against memcached 1.6.18 -Y on this machine.
    #[test]
    fn lines_are_read_as_memcached_reads_them() {
        assert_eq!(
            users(b"alice:secret\nbob:hunter2\n").unwrap(),
            vec![pair("alice", "secret"), pair("bob", "hunter2")]
        );
        assert_eq!(
            users(b"a:b\r\nc:d").unwrap(),
            vec![pair("a", "b"), pair("c", "d")]
        );
        assert_eq!(
            users(b"x:p:q\n:e\n").unwrap(),
            vec![pair("x", "p:q"), pair("", "e")]
        );
        assert_eq!(users(b"").unwrap(), vec![]);
        assert_eq!(users(b"a:bc").unwrap(), vec![pair("a", "bc")]);
    }

    #[test]
    fn a_line_without_a_colon_makes_the_file_malformed() {
        assert_eq!(users(b"a:b\n\nc:d\n"), Err(Malformed));
        assert_eq!(users(b"a:b\nc:d\n\n"), Err(Malformed));
        assert_eq!(users(b"noc\n"), Err(Malformed));
        assert_eq!(users(b"a\0:b\nd:e\n"), Err(Malformed));
    }

    #[test]
    fn limits_are_memcacheds() {
        let nine: Vec<u8> = (1..=9)
            .flat_map(|i| format!("{i}:{i}\n").into_bytes())
            .collect();
        let entries = users(&nine).unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[7], pair("8", "8"));
        // 300 p's: the password is cut at 253 (255 bytes read) and nothing after is read.
        let long = format!("u:{}\nx:y\n", "p".repeat(300));
        assert_eq!(
            users(long.as_bytes()).unwrap(),
            vec![pair("u", &"p".repeat(253))]
        );
        // A NUL ends the password, and the file.
        assert_eq!(users(b"a:b\0c\nd:e\n").unwrap(), vec![pair("a", "b")]);
    }

    #[test]
    fn check_needs_both_exactly() {
        let entries = Entries::parse(b"alice:secret\nbob:hunter2\n").unwrap();
        assert!(entries.check(b"alice", b"secret"));
        assert!(entries.check(b"bob", b"hunter2"));
        assert!(!entries.check(b"alice", b"hunter2"));
        assert!(!entries.check(b"alice", b"secre"));
        assert!(!entries.check(b"alice", b"secretX"));
        assert!(!entries.check(b"alic", b"secret"));
        assert!(!entries.check(b"", b""));
        assert!(!format!("{entries:?}").contains("secret"));
    }
}
