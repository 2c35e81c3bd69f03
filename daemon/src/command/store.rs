//! Storage: `set`, `add`, `replace`, `append`, `prepend`, `cas`, meta `ms`, the binary set
//! family, and values refused as too large before they were read.
//!
//! Owns: turning each protocol's storage command into one engine request (including which
//! commands' failure drops the old item, which only the protocol command tells), and the
//! per-prefix set figures. Must not touch: the engine's semantics of each mode, or what a
//! failed store does to the old item (the storage crate's).

use super::Executor;
use super::watch::store_status;
use ferrocache_protocol::{MetaSetMode, StoreCommand};
use ferrocache_storage::{StoreError, StoreMode, StoreOutcome, StoreRequest};

/// Which protocol command a store is: memcached's rules differ by command, not only by mode
/// (a text `cas` is a set with a CAS, yet a failed `cas` keeps the old item and a failed `set`
/// does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Text(StoreCommand),
    Meta(MetaSetMode),
    /// Binary set/add/replace/append/prepend (quiet or not), by their text names.
    Binary(StoreCommand),
}

impl StoreKind {
    /// The engine's mode. A binary add with a CAS in its header is a CAS store, as memcached
    /// treats every binary store whose CAS is not 0.
    fn mode(self, compare_cas: Option<u64>) -> StoreMode {
        match self {
            StoreKind::Binary(StoreCommand::Add) if compare_cas.is_some() => StoreMode::Set,
            StoreKind::Text(command) | StoreKind::Binary(command) => match command {
                StoreCommand::Set | StoreCommand::Cas => StoreMode::Set,
                StoreCommand::Add => StoreMode::Add,
                StoreCommand::Replace => StoreMode::Replace,
                StoreCommand::Append => StoreMode::Append,
                StoreCommand::Prepend => StoreMode::Prepend,
            },
            StoreKind::Meta(mode) => match mode {
                MetaSetMode::Set => StoreMode::Set,
                MetaSetMode::Add => StoreMode::Add,
                MetaSetMode::Append => StoreMode::Append,
                MetaSetMode::Prepend => StoreMode::Prepend,
                MetaSetMode::Replace => StoreMode::Replace,
            },
        }
    }

    /// Whether a failure of this command drops the key's old item
    /// ([`StoreRequest::drop_old_on_failure`], where storage does it): for text and binary `set`
    /// (a binary set with a CAS is still a set) and for every `ms`, but not for a text `cas`
    /// (which the engine sees as a set with a CAS), `add`, `replace`, `append` or `prepend`.
    fn drops_old_on_failure(self) -> bool {
        matches!(
            self,
            StoreKind::Text(StoreCommand::Set)
                | StoreKind::Binary(StoreCommand::Set)
                | StoreKind::Meta(_)
        )
    }

    /// The command's name in a watcher's `item_store` line.
    fn name(self) -> &'static [u8] {
        match self.mode(None) {
            _ if self == StoreKind::Text(StoreCommand::Cas) => b"cas",
            StoreMode::Set => b"set",
            StoreMode::Add => b"add",
            StoreMode::Replace => b"replace",
            StoreMode::Append => b"append",
            StoreMode::Prepend => b"prepend",
        }
    }

    /// Classic text and binary stores count in `stats detail`; meta ones do not.
    fn counts_in_detail(self) -> bool {
        !matches!(self, StoreKind::Meta(_))
    }
}

/// One storage command, whatever protocol it came in.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    pub kind: StoreKind,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub exptime: i64,
    /// Store only if the item's CAS equals this (text `cas`, meta `C`, a binary header's CAS).
    pub compare_cas: Option<u64>,
    /// Meta `I`: a CAS older than the item's stores anyway, marking the item stale.
    pub invalidate: bool,
    /// Meta `N` in append/prepend mode: on a miss, create the item with this exptime.
    pub vivify_exptime: Option<i64>,
}

impl<'a> Store<'a> {
    /// A store with no CAS and no meta options.
    pub fn new(kind: StoreKind, key: &'a [u8], value: &'a [u8], flags: u32, exptime: i64) -> Self {
        Store {
            kind,
            key,
            value,
            flags,
            exptime,
            compare_cas: None,
            invalidate: false,
            vivify_exptime: None,
        }
    }
}

impl<'a> Store<'a> {
    /// The engine's request for this store of a key hashed to `hash`.
    fn request(&self, hash: u64) -> StoreRequest<'a> {
        let mut request = StoreRequest::new(
            hash,
            self.key,
            self.value,
            self.flags,
            self.exptime,
            self.kind.mode(self.compare_cas),
        );
        request.compare_cas = self.compare_cas;
        request.invalidate = self.invalidate;
        request.vivify_exptime = self.vivify_exptime;
        request.drop_old_on_failure = self.kind.drops_old_on_failure();
        request
    }
}

impl Executor<'_> {
    pub fn store(&self, store: &Store<'_>) -> Result<StoreOutcome, StoreError> {
        if store.kind.counts_in_detail() {
            self.shared.detail.record_set(store.key);
        }
        let (hash, mut partition) = self.shared.cache.lock_key(store.key);
        let watched = self.peek_for_watchers(&mut partition, hash, store.key);
        // A failure drops or keeps the old item in storage, by the request's rule.
        let result = partition.store(&store.request(hash));
        let class = self.stored_shape_for_watchers(&mut partition, hash, store.key);
        drop(partition);
        if let Some(found) = watched {
            self.log_get(store.key, found);
        }
        if let Some(class) = class {
            self.log_store(
                store.key,
                store.kind.name(),
                store_status(&result),
                store.exptime,
                class,
                store.value.len(),
            );
        }
        result
    }

    /// A store whose value the codec refused as over the item size limit, before reading it:
    /// what memcached does when the item cannot be allocated (storage's rule for a failed
    /// store; a `set` drops the old item, counting no delete).
    pub fn refuse_too_large(&self, kind: StoreKind, key: &[u8]) {
        if kind.counts_in_detail() {
            self.shared.detail.record_set(key);
        }
        // Only a kind that drops the old item on failure needs the partition at all.
        if kind.drops_old_on_failure() {
            let store = Store::new(kind, key, &[], 0, 0);
            let (hash, mut partition) = self.shared.cache.lock_key(key);
            partition.after_failed_store(&store.request(hash));
        }
        self.log_store(key, kind.name(), b"too_large", 0, 0, 0);
    }
}
