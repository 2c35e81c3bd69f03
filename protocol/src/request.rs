//! Requests as the server receives them: every text-protocol and meta command, with keys and
//! values borrowed from the input buffer.
//!
//! Owns: the request types and their small helpers. Must not touch: parsing (`parse`),
//! replies (`reply`), storage semantics.

use crate::error::ProtocolError;
use crate::meta::MetaFlags;

/// Longest key memcached accepts, in bytes.
pub const KEY_MAX_LEN: usize = 250;

/// A key as the client sent it, or decoded from base64 (meta `b` flag) into inline storage, so
/// that neither case allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Borrowed(&'a [u8]),
    /// A base64 key decoded: at most 187 bytes (250 base64 characters).
    Decoded {
        bytes: [u8; 188],
        len: u8,
    },
}

impl<'a> Key<'a> {
    /// The key's bytes (decoded, for a base64 key).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Key::Borrowed(bytes) => bytes,
            Key::Decoded { bytes, len } => &bytes[..usize::from(*len)],
        }
    }

    /// Whether the client sent the key in base64 (replies echo it in base64 with `b`).
    pub fn is_base64(&self) -> bool {
        matches!(self, Key::Decoded { .. })
    }
}

impl std::fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", String::from_utf8_lossy(self.bytes()))
    }
}

/// The keys of a multi-key retrieval (`get a b c`): the validated rest of the command line,
/// split lazily so a 10,000-key get allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a> {
    /// Space-separated keys, each 1..=250 bytes (checked by the parser).
    line: &'a [u8],
}

impl<'a> Keys<'a> {
    /// Keys from a space-separated list. The parser checks every key before building this.
    pub fn new(line: &'a [u8]) -> Self {
        Keys { line }
    }

    /// The keys in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.line.split(|&b| b == b' ').filter(|k| !k.is_empty())
    }

    /// How many keys (counts; does not allocate).
    pub fn count(&self) -> usize {
        self.iter().count()
    }
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// The retrieval commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetKind {
    Get,
    /// Replies carry the CAS unique.
    Gets,
    /// Get and touch.
    Gat,
    /// Get and touch, with CAS.
    Gats,
}

impl GetKind {
    /// Whether `VALUE` lines carry the CAS unique.
    pub fn with_cas(self) -> bool {
        matches!(self, GetKind::Gets | GetKind::Gats)
    }
}

/// The text storage commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// `cas`: the request's `cas` field holds the unique to compare.
    Cas,
}

/// `stats` and its sub-commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup<'a> {
    /// Plain `stats`.
    General,
    Settings,
    Items,
    Slabs,
    Sizes,
    Conns,
    /// `stats latency`: ferrocached's latency percentiles per command family (memcached has
    /// no such group and answers `ERROR`).
    Latency,
    /// `stats reset` (answers `RESET`).
    Reset,
    /// `stats detail on|off|dump`; `None` when the argument is missing or none of those (the
    /// server answers memcached's usage line).
    Detail(Option<DetailAction>),
    /// `stats cachedump <class> <limit>`, or the error memcached gives its arguments (a server
    /// with dumping disabled refuses before looking at them).
    Cachedump(Result<(u32, u32), ProtocolError>),
    /// `stats sizes_enable` / `stats sizes_disable`.
    SizesEnable,
    SizesDisable,
    /// Any other sub-command (`stats noreply`, `stats extstore`, ...): its name; memcached
    /// answers `ERROR`.
    Other(&'a [u8]),
}

/// The log streams a `watch` asks for (memcached's `LOG_*` bits; `fetchers` when none is
/// named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchStreams(u16);

impl WatchStreams {
    pub const SYSEVENTS: WatchStreams = WatchStreams(1 << 1);
    pub const FETCHERS: WatchStreams = WatchStreams(1 << 2);
    pub const MUTATIONS: WatchStreams = WatchStreams(1 << 3);
    pub const CONNEVENTS: WatchStreams = WatchStreams(1 << 5);
    pub const EVICTIONS: WatchStreams = WatchStreams(1 << 6);
    pub const RAWCMDS: WatchStreams = WatchStreams(1 << 9);
    pub const PROXYREQS: WatchStreams = WatchStreams(1 << 10);
    pub const PROXYEVENTS: WatchStreams = WatchStreams(1 << 11);
    pub const PROXYUSER: WatchStreams = WatchStreams(1 << 12);

    /// The stream a `watch` argument names, as memcached spells it.
    pub fn named(name: &[u8]) -> Option<WatchStreams> {
        Some(match name {
            b"rawcmds" => Self::RAWCMDS,
            b"evictions" => Self::EVICTIONS,
            b"fetchers" => Self::FETCHERS,
            b"mutations" => Self::MUTATIONS,
            b"sysevents" => Self::SYSEVENTS,
            b"connevents" => Self::CONNEVENTS,
            b"proxyreqs" => Self::PROXYREQS,
            b"proxyevents" => Self::PROXYEVENTS,
            b"proxyuser" => Self::PROXYUSER,
            _ => return None,
        })
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn from_bits(bits: u16) -> Self {
        WatchStreams(bits)
    }

    pub fn contains(self, other: WatchStreams) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn intersects(self, other: WatchStreams) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for WatchStreams {
    type Output = WatchStreams;

    fn bitor(self, other: WatchStreams) -> WatchStreams {
        WatchStreams(self.0 | other.0)
    }
}

/// The argument of `stats detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailAction {
    On,
    Off,
    Dump,
}

/// Which items `lru_crawler crawl|metadump` walks (memcached's argument: `all`, `hash`, or
/// class ids separated by commas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlTarget {
    /// `all`: every class.
    All,
    /// `hash`: every item, found through the hash table (memcached allows it for metadump
    /// only).
    Hash,
    /// Class ids as a bit set (bit `id`, ids 1..=63); empty when the list named none (`,`).
    Classes(u64),
    /// An id that is not a number or not a class (memcached answers `BADCLASS`, but only
    /// after its checks of whether the crawler runs and dumping is allowed).
    BadClass,
}

