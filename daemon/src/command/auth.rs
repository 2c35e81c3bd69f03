//! Logins: checking credentials for a protocol front, and memcached's `auth_cmds` and
//! `auth_errors`.
//!
//! Owns: the counting (every check is an `auth_cmds`, a failed one also an `auth_errors`, as
//! memcached counts its ASCII logins and SASL steps). Must not touch: the exchange's bytes, or
//! where credentials come from (the `auth` module).

use super::Executor;

impl Executor<'_> {
    /// Whether `user` and `password` may log in; false on a server without credentials.
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> bool {
        let accepted = self
            .shared
            .auth
            .as_ref()
            .is_some_and(|auth| auth.check(user, password));
        self.count_auth(accepted);
        accepted
    }

    /// Counts one login verdict: SASL's come from its exchange (an unknown mechanism or a
    /// step out of turn fails without a password check, and still counts, as in memcached).
    pub fn count_auth(&self, accepted: bool) {
        self.stats.auth_cmds.incr();
        if !accepted {
            self.stats.auth_errors.incr();
        }
    }
}
