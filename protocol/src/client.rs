//! The client side of the protocol: requests encoded into a caller-owned buffer, and the
//! server's replies parsed incrementally, for `ferrocache-client` and `ferrocache-bench`.
//!
//! Owns: request bytes as a client sends them and the reply grammar as a client reads it. Must
//! not touch: sockets, routing or timeouts (the client crate's).
//!
//! Encoding appends to a `Vec<u8>` the caller reuses, so a steady stream of requests does not
//! allocate. Keys are checked before they are written (1..=250 bytes, no spaces or control
//! bytes): a key with a space or `\r\n` in it would otherwise smuggle a second command onto
//! the wire.
//!
//! Parsing ([`parse_reply`]) reads one reply unit at a time from the front of a buffer: one
//! `VALUE` item (header and data), `END`, a status line, a number, a `STAT` line, a meta reply
//! with its value. It borrows from the buffer and never allocates on success. [`parse_get_reply`]
//! reads a whole `VALUE ... END` reply at once.

use crate::meta::{MetaCommand, MetaFlags};
use crate::number::parse_u64;
use crate::reply::MetaStatus;
use crate::request::{
    CrawlTarget, DetailAction, GetKind, KEY_MAX_LEN, Key, LruCrawlerCommand, Request, SlabsCommand,
    StatsGroup, StoreCommand, WatchStreams,
};
use base64::Engine as _;
use thiserror::Error;

/// Longest reply line (without its data block) the parser waits for before it calls the
/// stream garbage. memcached's longest lines (`STAT`, `VALUE` with a 250-byte key) are far
/// shorter; the limit only keeps a desynchronised stream from growing a buffer without end.
pub const MAX_REPLY_LINE: usize = 64 * 1024;

/// A request the encoder refuses to write.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("empty key")]
    EmptyKey,
    #[error("key of {0} bytes is longer than 250")]
    KeyTooLong(usize),
    #[error("key contains a space or control byte at offset {0}")]
    KeyHasInvalidByte(usize),
    #[error("a retrieval needs at least one key")]
    NoKeys,
    /// Meta flag tokens must be printable and free of `\r`/`\n`.
    #[error("meta flags contain a control byte")]
    BadMetaFlags,
    /// `stats` sub-commands are single printable tokens.
    #[error("stats group contains a space or control byte")]
    BadStatsGroup,
    /// Only `ms` carries a data block.
    #[error("a value given to a meta command other than ms")]
    ValueNotAllowed,
}

