//! Authentication: who may use the server.
//!
//! Owns: the credentials a server checks logins against, their loading and their reload on
//! SIGHUP (a reload that fails keeps the credentials in use, as memcached): memcached 1.6's
//! ASCII authentication (`-Y`, [`authfile`]) and SASL over the binary protocol (`-S`,
//! `MEMCACHED_SASL_PWDB`, [`sasl`], whose database is read at each login as memcached reads
//! it, so it needs no reload). Must not touch: the frames of a login exchange (each protocol
//! front parses its own) or connections.

pub mod authfile;
pub mod sasl;

use authfile::{AuthFileError, Entries};
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `-Y`: the auth file and what was last read from it.
#[derive(Debug)]
pub struct AsciiAuth {
    path: PathBuf,
    entries: RwLock<Arc<Entries>>,
}

impl AsciiAuth {
    pub fn load(path: &Path) -> Result<AsciiAuth, AuthFileError> {
        Ok(AsciiAuth {
            path: path.to_path_buf(),
            entries: RwLock::new(Arc::new(Entries::load(path)?)),
        })
    }

    /// Reads the file again; on failure the entries in use stay. Returns the entry count.
    pub fn reload(&self) -> Result<usize, AuthFileError> {
        let entries = Entries::load(&self.path)?;
        let count = entries.len();
        *self.entries.write() = Arc::new(entries);
        Ok(count)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the credentials are an entry's (in constant time, see [`Entries::check`]).
    pub fn check(&self, user: &[u8], password: &[u8]) -> bool {
        let entries = Arc::clone(&self.entries.read());
        entries.check(user, password)
    }
}
