//! The server-side encoder: replies written straight into a caller-owned buffer, with no
//! intermediate `String`s.
//!
//! Owns: the bytes of every reply line memcached 1.6.18 sends (text and meta). Must not touch:
//! what the reply says (the server decides), I/O.

use crate::meta::MetaFlags;

pub const STORED: &[u8] = b"STORED\r\n";
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
pub const EXISTS: &[u8] = b"EXISTS\r\n";
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
pub const DELETED: &[u8] = b"DELETED\r\n";
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
pub const END: &[u8] = b"END\r\n";
pub const OK: &[u8] = b"OK\r\n";
pub const RESET: &[u8] = b"RESET\r\n";
pub const ERROR: &[u8] = b"ERROR\r\n";
pub const META_NOOP: &[u8] = b"MN\r\n";
pub const SERVER_ERROR_OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
pub const SERVER_ERROR_TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
pub const CLIENT_ERROR_NON_NUMERIC: &[u8] =
    b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
pub const CLIENT_ERROR_FLUSH_DISABLED: &[u8] = b"CLIENT_ERROR flush_all not allowed\r\n";
pub const SHUTDOWN_DISABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
pub const MEMLIMIT_TOO_SMALL: &[u8] = b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n";

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`: the header of one hit; the caller appends the
/// value's bytes and then [`value_end`].
pub fn value_header(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    let _ = (out, key, flags, len, cas);
    todo!()
}

/// The `\r\n` after a value's bytes.
pub fn value_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// A whole `VALUE` reply for a value held in one slice.
pub fn value(out: &mut Vec<u8>, key: &[u8], flags: u32, cas: Option<u64>, data: &[u8]) {
    value_header(out, key, flags, data.len(), cas);
    out.extend_from_slice(data);
    value_end(out);
}

/// A number on its own line (`incr`/`decr` result).
pub fn number(out: &mut Vec<u8>, n: u64) {
    let _ = (out, n);
    todo!()
}

/// `VERSION <version>\r\n`.
pub fn version(out: &mut Vec<u8>, version: &str) {
    let _ = (out, version);
    todo!()
}

/// `STAT <name> <value>\r\n`.
pub fn stat(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let _ = (out, name, value);
    todo!()
}

/// `STAT <name> <n>\r\n`.
pub fn stat_u64(out: &mut Vec<u8>, name: &[u8], n: u64) {
    let _ = (out, name, n);
    todo!()
}

/// `SERVER_ERROR <message>\r\n`.
pub fn server_error(out: &mut Vec<u8>, message: &str) {
    let _ = (out, message);
    todo!()
}

/// `CLIENT_ERROR <message>\r\n`.
pub fn client_error(out: &mut Vec<u8>, message: &str) {
    let _ = (out, message);
    todo!()
}

/// The status code of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `VA <len>`: a value follows (mg/ma with `v`).
    Value { len: usize },
    /// `HD`: success without a value.
    Done,
    /// `EN`: miss (mg).
    Miss,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: not found.
    NotFound,
}

/// What a meta reply can report about an item; the request's return flags pick which parts
/// are written, in request order. Fields not known (a miss) are ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaItem<'a> {
    /// The key as the server holds it (decoded bytes; re-encoded in base64 with `b`).
    pub key: &'a [u8],
    pub cas: u64,
    pub client_flags: u32,
    /// Remaining TTL in seconds, -1 for never.
    pub ttl: i64,
    /// Value length in bytes (`s`).
    pub size: usize,
    /// Fetched before this request (`h`).
    pub hit_before: bool,
    /// Seconds since last access (`l`).
    pub last_access: u32,
    /// This client won the right to recache (`W`).
    pub win: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// A win token was already sent to another client (`Z`).
    pub win_sent: bool,
}

/// Writes a meta reply line (`VA <len> <flags>`, `HD <flags>`, `EN`, `NS`, `EX`, `NF`) with the
/// return flags of `flags` in request order and `W`/`X`/`Z` as memcached 1.6.18 writes them;
/// for `Value` the caller appends the value's bytes and then [`value_end`]. Writes nothing and
/// returns false when quiet mode (`q`) hides this status.
pub fn meta(
    out: &mut Vec<u8>,
    status: MetaStatus,
    flags: &MetaFlags<'_>,
    item: &MetaItem<'_>,
) -> bool {
    let _ = (out, status, flags, item);
    todo!()
}

/// `ME <key> exp=<ttl> la=<secs> cas=<cas> fetch=<yes|no> cls=<class> size=<bytes>\r\n`
/// (the key in base64 when asked so).
#[allow(clippy::too_many_arguments)]
pub fn meta_debug(
    out: &mut Vec<u8>,
    key: &[u8],
    base64: bool,
    ttl: i64,
    last_access: u32,
    cas: u64,
    fetched: bool,
    class_id: u8,
    size: usize,
) {
    let _ = (
        out,
        key,
        base64,
        ttl,
        last_access,
        cas,
        fetched,
        class_id,
        size,
    );
    todo!()
}
