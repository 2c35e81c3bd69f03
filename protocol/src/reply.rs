//! The server-side encoder: replies written straight into a caller-owned buffer, with no
//! intermediate `String`s.
//!
//! Owns: the bytes of every reply line memcached 1.6.18 sends (text and meta). Must not touch:
//! what the reply says (the server decides), I/O.

use crate::base64;
use crate::meta::{MetaCommand, MetaFlags};

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
/// `cache_memlimit` above 1,000,000,000 megabytes.
pub const MEMLIMIT_NOT_BYTES: &[u8] =
    b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n";
/// `cache_memlimit` the allocator cannot apply.
pub const MEMLIMIT_ADJUST_FAILED: &[u8] =
    b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n";
/// Over the connection limit (then close).
pub const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";
/// `incr`/`decr` when memory runs out.
pub const SERVER_ERROR_OUT_OF_MEMORY_ARITH: &[u8] = b"SERVER_ERROR out of memory\r\n";
/// `stats detail` with a bad argument.
pub const CLIENT_ERROR_DUMP_DISABLED: &[u8] = b"CLIENT_ERROR stats cachedump not allowed\r\n";
pub const CLIENT_ERROR_WATCH_DISABLED: &[u8] = b"CLIENT_ERROR watch commands not allowed\r\n";
pub const WATCHER_TOO_MANY: &[u8] = b"WATCHER_TOO_MANY log watcher limit reached\r\n";
pub const WATCH_AFTER_PIPELINE: &[u8] = b"ERROR cannot pipeline other commands before watch\r\n";
pub const CLIENT_ERROR_CONFIG_SET_DISABLED: &[u8] =
    b"CLIENT_ERROR config set not allowed on this node\r\n";
pub const CLIENT_ERROR_CONFIG_DELETE: &[u8] =
    b"CLIENT_ERROR the cluster config comes from this node's file\r\n";
pub const STATS_DETAIL_USAGE: &[u8] = b"CLIENT_ERROR usage: stats detail on|off|dump\r\n";
/// `lru_crawler crawl|metadump` with a class id that is not one.
pub const CRAWLER_BADCLASS: &[u8] = b"BADCLASS invalid class id\r\n";
/// `lru_crawler crawl|metadump` whose class list named no class.
pub const CRAWLER_NOTSTARTED: &[u8] = b"NOTSTARTED no items to crawl\r\n";
/// `lru_crawler crawl hash` (memcached walks the hash table for metadump only).
pub const CRAWLER_UNKNOWN_ERROR: &[u8] = b"ERROR an unknown error happened\r\n";
/// `lru_crawler crawl|metadump` while the crawler is off (`-o no_lru_crawler`, `lru_crawler
/// disable`).
pub const CLIENT_ERROR_CRAWLER_DISABLED: &[u8] = b"CLIENT_ERROR lru crawler disabled\r\n";
/// `lru_crawler metadump` under `-X`.
pub const METADUMP_DISABLED: &[u8] = b"ERROR metadump not allowed\r\n";
/// `lru_crawler enable` while it already runs.
pub const CRAWLER_START_FAILED: &[u8] = b"ERROR failed to start lru crawler thread\r\n";
/// `lru_crawler sleep` above a second.
pub const CLIENT_ERROR_CRAWLER_SLEEP: &[u8] = b"CLIENT_ERROR sleep must be one second or less\r\n";
/// `slabs reassign` with src equal to dst.
pub const REASSIGN_SAME: &[u8] = b"SAME src and dst class are identical\r\n";
/// `slabs reassign` naming no class (nor the global page pool, 0).
pub const REASSIGN_BADCLASS: &[u8] = b"BADCLASS invalid src or dst class id\r\n";
/// `slabs reassign` from a class holding fewer than two pages.
pub const REASSIGN_NOSPARE: &[u8] = b"NOSPARE source class has no spare pages\r\n";
/// `me` on a miss (memcached answers `EN` to it even with no flags).
pub const META_MISS: &[u8] = b"EN\r\n";

fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// One `lru_crawler metadump` line, as crawler.c's `crawler_metadump_eval` prints it:
/// `key=<uri-encoded key> exp=<unix time, -1 for never> la=<unix time> cas=<cas>
/// fetch=<yes|no> cls=<class> size=<bytes>\n` (a bare `\n`: memcached ends only the final
/// `END` with `\r\n`).
#[allow(clippy::too_many_arguments)]
pub fn metadump_item(
    out: &mut Vec<u8>,
    key: &[u8],
    expires_at: Option<i64>,
    last_access: i64,
    cas: u64,
    fetched: bool,
    class_id: u8,
    size: usize,
) {
    out.extend_from_slice(b"key=");
    uri_encode(key, out);
    item_fields(
        out,
        expires_at.unwrap_or(-1),
        last_access,
        cas,
        fetched,
        class_id,
        size,
    );
    out.push(b'\n');
}