/// `lru_crawler <subcommand> ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LruCrawlerCommand {
    /// `lru_crawler crawl <classes>`: reclaim the expired items of those classes.
    Crawl(CrawlTarget),
    /// `lru_crawler metadump <classes>`: one line of metadata per live item, then `END`.
    Metadump(CrawlTarget),
    /// `lru_crawler tocrawl <n>`.
    Tocrawl(u32),
    /// `lru_crawler sleep <microseconds>`.
    Sleep(u32),
    /// `lru_crawler enable`.
    Enable,
    /// `lru_crawler disable`.
    Disable,
}

/// `slabs automove ratio <r>`'s ratio, kept as its bits so that requests compare as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomoveRatio(u64);

impl AutomoveRatio {
    pub fn new(ratio: f64) -> Self {
        AutomoveRatio(ratio.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// `slabs <subcommand> ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlabsCommand {
    /// `slabs reassign <src> <dst>`: memcached's class ids as given (1-based; 0 is the global
    /// page pool, a `src` of -1 means any class with a page to spare). Never `noreply`.
    Reassign { src: i32, dst: i32 },
    /// `slabs automove <0|1|2> [noreply]`.
    Automove { level: u8, noreply: bool },
    /// `slabs automove ratio <r> [noreply]`.
    Ratio { ratio: AutomoveRatio, noreply: bool },
}

/// One request from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get|gets <key>+`, `gat|gats <exptime> <key>*` (memcached answers a keyless
    /// `gat <exptime>` with a bare `END`, so `keys` may be empty for gat/gats).
    Get {
        kind: GetKind,
        /// The new exptime for `gat`/`gats` (0 for `get`/`gets`).
        exptime: i64,
        keys: Keys<'a>,
    },
    /// `set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]` and
    /// `cas <key> <flags> <exptime> <bytes> <cas> [noreply]`, with the data block.
    Store {
        command: StoreCommand,
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        /// The data block, without its trailing `\r\n`.
        value: &'a [u8],
        /// The unique to compare (`cas` only; 0 otherwise).
        cas: u64,
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete { key: &'a [u8], noreply: bool },
    /// `incr|decr <key> <delta> [noreply]`.
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]` (delay 0 when absent).
    FlushAll { delay: i64, noreply: bool },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity { level: u32, noreply: bool },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `shutdown [graceful]`.
    Shutdown { graceful: bool },
    /// `cache_memlimit <megabytes> [noreply]`.
    CacheMemlimit { megabytes: u64, noreply: bool },
    /// `stats [group]`.
    Stats(StatsGroup<'a>),
    /// `lru_crawler ...`.
    LruCrawler(LruCrawlerCommand),
    /// `slabs reassign|automove ...`.
    Slabs(SlabsCommand),
    /// `watch [stream ...]`: the connection becomes a log watcher.
    Watch(WatchStreams),
    /// ElastiCache's `config get <key>` (only with [`crate::ParserLimits::config_commands`]).
    ConfigGet { key: &'a [u8] },
    /// ElastiCache's `config set <key> <flags> <bytes> [noreply]`, with the data block.
    ConfigSet {
        key: &'a [u8],
        flags: u32,
        value: &'a [u8],
        noreply: bool,
    },
    /// ElastiCache's `config delete <key> [noreply]`.
    ConfigDelete { key: &'a [u8], noreply: bool },
    /// `refresh_certs [noreply]`: re-read the TLS certificates and keys (`noreply` hides the
    /// `OK`, not an error, as on 1.6.18).
    RefreshCerts { noreply: bool },
    /// `mg <key> <flags>*`.
    MetaGet { key: Key<'a>, flags: MetaFlags<'a> },
    /// `ms <key> <datalen> <flags>*`, with the data block.
    MetaSet {
        key: Key<'a>,
        value: &'a [u8],
        flags: MetaFlags<'a>,
    },
    /// `md <key> <flags>*`.
    MetaDelete { key: Key<'a>, flags: MetaFlags<'a> },
    /// `ma <key> <flags>*`.
    MetaArith { key: Key<'a>, flags: MetaFlags<'a> },
    /// `mn`: answers `MN`.
    MetaNoop,
    /// `me <key> [b]`: debug information about an item.
    MetaDebug { key: Key<'a>, base64: bool },
}

impl Request<'_> {
    /// Whether the client asked for no reply on success (text `noreply`; meta `q` is per
    /// outcome, see [`MetaFlags::quiet`]).
    pub fn noreply(&self) -> bool {
        match self {
            Request::Store { noreply, .. }
            | Request::Delete { noreply, .. }
            | Request::Arith { noreply, .. }
            | Request::Touch { noreply, .. }
            | Request::FlushAll { noreply, .. }
            | Request::Verbosity { noreply, .. }
            | Request::CacheMemlimit { noreply, .. }
            | Request::RefreshCerts { noreply }
            | Request::Slabs(
                SlabsCommand::Automove { noreply, .. } | SlabsCommand::Ratio { noreply, .. },
            ) => *noreply,
            _ => false,
        }
    }
}