/// Checks a key as memcached's text protocol needs it: 1..=250 bytes, none of them a space or
/// a control byte.
pub fn check_key(key: &[u8]) -> Result<(), EncodeError> {
    if key.is_empty() {
        return Err(EncodeError::EmptyKey);
    }
    if key.len() > KEY_MAX_LEN {
        return Err(EncodeError::KeyTooLong(key.len()));
    }
    match key.iter().position(|&b| b <= b' ' || b == 0x7f) {
        Some(offset) => Err(EncodeError::KeyHasInvalidByte(offset)),
        None => Ok(()),
    }
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn push_noreply(out: &mut Vec<u8>, noreply: bool) {
    if noreply {
        out.extend_from_slice(b" noreply");
    }
}

/// `get|gets <key>+` or `gat|gats <exptime> <key>+` (`exptime` is ignored for get/gets).
/// On error nothing is written.
pub fn encode_get<'k>(
    out: &mut Vec<u8>,
    kind: GetKind,
    exptime: i64,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(match kind {
        GetKind::Get => b"get".as_slice(),
        GetKind::Gets => b"gets",
        GetKind::Gat => b"gat",
        GetKind::Gats => b"gats",
    });
    if matches!(kind, GetKind::Gat | GetKind::Gats) {
        out.push(b' ');
        push_i64(out, exptime);
    }
    let mut any = false;
    for key in keys {
        if let Err(error) = check_key(key) {
            out.truncate(start);
            return Err(error);
        }
        out.push(b' ');
        out.extend_from_slice(key);
        any = true;
    }
    if !any {
        out.truncate(start);
        return Err(EncodeError::NoKeys);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The fields of a text storage command (`set`, `add`, `replace`, `append`, `prepend`, `cas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Store<'a> {
    pub command: StoreCommand,
    pub key: &'a [u8],
    pub flags: u32,
    pub exptime: i64,
    pub value: &'a [u8],
    /// The unique to compare; written for `cas` only.
    pub cas: u64,
    pub noreply: bool,
}

impl<'a> Store<'a> {
    /// A `set` with flags 0, no expiry and a reply.
    pub fn set(key: &'a [u8], value: &'a [u8]) -> Self {
        Store {
            command: StoreCommand::Set,
            key,
            flags: 0,
            exptime: 0,
            value,
            cas: 0,
            noreply: false,
        }
    }
}

/// `<command> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`.
pub fn encode_store(out: &mut Vec<u8>, store: &Store<'_>) -> Result<(), EncodeError> {
    check_key(store.key)?;
    out.extend_from_slice(match store.command {
        StoreCommand::Set => b"set ".as_slice(),
        StoreCommand::Add => b"add ",
        StoreCommand::Replace => b"replace ",
        StoreCommand::Append => b"append ",
        StoreCommand::Prepend => b"prepend ",
        StoreCommand::Cas => b"cas ",
    });
    out.extend_from_slice(store.key);
    out.push(b' ');
    push_u64(out, u64::from(store.flags));
    out.push(b' ');
    push_i64(out, store.exptime);
    out.push(b' ');
    push_u64(out, store.value.len() as u64);
    if store.command == StoreCommand::Cas {
        out.push(b' ');
        push_u64(out, store.cas);
    }
    push_noreply(out, store.noreply);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(store.value);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `delete <key> [noreply]`.
pub fn encode_delete(out: &mut Vec<u8>, key: &[u8], noreply: bool) -> Result<(), EncodeError> {
    check_key(key)?;
    out.extend_from_slice(b"delete ");
    out.extend_from_slice(key);
    push_noreply(out, noreply);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `incr|decr <key> <delta> [noreply]`.
pub fn encode_arith(
    out: &mut Vec<u8>,
    incr: bool,
    key: &[u8],
    delta: u64,
    noreply: bool,
) -> Result<(), EncodeError> {
    check_key(key)?;
    out.extend_from_slice(if incr { b"incr " } else { b"decr " });
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, delta);
    push_noreply(out, noreply);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `touch <key> <exptime> [noreply]`.
pub fn encode_touch(
    out: &mut Vec<u8>,
    key: &[u8],
    exptime: i64,
    noreply: bool,
) -> Result<(), EncodeError> {
    check_key(key)?;
    out.extend_from_slice(b"touch ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_i64(out, exptime);
    push_noreply(out, noreply);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `flush_all [delay] [noreply]`; the delay is written only when non-zero.
pub fn encode_flush_all(out: &mut Vec<u8>, delay: i64, noreply: bool) {
    out.extend_from_slice(b"flush_all");
    if delay != 0 {
        out.push(b' ');
        push_i64(out, delay);
    }
    push_noreply(out, noreply);
    out.extend_from_slice(b"\r\n");
}

/// `stats [group]`.
pub fn encode_stats(out: &mut Vec<u8>, group: StatsGroup<'_>) -> Result<(), EncodeError> {
    let name: &[u8] = match group {
        StatsGroup::General => b"",
        StatsGroup::Settings => b"settings",
        StatsGroup::Items => b"items",
        StatsGroup::Slabs => b"slabs",
        StatsGroup::Sizes => b"sizes",
        StatsGroup::Conns => b"conns",
        StatsGroup::Latency => b"latency",
        StatsGroup::Reset => b"reset",
        StatsGroup::SizesEnable => b"sizes_enable",
        StatsGroup::SizesDisable => b"sizes_disable",
        StatsGroup::Detail(action) => match action {
            Some(DetailAction::On) => b"detail on",
            Some(DetailAction::Off) => b"detail off",
            Some(DetailAction::Dump) => b"detail dump",
            None => return Err(EncodeError::BadStatsGroup),
        },
        StatsGroup::Cachedump(arguments) => {
            let (class, limit) = arguments.map_err(|_| EncodeError::BadStatsGroup)?;
            out.extend_from_slice(b"stats cachedump ");
            out.extend_from_slice(itoa::Buffer::new().format(class).as_bytes());
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(limit).as_bytes());
            out.extend_from_slice(b"\r\n");
            return Ok(());
        }
        StatsGroup::Other(other) => {
            if other.is_empty() || other.iter().any(|&b| b <= b' ' || b == 0x7f) {
                return Err(EncodeError::BadStatsGroup);
            }
            other
        }
    };
    out.extend_from_slice(b"stats");
    if !name.is_empty() {
        out.push(b' ');
        out.extend_from_slice(name);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// `version`.
pub fn encode_version(out: &mut Vec<u8>) {
    out.extend_from_slice(b"version\r\n");
}

/// `mn`: the meta no-op, answered with `MN` after every reply before it (a pipeline fence).
pub fn encode_meta_noop(out: &mut Vec<u8>) {
    out.extend_from_slice(b"mn\r\n");
}

fn check_meta_flags(flags: &[u8]) -> Result<(), EncodeError> {
    if flags.iter().any(|&b| b < b' ' || b == 0x7f) {
        return Err(EncodeError::BadMetaFlags);
    }
    Ok(())
}

/// Writes a meta key: as is, or in base64 when `base64` (the flags must then carry `b`).
fn push_meta_key(out: &mut Vec<u8>, key: &[u8], base64: bool) -> Result<(), EncodeError> {
    if base64 {
        if key.is_empty() {
            return Err(EncodeError::EmptyKey);
        }
        // The key token, padding included, must fit memcached's 250 bytes: at most 186 raw
        // bytes.
        let start = out.len();
        let encoded_len =
            base64::encoded_len(key.len(), true).ok_or(EncodeError::KeyTooLong(key.len()))?;
        if encoded_len > KEY_MAX_LEN {
            return Err(EncodeError::KeyTooLong(encoded_len));
        }
        out.resize(start + encoded_len, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(key, &mut out[start..])
            .expect("buffer sized by encoded_len");
        out.truncate(start + written);
        Ok(())
    } else {
        check_key(key)?;
        out.extend_from_slice(key);
        Ok(())
    }
}

/// `mg|md|ma <key> <flags>\r\n`, or `ms <key> <datalen> <flags>\r\n<data>\r\n` with `value` as
/// the data. `flags` are the space-separated flag tokens as memcached reads them (`v c f t`,
/// `q`, `O123`, `D5 MD` ...), written verbatim; `base64` writes the key in base64 (include `b`
/// in `flags`). Only `ms` carries a value: a non-empty one for another command is refused.
pub fn encode_meta(
    out: &mut Vec<u8>,
    command: MetaCommand,
    key: &[u8],
    base64: bool,
    flags: &[u8],
    value: &[u8],
) -> Result<(), EncodeError> {
    check_meta_flags(flags)?;
    if command != MetaCommand::Set && !value.is_empty() {
        return Err(EncodeError::ValueNotAllowed);
    }
    let start = out.len();
    out.extend_from_slice(match command {
        MetaCommand::Get => b"mg ",
        MetaCommand::Set => b"ms ",
        MetaCommand::Delete => b"md ",
        MetaCommand::Arith => b"ma ",
    });
    if let Err(error) = push_meta_key(out, key, base64) {
        out.truncate(start);
        return Err(error);
    }
    if command == MetaCommand::Set {
        out.push(b' ');
        push_u64(out, value.len() as u64);
    }
    if !flags.is_empty() {
        out.push(b' ');
        out.extend_from_slice(flags);
    }
    out.extend_from_slice(b"\r\n");
    if command == MetaCommand::Set {
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

fn meta_key<'k>(key: &'k Key<'_>, flags: &MetaFlags<'_>) -> (&'k [u8], bool) {
    (key.bytes(), key.is_base64() || flags.base64)
}

/// The streams `watch` can name, in the order the encoder writes them.
const WATCH_STREAM_NAMES: [&[u8]; 9] = [
    b"fetchers",
    b"mutations",
    b"evictions",
    b"connevents",
    b"sysevents",
    b"rawcmds",
    b"proxyreqs",
    b"proxyevents",
    b"proxyuser",
];

/// Encodes any [`Request`] as a client sends it: the inverse of the server's
/// [`crate::parse_request`] for well-formed requests.
pub fn encode_request(out: &mut Vec<u8>, request: &Request<'_>) -> Result<(), EncodeError> {
    match request {
        Request::Get {
            kind,
            exptime,
            keys,
        } => encode_get(out, *kind, *exptime, keys.iter()),
        Request::Store {
            command,
            key,
            flags,
            exptime,
            value,
            cas,
            noreply,
        } => encode_store(
            out,
            &Store {
                command: *command,
                key,
                flags: *flags,
                exptime: *exptime,
                value,
                cas: *cas,
                noreply: *noreply,
            },
        ),
        Request::Delete { key, noreply } => encode_delete(out, key, *noreply),
        Request::Arith {
            incr,
            key,
            delta,
            noreply,
        } => encode_arith(out, *incr, key, *delta, *noreply),
        Request::Touch {
            key,
            exptime,
            noreply,
        } => encode_touch(out, key, *exptime, *noreply),
        Request::FlushAll { delay, noreply } => {
            encode_flush_all(out, *delay, *noreply);
            Ok(())
        }
        Request::Version => {
            encode_version(out);
            Ok(())
        }
        Request::Verbosity { level, noreply } => {
            out.extend_from_slice(b"verbosity ");
            push_u64(out, u64::from(*level));
            push_noreply(out, *noreply);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::Quit => {
            out.extend_from_slice(b"quit\r\n");
            Ok(())
        }
        Request::RefreshCerts { noreply } => {
            out.extend_from_slice(b"refresh_certs");
            push_noreply(out, *noreply);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::Shutdown { graceful } => {
            out.extend_from_slice(if *graceful {
                b"shutdown graceful\r\n".as_slice()
            } else {
                b"shutdown\r\n"
            });
            Ok(())
        }
        Request::CacheMemlimit { megabytes, noreply } => {
            out.extend_from_slice(b"cache_memlimit ");
            push_u64(out, *megabytes);
            push_noreply(out, *noreply);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::Stats(group) => encode_stats(out, *group),
        Request::Watch(streams) => {
            out.extend_from_slice(b"watch");
            for name in WATCH_STREAM_NAMES {
                if WatchStreams::named(name).is_some_and(|stream| streams.contains(stream)) {
                    out.push(b' ');
                    out.extend_from_slice(name);
                }
            }
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::ConfigGet { key } => {
            out.extend_from_slice(b"config get ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::ConfigSet {
            key,
            flags,
            value,
            noreply,
        } => {
            out.extend_from_slice(b"config set ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_u64(out, u64::from(*flags));
            out.push(b' ');
            push_u64(out, value.len() as u64);
            push_noreply(out, *noreply);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::ConfigDelete { key, noreply } => {
            out.extend_from_slice(b"config delete ");
            out.extend_from_slice(key);
            push_noreply(out, *noreply);
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::MetaGet { key, flags } => {
            let (key, base64) = meta_key(key, flags);
            encode_meta(out, MetaCommand::Get, key, base64, flags.tokens, &[])
        }
        Request::MetaSet { key, value, flags } => {
            let (key, base64) = meta_key(key, flags);
            encode_meta(out, MetaCommand::Set, key, base64, flags.tokens, value)
        }
        Request::MetaDelete { key, flags } => {
            let (key, base64) = meta_key(key, flags);
            encode_meta(out, MetaCommand::Delete, key, base64, flags.tokens, &[])
        }
        Request::MetaArith { key, flags } => {
            let (key, base64) = meta_key(key, flags);
            encode_meta(out, MetaCommand::Arith, key, base64, flags.tokens, &[])
        }
        Request::MetaNoop => {
            encode_meta_noop(out);
            Ok(())
        }
        Request::MetaDebug { key, base64 } => {
            out.extend_from_slice(b"me ");
            push_meta_key(out, key.bytes(), *base64 || key.is_base64())?;
            if *base64 || key.is_base64() {
                out.extend_from_slice(b" b");
            }
            out.extend_from_slice(b"\r\n");
            Ok(())
        }
        Request::LruCrawler(command) => {
            encode_lru_crawler(out, *command);
            Ok(())
        }
        Request::Slabs(command) => {
            encode_slabs(out, *command);
            Ok(())
        }
    }
}

/// `slabs reassign|automove ...`.
fn encode_slabs(out: &mut Vec<u8>, command: SlabsCommand) {
    match command {
        SlabsCommand::Reassign { src, dst } => {
            out.extend_from_slice(format!("slabs reassign {src} {dst}\r\n").as_bytes());
        }
        SlabsCommand::Automove { level, noreply } => {
            out.extend_from_slice(b"slabs automove ");
            push_u64(out, u64::from(level));
            push_noreply(out, noreply);
            out.extend_from_slice(b"\r\n");
        }
        SlabsCommand::Ratio { ratio, noreply } => {
            out.extend_from_slice(format!("slabs automove ratio {}", ratio.get()).as_bytes());
            push_noreply(out, noreply);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `lru_crawler ...`; a [`CrawlTarget::BadClass`] is sent as `0`, which is no class.
fn encode_lru_crawler(out: &mut Vec<u8>, command: LruCrawlerCommand) {
    out.extend_from_slice(b"lru_crawler ");
    let target = match command {
        LruCrawlerCommand::Crawl(target) => {
            out.extend_from_slice(b"crawl ");
            target
        }
        LruCrawlerCommand::Metadump(target) => {
            out.extend_from_slice(b"metadump ");
            target
        }
        LruCrawlerCommand::Tocrawl(n) | LruCrawlerCommand::Sleep(n) => {
            out.extend_from_slice(if matches!(command, LruCrawlerCommand::Tocrawl(_)) {
                b"tocrawl ".as_slice()
            } else {
                b"sleep ".as_slice()
            });
            push_u64(out, u64::from(n));
            out.extend_from_slice(b"\r\n");
            return;
        }
        LruCrawlerCommand::Enable => {
            out.extend_from_slice(b"enable\r\n");
            return;
        }
        LruCrawlerCommand::Disable => {
            out.extend_from_slice(b"disable\r\n");
            return;
        }
    };
    match target {
        CrawlTarget::All => out.extend_from_slice(b"all"),
        CrawlTarget::Hash => out.extend_from_slice(b"hash"),
        CrawlTarget::BadClass => out.push(b'0'),
        // An empty list is a lone comma, which memcached reads as naming no class.
        CrawlTarget::Classes(0) => out.push(b','),
        CrawlTarget::Classes(bits) => {
            let mut first = true;
            for id in (1..64u64).filter(|id| bits & (1 << id) != 0) {
                if !first {
                    out.push(b',');
                }
                first = false;
                push_u64(out, id);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// Reply bytes the parser cannot make sense of: the stream is out of step and the connection
/// should be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    #[error("unrecognised reply line {0:?}")]
    UnknownReply(String),
    #[error("malformed {0} line")]
    Malformed(&'static str),
    #[error("data block not followed by \\r\\n")]
    BadDataTerminator,
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
}

/// The return flags of a meta reply (`HD c123 f0 t-1 Oabc k<key>` ...), kept as the raw
/// tokens and looked up on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaReplyFlags<'a> {
    /// Space-separated tokens after the status (and after the length of `VA`).
    pub tokens: &'a [u8],
}

impl<'a> MetaReplyFlags<'a> {
    /// The tokens, each starting with its flag letter.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.tokens.split(|&b| b == b' ').filter(|t| !t.is_empty())
    }

    /// The value of flag `letter` (bytes after the letter), if the reply carries it.
    pub fn get(&self, letter: u8) -> Option<&'a [u8]> {
        self.iter()
            .find(|t| t.first() == Some(&letter))
            .map(|t| &t[1..])
    }

    /// Whether flag `letter` is present (`W`, `X`, `Z` carry no value).
    pub fn has(&self, letter: u8) -> bool {
        self.get(letter).is_some()
    }

    pub fn cas(&self) -> Option<u64> {
        self.get(b'c').and_then(parse_u64)
    }

    pub fn client_flags(&self) -> Option<u32> {
        self.get(b'f')
            .and_then(parse_u64)
            .and_then(|f| u32::try_from(f).ok())
    }

    /// Remaining TTL; -1 for never.
    pub fn ttl(&self) -> Option<i64> {
        self.get(b't').and_then(parse_i64)
    }

    pub fn size(&self) -> Option<u64> {
        self.get(b's').and_then(parse_u64)
    }

    pub fn key(&self) -> Option<&'a [u8]> {
        self.get(b'k')
    }

    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.get(b'O')
    }
}

/// One meta reply: `VA`, `HD`, `EN`, `NS`, `EX` or `NF` with its flags and, for `VA`, the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaReply<'a> {
    pub status: MetaStatus,
    pub flags: MetaReplyFlags<'a>,
    /// The data block of `VA` (without `\r\n`); empty otherwise.
    pub value: &'a [u8],
}

/// One unit of a server's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `VALUE <key> <flags> <bytes> [<cas>]` and its data: one hit of a retrieval.
    Value {
        key: &'a [u8],
        flags: u32,
        /// Present for `gets`/`gats`.
        cas: Option<u64>,
        data: &'a [u8],
    },
    /// `END`: the end of a retrieval (or of `stats`).
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    Reset,
    /// An `incr`/`decr` result.
    Number(u64),
    /// `VERSION <text>`.
    Version(&'a [u8]),
    /// `STAT <name> <value>` (the value is the rest of the line).
    Stat {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// `ERROR`, or `ERROR <text>` (`ERROR: shutdown not enabled`): the text after `ERROR`,
    /// separators trimmed; empty for a plain `ERROR`.
    Error(&'a [u8]),
    /// `CLIENT_ERROR <text>`.
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <text>`.
    ServerError(&'a [u8]),
    /// A meta reply (`VA`/`HD`/`EN`/`NS`/`EX`/`NF`).
    Meta(MetaReply<'a>),
    /// `MN`.
    MetaNoop,
    /// `ME <key> <k=v>...`: the rest of the line.
    MetaDebug(&'a [u8]),
    /// `MEMLIMIT_TOO_SMALL <text>` (answer to `cache_memlimit`).
    MemlimitTooSmall(&'a [u8]),
}

impl Reply<'_> {
    /// Whether this is `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Reply::Error(_) | Reply::ClientError(_) | Reply::ServerError(_)
        )
    }
}

/// What parsing the front of a buffer gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedReply<T> {
    /// A complete reply that took the first `consumed` bytes.
    Complete { reply: T, consumed: usize },
    /// Not enough bytes yet: call again once the buffer holds at least `needed` bytes (the
    /// whole data block when its header has arrived, so a large value is not rescanned).
    Incomplete { needed: usize },
}

/// Reads the first reply unit in `buf`.
pub fn parse_reply(buf: &[u8]) -> Result<ParsedReply<Reply<'_>>, ReplyError> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        return Ok(ParsedReply::Incomplete {
            needed: buf.len() + 1,
        });
    };
    let line_end = newline + 1;
    let line = &buf[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (word, rest) = match memchr::memchr(b' ', line) {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    let complete = |reply| {
        Ok(ParsedReply::Complete {
            reply,
            consumed: line_end,
        })
    };
    match word {
        b"VALUE" => parse_value(buf, rest, line_end),
        b"VA" => parse_meta_value(buf, rest, line_end),
        b"END" => complete(Reply::End),
        b"STORED" => complete(Reply::Stored),
        b"NOT_STORED" => complete(Reply::NotStored),
        b"EXISTS" => complete(Reply::Exists),
        b"NOT_FOUND" => complete(Reply::NotFound),
        b"DELETED" => complete(Reply::Deleted),
        b"TOUCHED" => complete(Reply::Touched),
        b"OK" => complete(Reply::Ok),
        b"RESET" => complete(Reply::Reset),
        b"VERSION" => complete(Reply::Version(rest)),
        b"STAT" => {
            let (name, value) = match memchr::memchr(b' ', rest) {
                Some(space) => (&rest[..space], &rest[space + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            if name.is_empty() {
                return Err(ReplyError::Malformed("STAT"));
            }
            complete(Reply::Stat { name, value })
        }
        b"CLIENT_ERROR" => complete(Reply::ClientError(rest)),
        b"SERVER_ERROR" => complete(Reply::ServerError(rest)),
        b"MN" => complete(Reply::MetaNoop),
        b"ME" => complete(Reply::MetaDebug(rest)),
        b"MEMLIMIT_TOO_SMALL" => complete(Reply::MemlimitTooSmall(rest)),
        b"HD" | b"EN" | b"NS" | b"EX" | b"NF" => {
            let status = match word {
                b"HD" => MetaStatus::Done,
                b"EN" => MetaStatus::Miss,
                b"NS" => MetaStatus::NotStored,
                b"EX" => MetaStatus::Exists,
                _ => MetaStatus::NotFound,
            };
            complete(Reply::Meta(MetaReply {
                status,
                flags: MetaReplyFlags { tokens: rest },
                value: &[],
            }))
        }
        _ if word.starts_with(b"ERROR") => {
            // `ERROR`, `ERROR <text>` and memcached's `ERROR: shutdown not enabled`.
            let text = &line[b"ERROR".len()..];
            let start = text
                .iter()
                .position(|&b| b != b':' && b != b' ')
                .unwrap_or(text.len());
            complete(Reply::Error(&text[start..]))
        }
        _ if !word.is_empty() && word.iter().all(u8::is_ascii_digit) && rest.is_empty() => {
            let n = parse_u64(word).ok_or(ReplyError::Malformed("number"))?;
            complete(Reply::Number(n))
        }
        _ => Err(ReplyError::UnknownReply(
            String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
        )),
    }
}

/// The data block of `len` bytes starting at `start`, with its `\r\n`.
fn data_block(
    buf: &[u8],
    start: usize,
    len: usize,
) -> Result<Result<(&[u8], usize), usize>, ReplyError> {
    let end = start
        .checked_add(len)
        .and_then(|e| e.checked_add(2))
        .ok_or(ReplyError::Malformed("data length"))?;
    if buf.len() < end {
        return Ok(Err(end));
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(ReplyError::BadDataTerminator);
    }
    Ok(Ok((&buf[start..end - 2], end)))
}

fn parse_value<'a>(
    buf: &'a [u8],
    rest: &'a [u8],
    line_end: usize,
) -> Result<ParsedReply<Reply<'a>>, ReplyError> {
    let malformed = ReplyError::Malformed("VALUE");
    let mut tokens = rest.split(|&b| b == b' ');
    let key = tokens
        .next()
        .filter(|k| !k.is_empty())
        .ok_or(malformed.clone())?;
    let flags = tokens
        .next()
        .and_then(parse_u64)
        .and_then(|f| u32::try_from(f).ok())
        .ok_or(malformed.clone())?;
    let len = tokens
        .next()
        .and_then(parse_u64)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or(malformed.clone())?;
    let cas = match tokens.next() {
        Some(cas) => Some(parse_u64(cas).ok_or(malformed.clone())?),
        None => None,
    };
    if tokens.next().is_some() {
        return Err(malformed);
    }
    Ok(match data_block(buf, line_end, len)? {
        Ok((data, consumed)) => ParsedReply::Complete {
            reply: Reply::Value {
                key,
                flags,
                cas,
                data,
            },
            consumed,
        },
        Err(needed) => ParsedReply::Incomplete { needed },
    })
}

fn parse_meta_value<'a>(
    buf: &'a [u8],
    rest: &'a [u8],
    line_end: usize,
) -> Result<ParsedReply<Reply<'a>>, ReplyError> {
    let (len, flags) = match memchr::memchr(b' ', rest) {
        Some(space) => (&rest[..space], &rest[space + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let len = parse_u64(len)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or(ReplyError::Malformed("VA"))?;
    Ok(match data_block(buf, line_end, len)? {
        Ok((value, consumed)) => ParsedReply::Complete {
            reply: Reply::Meta(MetaReply {
                status: MetaStatus::Value { len },
                flags: MetaReplyFlags { tokens: flags },
                value,
            }),
            consumed,
        },
        Err(needed) => ParsedReply::Incomplete { needed },
    })
}

/// A whole reply to `get`/`gets`/`gat`/`gats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetReply<'a> {
    /// The hits, up to and excluding `END`; iterate with [`GetReply::values`].
    Values { block: &'a [u8], count: usize },
    /// An error line (`SERVER_ERROR ...`) in place of, or in the middle of, the values.
    Failed(Reply<'a>),
}

/// One hit of a [`GetReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    pub key: &'a [u8],
    pub flags: u32,
    pub cas: Option<u64>,
    pub data: &'a [u8],
}

impl<'a> GetReply<'a> {
    /// The hits in reply order (nothing for `Failed`).
    pub fn values(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let mut block = match self {
            GetReply::Values { block, .. } => *block,
            GetReply::Failed(_) => &[][..],
        };
        std::iter::from_fn(move || {
            // The block was checked when the reply was parsed: every unit in it is a VALUE.
            match parse_reply(block) {
                Ok(ParsedReply::Complete {
                    reply:
                        Reply::Value {
                            key,
                            flags,
                            cas,
                            data,
                        },
                    consumed,
                }) => {
                    block = &block[consumed..];
                    Some(Value {
                        key,
                        flags,
                        cas,
                        data,
                    })
                }
                _ => None,
            }
        })
    }
}

/// Reads a whole `VALUE ... END` reply (or the error line that replaces it) from the front of
/// `buf`.
pub fn parse_get_reply(buf: &[u8]) -> Result<ParsedReply<GetReply<'_>>, ReplyError> {
    let mut offset = 0;
    let mut count = 0;
    loop {
        match parse_reply(&buf[offset..])? {
            ParsedReply::Incomplete { needed } => {
                return Ok(ParsedReply::Incomplete {
                    needed: offset + needed,
                });
            }
            ParsedReply::Complete { reply, consumed } => match reply {
                Reply::Value { .. } => {
                    offset += consumed;
                    count += 1;
                }
                Reply::End => {
                    return Ok(ParsedReply::Complete {
                        reply: GetReply::Values {
                            block: &buf[..offset],
                            count,
                        },
                        consumed: offset + consumed,
                    });
                }
                other if other.is_error() => {
                    return Ok(ParsedReply::Complete {
                        reply: GetReply::Failed(other),
                        consumed: offset + consumed,
                    });
                }
                _ => return Err(ReplyError::Malformed("retrieval reply")),
            },
        }
    }
}

fn parse_i64(digits: &[u8]) -> Option<i64> {
    match digits.strip_prefix(b"-") {
        Some(magnitude) => {
            let n = parse_u64(magnitude)?;
            0i64.checked_sub_unsigned(n)
        }
        None => i64::try_from(parse_u64(digits)?).ok(),
    }
}

// ---------------------------------------------------------------------------------------------
// Auto discovery: `config get cluster`
// ---------------------------------------------------------------------------------------------

/// `config get <key>\r\n`, the request ElastiCache's auto-discovery clients send (`cluster`).
pub fn encode_config_get(out: &mut Vec<u8>, key: &[u8]) -> Result<(), EncodeError> {
    check_key(key)?;
    out.extend_from_slice(b"config get ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The answer to `config get`: the whole `CONFIG <key> <flags> <bytes>\r\n<data>\r\nEND\r\n`
/// block, or any other reply unit (`ERROR` from a server without a cluster config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigReply<'a> {
    Config {
        key: &'a [u8],
        flags: u32,
        /// Exactly `<bytes>` bytes, without the `\r\n` after them.
        data: &'a [u8],
    },
    Other(Reply<'a>),
}

/// Reads a `config get` reply from the front of `buf`. The block is complete only with its
/// `END` line, so a caller never leaves half of it on a connection. `<bytes>` is trusted as a
/// `VALUE` length is: the data must be followed by `\r\n`, else the stream is out of step.
pub fn parse_config_reply(buf: &[u8]) -> Result<ParsedReply<ConfigReply<'_>>, ReplyError> {
    if !buf.starts_with(b"CONFIG ") && !b"CONFIG ".starts_with(&buf[..buf.len().min(7)]) {
        return Ok(match parse_reply(buf)? {
            ParsedReply::Complete { reply, consumed } => ParsedReply::Complete {
                reply: ConfigReply::Other(reply),
                consumed,
            },
            ParsedReply::Incomplete { needed } => ParsedReply::Incomplete { needed },
        });
    }
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        return Ok(ParsedReply::Incomplete {
            needed: buf.len() + 1,
        });
    };
    let line = &buf[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty()).skip(1);
    let malformed = || ReplyError::Malformed("CONFIG");
    let key = words.next().ok_or_else(malformed)?;
    let flags = words
        .next()
        .and_then(parse_u64)
        .and_then(|f| u32::try_from(f).ok())
        .ok_or_else(malformed)?;
    let bytes = words
        .next()
        .and_then(parse_u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(malformed)?;
    if words.next().is_some() {
        return Err(malformed());
    }
    let data_start = newline + 1;
    // data, \r\n, END\r\n; overflow-checked because `bytes` comes off the network.
    let data_end = data_start.checked_add(bytes).ok_or_else(malformed)?;
    let block_end = data_end.checked_add(2 + 5).ok_or_else(malformed)?;
    if buf.len() < block_end {
        return Ok(ParsedReply::Incomplete { needed: block_end });
    }
    if &buf[data_end..data_end + 2] != b"\r\n" {
        return Err(ReplyError::BadDataTerminator);
    }
    if &buf[data_end + 2..block_end] != b"END\r\n" {
        return Err(malformed());
    }
    Ok(ParsedReply::Complete {
        reply: ConfigReply::Config {
            key,
            flags,
            data: &buf[data_start..data_end],
        },
        consumed: block_end,
    })
}

/// One node of a cluster config: `host|ip|port`, `ip` empty for `host||port`. Ordered by
/// host first, the order ElastiCache lists them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterNode {
    pub host: String,
    pub ip: String,
    pub port: u16,
}

impl ClusterNode {
    /// What to connect to: the address when the node has one, else the host name.
    pub fn connect_host(&self) -> &str {
        if self.ip.is_empty() {
            &self.host
        } else {
            &self.ip
        }
    }
}

/// The data of `config get cluster`: `<version>\n<host>|<ip>|<port>[ ...]\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub version: u64,
    /// In the order the server gave them (ElastiCache: by host name).
    pub nodes: Vec<ClusterNode>,
}

/// A cluster config's data as a node sends it: `<version>\n<host>|<ip>|<port>[ ...]\n`, the
/// inverse of [`parse_cluster_config`].
pub fn encode_cluster_config(version: u64, nodes: &[ClusterNode]) -> Vec<u8> {
    let mut out = format!("{version}\n").into_bytes();
    for (at, node) in nodes.iter().enumerate() {
        if at > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{}|{}|{}", node.host, node.ip, node.port).as_bytes());
    }
    out.push(b'\n');
    out
}

/// Parses a cluster config's data. Line ends may be `\n` or `\r\n`; an empty node line is an
/// empty list (the caller decides what a cluster of no nodes means).
pub fn parse_cluster_config(data: &[u8]) -> Result<ClusterConfig, ReplyError> {
    let malformed = || ReplyError::Malformed("cluster config");
    let text = std::str::from_utf8(data).map_err(|_| malformed())?;
    let mut lines = text.lines().map(str::trim);
    let version = lines
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(malformed)?;
    let nodes = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|entry| {
            let mut fields = entry.split('|');
            let (Some(host), Some(ip), Some(port), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed());
            };
            let port = port.parse::<u16>().map_err(|_| malformed())?;
            if host.is_empty() || port == 0 {
                return Err(malformed());
            }
            Ok(ClusterNode {
                host: host.to_owned(),
                ip: ip.to_owned(),
                port,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if lines.any(|rest| !rest.is_empty()) {
        return Err(malformed());
    }
    Ok(ClusterConfig { version, nodes })
}

#[cfg(test)]
mod config_tests {
    use super::*;

    /// A reply as an ElastiCache node (and ferrocached, daemon/tests/cluster.rs) sends it; the
    /// payload is 82 bytes: "12\n" (3) + the node line (78) + "\n" (1).
    const GOLDEN: &[u8] = b"CONFIG cluster 0 82\r\n12\n\
        cache-1.internal|10.0.0.1|11211 cache-2.internal|10.0.0.2|11212 cache-3||11213\n\
        \r\nEND\r\n";

    #[test]
    fn encoding_is_the_inverse_of_parsing() {
        let config = ClusterConfig {
            version: 12,
            nodes: vec![
                ClusterNode {
                    host: "cache-1.internal".into(),
                    ip: "10.0.0.1".into(),
                    port: 11211,
                },
                ClusterNode {
                    host: "cache-3".into(),
                    ip: String::new(),
                    port: 11213,
                },
            ],
        };
        let data = encode_cluster_config(config.version, &config.nodes);
        assert_eq!(
            data,
            b"12\ncache-1.internal|10.0.0.1|11211 cache-3||11213\n"
        );
        assert_eq!(parse_cluster_config(&data).unwrap(), config);
    }

    #[test]
    fn golden_reply_parses_with_its_byte_count() {
        let ParsedReply::Complete { reply, consumed } = parse_config_reply(GOLDEN).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(consumed, GOLDEN.len());
        let ConfigReply::Config { key, flags, data } = reply else {
            panic!("{reply:?}");
        };
        assert_eq!((key, flags, data.len()), (&b"cluster"[..], 0, 82));
        let config = parse_cluster_config(data).unwrap();
        assert_eq!(config.version, 12);
        assert_eq!(
            config.nodes,
            vec![
                ClusterNode {
                    host: "cache-1.internal".into(),
                    ip: "10.0.0.1".into(),
                    port: 11211
                },
                ClusterNode {
                    host: "cache-2.internal".into(),
                    ip: "10.0.0.2".into(),
                    port: 11212
                },
                ClusterNode {
                    host: "cache-3".into(),
                    ip: String::new(),
                    port: 11213
                },
            ]
        );
        assert_eq!(config.nodes[2].connect_host(), "cache-3");
        assert_eq!(config.nodes[0].connect_host(), "10.0.0.1");
    }

    #[test]
    fn every_prefix_is_incomplete_never_an_error() {
        for cut in 0..GOLDEN.len() {
            match parse_config_reply(&GOLDEN[..cut]) {
                Ok(ParsedReply::Incomplete { needed }) => assert!(needed > cut, "cut {cut}"),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_wrong_byte_count_or_garbage_is_an_error_not_a_panic() {
        // Too small an N leaves data where the \r\n must be (too large an N only waits).
        let short = b"CONFIG cluster 0 10\r\n12\nh|1.2.3.4|1\n\r\nEND\r\n";
        assert!(parse_config_reply(short).is_err());
        let huge = b"CONFIG cluster 0 18446744073709551615\r\n";
        assert!(parse_config_reply(huge).is_err());
        assert!(parse_config_reply(b"CONFIG cluster x 3\r\n").is_err());
        for bad in [
            &b"x\nh|i|1\n"[..],
            b"1\nh|i\n",
            b"1\nh|i|99999\n",
            b"1\n|i|1\n",
            b"\xff",
        ] {
            assert!(parse_cluster_config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_and_empty_lists_come_through() {
        let Ok(ParsedReply::Complete { reply, consumed: 7 }) = parse_config_reply(b"ERROR\r\n")
        else {
            panic!();
        };
        assert!(matches!(reply, ConfigReply::Other(Reply::Error(_))));
        assert_eq!(parse_cluster_config(b"3\n\n").unwrap().nodes, vec![]);
    }

    #[test]
    fn request_bytes() {
        let mut out = Vec::new();
        encode_config_get(&mut out, b"cluster").unwrap();
        assert_eq!(out, b"config get cluster\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Keys;

    fn encoded(request: &Request<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(&mut out, request).unwrap();
        out
    }

    fn complete(buf: &[u8]) -> (Reply<'_>, usize) {
        match parse_reply(buf).unwrap() {
            ParsedReply::Complete { reply, consumed } => (reply, consumed),
            ParsedReply::Incomplete { needed } => panic!("incomplete, needs {needed}"),
        }
    }

    #[test]
    fn retrievals_encode_as_memcached_reads_them() {
        let mut out = Vec::new();
        encode_get(&mut out, GetKind::Get, 0, [b"a".as_slice()]).unwrap();
        encode_get(&mut out, GetKind::Gets, 0, [b"a".as_slice(), b"bb"]).unwrap();
        encode_get(&mut out, GetKind::Gat, 30, [b"a".as_slice()]).unwrap();
        encode_get(&mut out, GetKind::Gats, -1, [b"a".as_slice(), b"b"]).unwrap();
        assert_eq!(
            out,
            b"get a\r\ngets a bb\r\ngat 30 a\r\ngats -1 a b\r\n".as_slice()
        );
    }

    #[test]
    fn storage_commands_carry_their_data_block() {
        let mut store = Store::set(b"k", b"hello");
        let mut out = Vec::new();
        encode_store(&mut out, &store).unwrap();
        assert_eq!(out, b"set k 0 0 5\r\nhello\r\n");
        store.command = StoreCommand::Cas;
        store.cas = 99;
        store.flags = 7;
        store.exptime = 100;
        store.noreply = true;
        out.clear();
        encode_store(&mut out, &store).unwrap();
        assert_eq!(out, b"cas k 7 100 5 99 noreply\r\nhello\r\n");
        for (command, word) in [
            (StoreCommand::Add, "add"),
            (StoreCommand::Replace, "replace"),
            (StoreCommand::Append, "append"),
            (StoreCommand::Prepend, "prepend"),
        ] {
            out.clear();
            let request = Store {
                command,
                ..Store::set(b"k", b"")
            };
            encode_store(&mut out, &request).unwrap();
            assert_eq!(out, format!("{word} k 0 0 0\r\n\r\n").as_bytes());
        }
    }

    #[test]
    fn other_text_commands() {
        let cases: [(Request<'_>, &[u8]); 12] = [
            (
                Request::Delete {
                    key: b"k",
                    noreply: true,
                },
                b"delete k noreply\r\n",
            ),
            (
                Request::Arith {
                    incr: true,
                    key: b"n",
                    delta: 18446744073709551615,
                    noreply: false,
                },
                b"incr n 18446744073709551615\r\n",
            ),
            (
                Request::Arith {
                    incr: false,
                    key: b"n",
                    delta: 2,
                    noreply: true,
                },
                b"decr n 2 noreply\r\n",
            ),
            (
                Request::Touch {
                    key: b"k",
                    exptime: 10,
                    noreply: false,
                },
                b"touch k 10\r\n",
            ),
            (
                Request::FlushAll {
                    delay: 0,
                    noreply: false,
                },
                b"flush_all\r\n",
            ),
            (
                Request::FlushAll {
                    delay: 5,
                    noreply: true,
                },
                b"flush_all 5 noreply\r\n",
            ),
            (Request::Version, b"version\r\n"),
            (Request::Stats(StatsGroup::General), b"stats\r\n"),
            (Request::Stats(StatsGroup::Slabs), b"stats slabs\r\n"),
            (Request::Stats(StatsGroup::Reset), b"stats reset\r\n"),
            (Request::MetaNoop, b"mn\r\n"),
            (
                Request::Get {
                    kind: GetKind::Get,
                    exptime: 0,
                    keys: Keys::new(b"x y"),
                },
                b"get x y\r\n",
            ),
        ];
        for (request, bytes) in cases {
            assert_eq!(
                encoded(&request),
                bytes,
                "{request:?} as {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn meta_commands_write_flags_verbatim() {
        let mut out = Vec::new();
        encode_meta(&mut out, MetaCommand::Get, b"k", false, b"v c f t", b"").unwrap();
        encode_meta(&mut out, MetaCommand::Delete, b"k", false, b"q", b"").unwrap();
        encode_meta(&mut out, MetaCommand::Arith, b"n", false, b"D5 MD", b"").unwrap();
        encode_meta(&mut out, MetaCommand::Get, b"k", false, b"", b"").unwrap();
        encode_meta(&mut out, MetaCommand::Set, b"k", false, b"T60 F3", b"abc").unwrap();
        encode_meta(&mut out, MetaCommand::Set, b"\x00\xff", true, b"b", b"").unwrap();
        assert_eq!(
            out,
            b"mg k v c f t\r\nmd k q\r\nma n D5 MD\r\nmg k\r\nms k 3 T60 F3\r\nabc\r\nms AP8= 0 b\r\n\r\n"
                .as_slice()
        );
    }

    #[test]
    fn bad_keys_are_refused_and_nothing_is_written() {
        let mut out = b"get ok\r\n".to_vec();
        let long = [b'x'; 251];
        assert_eq!(
            encode_get(&mut out, GetKind::Get, 0, [b"a".as_slice(), b"b c"]),
            Err(EncodeError::KeyHasInvalidByte(1))
        );
        assert_eq!(
            encode_get(&mut out, GetKind::Get, 0, [long.as_slice()]),
            Err(EncodeError::KeyTooLong(251))
        );
        assert_eq!(
            encode_delete(&mut out, b"", false),
            Err(EncodeError::EmptyKey)
        );
        assert_eq!(
            encode_store(&mut out, &Store::set(b"a\r\nflush_all", b"")),
            Err(EncodeError::KeyHasInvalidByte(1))
        );
        assert_eq!(
            encode_get(&mut out, GetKind::Get, 0, std::iter::empty()),
            Err(EncodeError::NoKeys)
        );
        assert_eq!(
            encode_meta(&mut out, MetaCommand::Get, b"k", false, b"v\r\n", b""),
            Err(EncodeError::BadMetaFlags)
        );
        assert!(encode_get(&mut out, GetKind::Get, 0, [[b'k'; 250].as_slice()]).is_ok());
        assert!(out.starts_with(b"get ok\r\nget kkk"));
        assert_eq!(out.len(), 8 + 4 + 250 + 2);
    }

    #[test]
    fn status_lines_parse() {
        let cases: [(&[u8], Reply<'_>); 17] = [
            (b"END\r\n", Reply::End),
            (b"STORED\r\n", Reply::Stored),
            (b"NOT_STORED\r\n", Reply::NotStored),
            (b"EXISTS\r\n", Reply::Exists),
            (b"NOT_FOUND\r\n", Reply::NotFound),
            (b"DELETED\r\n", Reply::Deleted),
            (b"TOUCHED\r\n", Reply::Touched),
            (b"OK\r\n", Reply::Ok),
            (b"RESET\r\n", Reply::Reset),
            (b"42\r\n", Reply::Number(42)),
            (b"VERSION 1.6.18\r\n", Reply::Version(b"1.6.18")),
            (b"ERROR\r\n", Reply::Error(b"")),
            (
                b"ERROR: shutdown not enabled\r\n",
                Reply::Error(b"shutdown not enabled"),
            ),
            (
                b"CLIENT_ERROR bad data chunk\r\n",
                Reply::ClientError(b"bad data chunk"),
            ),
            (
                b"SERVER_ERROR out of memory storing object\r\n",
                Reply::ServerError(b"out of memory storing object"),
            ),
            (
                b"STAT libevent 2.1.12-stable\r\n",
                Reply::Stat {
                    name: b"libevent",
                    value: b"2.1.12-stable",
                },
            ),
            (b"MN\r\n", Reply::MetaNoop),
        ];
        for (bytes, expected) in cases {
            assert_eq!(complete(bytes), (expected, bytes.len()), "{bytes:?}");
        }
    }

    #[test]
    fn values_parse_one_by_one_and_wait_for_their_data() {
        let reply = b"VALUE k 5 3 77\r\nabc\r\nVALUE other 0 0\r\n\r\nEND\r\n";
        let (first, used) = complete(reply);
        assert_eq!(
            first,
            Reply::Value {
                key: b"k",
                flags: 5,
                cas: Some(77),
                data: b"abc"
            }
        );
        let (second, used2) = complete(&reply[used..]);
        assert_eq!(
            second,
            Reply::Value {
                key: b"other",
                flags: 0,
                cas: None,
                data: b""
            }
        );
        assert_eq!(complete(&reply[used + used2..]).0, Reply::End);
        // Every strict prefix of the first value is incomplete, and says how much it needs.
        for cut in 0..used {
            match parse_reply(&reply[..cut]).unwrap() {
                ParsedReply::Incomplete { needed } => assert!(needed > cut),
                complete => panic!("prefix of {cut} bytes gave {complete:?}"),
            }
        }
        assert_eq!(
            parse_reply(b"VALUE k 0 1000\r\nab").unwrap(),
            ParsedReply::Incomplete {
                needed: 16 + 1000 + 2
            }
        );
    }

    #[test]
    fn whole_get_replies_parse_at_once() {
        let reply = b"VALUE a 1 1\r\nx\r\nVALUE b 2 2\r\nyy\r\nEND\r\nSTORED\r\n";
        let ParsedReply::Complete {
            reply: get,
            consumed,
        } = parse_get_reply(reply).unwrap()
        else {
            panic!("incomplete")
        };
        assert_eq!(consumed, reply.len() - b"STORED\r\n".len());
        let values: Vec<_> = get.values().map(|v| (v.key, v.flags, v.data)).collect();
        assert_eq!(
            values,
            [(b"a".as_slice(), 1, b"x".as_slice()), (b"b", 2, b"yy")]
        );
        assert!(matches!(get, GetReply::Values { count: 2, .. }));
        assert!(matches!(
            parse_get_reply(&reply[..30]).unwrap(),
            ParsedReply::Incomplete { .. }
        ));
        let miss = parse_get_reply(b"END\r\n").unwrap();
        assert!(matches!(
            miss,
            ParsedReply::Complete {
                reply: GetReply::Values { count: 0, .. },
                consumed: 5
            }
        ));
        let failed = parse_get_reply(b"SERVER_ERROR out of memory\r\n").unwrap();
        assert!(matches!(
            failed,
            ParsedReply::Complete {
                reply: GetReply::Failed(Reply::ServerError(b"out of memory")),
                ..
            }
        ));
    }

    #[test]
    fn meta_replies_parse_with_flags_and_values() {
        let (reply, used) = complete(b"VA 3 c12 f5 t-1 Oab\r\nxyz\r\n");
        assert_eq!(used, 26);
        let Reply::Meta(meta) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(meta.status, MetaStatus::Value { len: 3 });
        assert_eq!(meta.value, b"xyz");
        assert_eq!(meta.flags.cas(), Some(12));
        assert_eq!(meta.flags.client_flags(), Some(5));
        assert_eq!(meta.flags.ttl(), Some(-1));
        assert_eq!(meta.flags.opaque(), Some(b"ab".as_slice()));
        assert!(!meta.flags.has(b'W'));
        for (line, status) in [
            (b"HD W\r\n".as_slice(), MetaStatus::Done),
            (b"EN\r\n", MetaStatus::Miss),
            (b"NS\r\n", MetaStatus::NotStored),
            (b"EX\r\n", MetaStatus::Exists),
            (b"NF\r\n", MetaStatus::NotFound),
        ] {
            let (Reply::Meta(meta), _) = complete(line) else {
                panic!("{line:?}")
            };
            assert_eq!(meta.status, status);
        }
        assert_eq!(
            complete(b"ME k exp=-1 la=2 cas=3 fetch=no cls=1 size=63\r\n").0,
            Reply::MetaDebug(b"k exp=-1 la=2 cas=3 fetch=no cls=1 size=63")
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        assert!(matches!(
            parse_reply(b"HELLO\r\n"),
            Err(ReplyError::UnknownReply(_))
        ));
        assert_eq!(
            parse_reply(b"VALUE k x 1\r\na\r\n"),
            Err(ReplyError::Malformed("VALUE"))
        );
        assert_eq!(
            parse_reply(b"VALUE k 0 1\r\nabc"),
            Err(ReplyError::BadDataTerminator)
        );
        assert_eq!(
            parse_reply(b"99999999999999999999999\r\n"),
            Err(ReplyError::Malformed("number"))
        );
        assert_eq!(
            parse_reply(&vec![b'x'; MAX_REPLY_LINE + 1]),
            Err(ReplyError::LineTooLong)
        );
    }

    mod roundtrip {
        use super::*;
        use crate::{Parsed, ParserLimits, parse_request};
        use proptest::prelude::*;

        fn key() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(0x21u8..0x7f, 1..=250)
        }

        fn store_command() -> impl Strategy<Value = StoreCommand> {
            prop_oneof![
                Just(StoreCommand::Set),
                Just(StoreCommand::Add),
                Just(StoreCommand::Replace),
                Just(StoreCommand::Append),
                Just(StoreCommand::Prepend),
                Just(StoreCommand::Cas),
            ]
        }

        fn parses_back(request: &Request<'_>) {
            let bytes = encoded(request);
            match parse_request(&bytes, &ParserLimits::default()) {
                Parsed::Request {
                    request: parsed,
                    consumed,
                } => {
                    assert_eq!(&parsed, request);
                    assert_eq!(consumed, bytes.len());
                }
                other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(&bytes)),
            }
        }

        proptest! {
            #[test]
            fn encoded_requests_parse_back_to_themselves(
                command in store_command(),
                key in key(),
                flags: u32,
                exptime in -1_000i64..100_000_000,
                value in proptest::collection::vec(any::<u8>(), 0..300),
                cas: u64,
                noreply: bool,
                delta: u64,
                keys in proptest::collection::vec(key(), 1..20),
            ) {
                parses_back(&Request::Store {
                    command,
                    key: &key,
                    flags,
                    exptime,
                    value: &value,
                    cas: if command == StoreCommand::Cas { cas } else { 0 },
                    noreply,
                });
                parses_back(&Request::Delete { key: &key, noreply });
                parses_back(&Request::Arith { incr: noreply, key: &key, delta, noreply });
                parses_back(&Request::Touch { key: &key, exptime, noreply });
                let line = keys.join(&b' ');
                for kind in [GetKind::Get, GetKind::Gets, GetKind::Gat, GetKind::Gats] {
                    // get/gets carry no exptime; the parser reports 0 for them.
                    let exptime = if matches!(kind, GetKind::Gat | GetKind::Gats) { exptime } else { 0 };
                    parses_back(&Request::Get { kind, exptime, keys: Keys::new(&line) });
                }
            }

            #[test]
            fn server_replies_parse_back(
                key in key(),
                flags: u32,
                cas: Option<u64>,
                data in proptest::collection::vec(any::<u8>(), 0..2000),
                n: u64,
                cut in 0usize..4000,
            ) {
                let mut out = Vec::new();
                crate::reply::value(&mut out, &key, flags, cas, &data);
                out.extend_from_slice(crate::reply::END);
                crate::reply::number(&mut out, n);
                crate::reply::stat(&mut out, &key, b"some value");
                // Any prefix is incomplete or a complete first unit, never an error.
                let cut = cut.min(out.len());
                prop_assert!(parse_reply(&out[..cut]).is_ok());
                let mut rest = &out[..];
                let mut replies = Vec::new();
                while !rest.is_empty() {
                    let ParsedReply::Complete { reply, consumed } = parse_reply(rest).unwrap() else {
                        panic!("incomplete at {} bytes left", rest.len())
                    };
                    replies.push(reply);
                    rest = &rest[consumed..];
                }
                prop_assert_eq!(replies, vec![
                    Reply::Value { key: &key, flags, cas, data: &data },
                    Reply::End,
                    Reply::Number(n),
                    Reply::Stat { name: &key, value: b"some value" },
                ]);
            }
        }

        #[test]
        fn every_other_command_parses_back() {
            for request in [
                Request::FlushAll {
                    delay: 0,
                    noreply: false,
                },
                Request::FlushAll {
                    delay: 30,
                    noreply: true,
                },
                Request::Version,
                Request::Verbosity {
                    level: 1,
                    noreply: true,
                },
                Request::Quit,
                Request::RefreshCerts { noreply: false },
                Request::RefreshCerts { noreply: true },
                Request::MetaNoop,
                Request::Stats(StatsGroup::General),
                Request::Stats(StatsGroup::Settings),
                Request::Stats(StatsGroup::Items),
                Request::Stats(StatsGroup::Slabs),
                Request::Stats(StatsGroup::Sizes),
                Request::Stats(StatsGroup::Conns),
                Request::Stats(StatsGroup::Latency),
                Request::Stats(StatsGroup::Reset),
            ] {
                parses_back(&request);
            }
        }

        #[test]
        fn meta_commands_parse_back_with_their_flags() {
            // (command, key, base64, flags, value)
            type Case = (
                MetaCommand,
                &'static [u8],
                bool,
                &'static [u8],
                &'static [u8],
            );
            let cases: [Case; 6] = [
                (MetaCommand::Get, b"k", false, b"v c f t k Oab", b""),
                (MetaCommand::Get, b"k", false, b"", b""),
                (MetaCommand::Set, b"k", false, b"T60 F3 c", b"some data"),
                (MetaCommand::Set, b"\x00bin\xff", true, b"b", b"v"),
                (MetaCommand::Delete, b"k", false, b"q", b""),
                (MetaCommand::Arith, b"n", false, b"D5 MD N0 J10 v", b""),
            ];
            for (command, key, base64, flags, value) in cases {
                let mut bytes = Vec::new();
                encode_meta(&mut bytes, command, key, base64, flags, value).unwrap();
                let Parsed::Request { request, consumed } =
                    parse_request(&bytes, &ParserLimits::default())
                else {
                    panic!("{:?} did not parse", String::from_utf8_lossy(&bytes))
                };
                assert_eq!(consumed, bytes.len());
                let (parsed_key, parsed_flags, parsed_value) = match request {
                    Request::MetaGet { key, flags } if command == MetaCommand::Get => {
                        (key, flags, &[][..])
                    }
                    Request::MetaSet { key, flags, value } if command == MetaCommand::Set => {
                        (key, flags, value)
                    }
                    Request::MetaDelete { key, flags } if command == MetaCommand::Delete => {
                        (key, flags, &[][..])
                    }
                    Request::MetaArith { key, flags } if command == MetaCommand::Arith => {
                        (key, flags, &[][..])
                    }
                    other => panic!("{command:?} parsed as {other:?}"),
                };
                assert_eq!(parsed_key.bytes(), key);
                assert_eq!(parsed_key.is_base64(), base64);
                assert_eq!(parsed_flags.tokens, flags);
                assert_eq!(parsed_value, value);
                // And the request encodes back to the same bytes.
                assert_eq!(encoded(&request), bytes);
            }
        }
    }
}