/// ` exp=<n> la=<n> cas=<n> fetch=<yes|no> cls=<n> size=<n>`: the fields the `me` reply and a
/// metadump line share (memcached prints both from the same item fields).
fn item_fields(
    out: &mut Vec<u8>,
    exp: i64,
    last_access: i64,
    cas: u64,
    fetched: bool,
    class_id: u8,
    size: usize,
) {
    out.extend_from_slice(b" exp=");
    push_i64(out, exp);
    out.extend_from_slice(b" la=");
    push_i64(out, last_access);
    out.extend_from_slice(b" cas=");
    push_u64(out, cas);
    out.extend_from_slice(if fetched {
        b" fetch=yes cls=".as_slice()
    } else {
        b" fetch=no cls=".as_slice()
    });
    push_u64(out, u64::from(class_id));
    out.extend_from_slice(b" size=");
    push_u64(out, size as u64);
}

/// memcached's `uriencode`: letters, digits and `-._~` as they are, every other byte as
/// `%XX` in upper-case hex, so a key with spaces or binary bytes stays one token.
pub fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// One `stats cachedump` line, as items.c's `item_cachedump` prints it: `ITEM <key> [<value
/// bytes> b; <expiry as a unix time, 0 for never> s]\r\n`.
pub fn cachedump_item(out: &mut Vec<u8>, key: &[u8], value_len: usize, expires_at: Option<i64>) {
    out.extend_from_slice(b"ITEM ");
    out.extend_from_slice(key);
    out.extend_from_slice(b" [");
    push_u64(out, value_len as u64);
    out.extend_from_slice(b" b; ");
    push_i64(out, expires_at.unwrap_or(0));
    out.extend_from_slice(b" s]\r\n");
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n`: the header of one hit; the caller appends the
/// value's bytes and then [`value_end`].
pub fn value_header(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    block_header(out, b"VALUE ", key, flags, len, cas);
}

/// ElastiCache's `CONFIG <key> <flags> <bytes>\r\n<data>\r\n` (a `config get` hit; `<bytes>`
/// counts the data without the final `\r\n`, as in a `VALUE` block), before `END`.
pub fn config_value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8]) {
    block_header(out, b"CONFIG ", key, flags, data.len(), None);
    out.extend_from_slice(data);
    value_end(out);
}

fn block_header(
    out: &mut Vec<u8>,
    word: &[u8],
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
) {
    out.extend_from_slice(word);
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, u64::from(flags));
    out.push(b' ');
    push_u64(out, len as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        push_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
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
    push_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>\r\n`.
pub fn version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>\r\n`.
pub fn stat(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <n>\r\n`.
pub fn stat_u64(out: &mut Vec<u8>, name: &[u8], n: u64) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    push_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `SERVER_ERROR <message>\r\n`.
pub fn server_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `CLIENT_ERROR <message>\r\n`.
pub fn client_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"CLIENT_ERROR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
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
///
/// This form does not know which command it answers, and memcached's bytes depend on it (`q`
/// hides `HD` for ms/md/ma but not for mg; ms echoes only `O`, `k`, `c`). It answers as mg for
/// `VA`, `HD` and `EN`, except that `q` also hides `HD` (as for ms and md), and as ms for `NS`,
/// `EX`, `NF`. Prefer [`meta_reply`], which is exact.
pub fn meta(
    out: &mut Vec<u8>,
    status: MetaStatus,
    flags: &MetaFlags<'_>,
    item: &MetaItem<'_>,
) -> bool {
    if flags.quiet && status == MetaStatus::Done {
        return false;
    }
    let command = match status {
        MetaStatus::Value { .. } | MetaStatus::Done | MetaStatus::Miss => MetaCommand::Get,
        MetaStatus::NotStored | MetaStatus::Exists | MetaStatus::NotFound => MetaCommand::Set,
    };
    meta_reply(out, command, status, flags, item)
}

/// Writes the reply of meta `command` byte for byte as memcached 1.6.18 does:
/// - the status (`VA <len>`, `HD`, `EN`, `NS`, `EX`, `NF`);
/// - then, in request order, the return flags that command answers: mg on a hit `s t c f l h`
///   `O k`, on a miss `O k`; ms `O k c` (any status); md `O k`; ma `c t O k` when it has an item
///   (`HD`/`VA`), else `O k`. `O` is echoed as sent; `k` is the key, in base64 followed by ` b`
///   when the request's key was base64. Flags a command does not answer are left out, as
///   memcached leaves them out;
/// - then, for an mg hit, `Z` (a win token was already sent), `X` (stale), `W` (you win), in
///   that order;
/// - `\r\n`. For `Value` the caller appends the value's bytes and then [`value_end`].
///
/// Writes nothing and returns false when `q` hides the status: `EN` for mg, `HD` for ms and md,
/// `HD` or `VA` for ma. One exception this function cannot see: when `ma` creates the counter
/// (`N` on a miss), memcached sends its `HD`/`VA` even in quiet mode; pass flags with `quiet`
/// cleared for that reply.
pub fn meta_reply(
    out: &mut Vec<u8>,
    command: MetaCommand,
    status: MetaStatus,
    flags: &MetaFlags<'_>,
    item: &MetaItem<'_>,
) -> bool {
    let hidden = matches!(
        (command, status),
        (MetaCommand::Get, MetaStatus::Miss)
            | (MetaCommand::Set | MetaCommand::Delete, MetaStatus::Done)
            | (
                MetaCommand::Arith,
                MetaStatus::Done | MetaStatus::Value { .. }
            )
    );
    if flags.quiet && hidden {
        return false;
    }
    match status {
        MetaStatus::Value { len } => {
            out.extend_from_slice(b"VA ");
            push_u64(out, len as u64);
        }
        MetaStatus::Done => out.extend_from_slice(b"HD"),
        MetaStatus::Miss => out.extend_from_slice(b"EN"),
        MetaStatus::NotStored => out.extend_from_slice(b"NS"),
        MetaStatus::Exists => out.extend_from_slice(b"EX"),
        MetaStatus::NotFound => out.extend_from_slice(b"NF"),
    }
    let has_item = matches!(status, MetaStatus::Value { .. } | MetaStatus::Done);
    // Which item-derived flags this command writes for this status.
    let (cas, ttl, get_only) = match command {
        MetaCommand::Get => (has_item, has_item, has_item),
        MetaCommand::Set => (true, false, false),
        MetaCommand::Delete => (false, false, false),
        MetaCommand::Arith => (has_item, has_item, false),
    };
    for token in flags.tokens.split(|&b| b == b' ') {
        let Some(&letter) = token.first() else {
            continue;
        };
        match letter {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(token);
            }
            b'k' => {
                out.extend_from_slice(b" k");
                if flags.base64 {
                    base64::encode(item.key, out);
                    out.extend_from_slice(b" b");
                } else {
                    out.extend_from_slice(item.key);
                }
            }
            b'c' if cas => {
                out.extend_from_slice(b" c");
                push_u64(out, item.cas);
            }
            b't' if ttl => {
                out.extend_from_slice(b" t");
                push_i64(out, item.ttl);
            }
            b's' if get_only => {
                out.extend_from_slice(b" s");
                push_u64(out, item.size as u64);
            }
            b'f' if get_only => {
                out.extend_from_slice(b" f");
                push_u64(out, u64::from(item.client_flags));
            }
            b'l' if get_only => {
                out.extend_from_slice(b" l");
                push_u64(out, u64::from(item.last_access));
            }
            b'h' if get_only => {
                out.extend_from_slice(if item.hit_before { b" h1" } else { b" h0" });
            }
            _ => {}
        }
    }
    if get_only {
        // memcached writes these after the requested flags, in this order.
        if item.win_sent {
            out.extend_from_slice(b" Z");
        }
        if item.stale {
            out.extend_from_slice(b" X");
        }
        if item.win {
            out.extend_from_slice(b" W");
        }
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// `ME <key> exp=<ttl> la=<secs> cas=<cas> fetch=<yes|no> cls=<class> size=<bytes>\r\n`
/// (the key in base64 when asked so). memcached's `size` is the item's whole allocation
/// (header, key and value), not the value's length.
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
    out.extend_from_slice(b"ME ");
    if base64 {
        base64::encode(key, out);
    } else {
        out.extend_from_slice(key);
    }
    item_fields(
        out,
        ttl,
        i64::from(last_access),
        cas,
        fetched,
        class_id,
        size,
    );
    out.extend_from_slice(b"\r\n");
}
