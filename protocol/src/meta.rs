//! The flags of the meta commands (`mg`, `ms`, `md`, `ma`): parsed into fields for the server,
//! and kept in request order so that return flags come back in the order they were asked for.
//!
//! Owns: which flags exist and what token each takes. Must not touch: parsing of the command
//! line around them (`parse`) or reply bytes (`reply`).

/// Which meta command a line is, for parsing and for [`crate::reply::meta_reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCommand {
    /// `mg`
    Get,
    /// `ms`
    Set,
    /// `md`
    Delete,
    /// `ma`
    Arith,
}

/// Mode of `ms` (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetaSetMode {
    /// `MS` (default).
    #[default]
    Set,
    /// `ME`: add.
    Add,
    /// `MA`: append.
    Append,
    /// `MP`: prepend.
    Prepend,
    /// `MR`: replace.
    Replace,
}

/// Mode of `ma` (`M` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetaArithMode {
    /// `MI`, `M+` (default).
    #[default]
    Incr,
    /// `MD`, `M-`.
    Decr,
}

/// Every flag a meta command may carry, parsed. As memcached 1.6.18 does, every command accepts
/// every known flag and ignores those that mean nothing to it; an unknown or repeated flag is an
/// error (`CLIENT_ERROR invalid flag` / `duplicate flag`; md and ma say `invalid or duplicate
/// flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaFlags<'a> {
    /// The flag tokens as sent, space-separated, in request order (after the key, and after
    /// the data length for `ms`). [`crate::reply::meta_reply`] walks it to write the return
    /// flags in that order.
    pub tokens: &'a [u8],
    /// `b`: the key is base64 (already decoded into the request's key).
    pub base64: bool,
    /// `q`: quiet mode. On memcached 1.6.18 it hides `EN` (mg), `HD` (ms, md) and the success
    /// reply of ma (`HD` or `VA`); `NF`, `NS`, `EX` and errors are always sent.
    pub quiet: bool,
    /// `O<token>`: opaque, the bytes after the `O` (at most 31: memcached's 32 count the
    /// `O`). Echoed as sent.
    pub opaque: Option<&'a [u8]>,
    /// `k`: echo the key.
    pub return_key: bool,
    /// `v`: return the value (mg, ma).
    pub return_value: bool,
    /// `c`: return the CAS unique.
    pub return_cas: bool,
    /// `f`: return the client flags.
    pub return_flags: bool,
    /// `h`: return whether the item was hit before (0/1).
    pub return_hit: bool,
    /// `l`: return seconds since last access.
    pub return_last_access: bool,
    /// `s`: return the item's value size.
    pub return_size: bool,
    /// `t`: return the remaining TTL (-1 for never).
    pub return_ttl: bool,
    /// `u`: do not count this read as an access.
    pub no_bump: bool,
    /// `I`: invalidate (md: mark stale instead of removing; ms: store even if the CAS is
    /// older, marking the item stale).
    pub invalidate: bool,
    /// `N<ttl>`: vivify on miss with this TTL (mg, ma).
    pub vivify: Option<i64>,
    /// `R<ttl>`: win the recache if the remaining TTL is below this (mg).
    pub recache: Option<i64>,
    /// `T<ttl>`: set this TTL (mg: touch; ms: exptime; md with I; ma).
    pub ttl: Option<i64>,
    /// `C<cas>`: compare this CAS unique (ms, md, ma).
    pub compare_cas: Option<u64>,
    /// `F<flags>`: client flags to store (ms).
    pub client_flags: Option<u32>,
    /// `J<n>`: initial value for an auto-created counter (ma).
    pub initial: Option<u64>,
    /// `D<n>`: delta (ma, default 1).
    pub delta: Option<u64>,
    /// `M<mode>` of `ms`.
    pub set_mode: MetaSetMode,
    /// `M<mode>` of `ma`.
    pub arith_mode: MetaArithMode,
}

impl<'a> MetaFlags<'a> {
    /// The flags that ask for something back, in request order, as their letters (`b`, `c`,
    /// `f`, `h`, `k`, `l`, `O`, `s`, `t` ...; value-taking flags other than `O` are not
    /// return flags). For callers that inspect a request; the encoder reads `tokens` itself.
    /// A reply has one token per letter, except `b`, which memcached writes right after the
    /// `k` token rather than in its own place.
    pub fn return_flags(&self) -> impl Iterator<Item = u8> + 'a {
        self.tokens
            .split(|&b| b == b' ')
            .filter_map(|token| token.first().copied())
            .filter(|letter| {
                matches!(
                    letter,
                    b'b' | b'c' | b'f' | b'h' | b'k' | b'l' | b'O' | b's' | b't'
                )
            })
    }
}
