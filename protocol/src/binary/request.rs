//! Binary requests as the server receives them: the header's fields, and one command per
//! opcode family with its extras decoded and its key and value borrowed from the input.
//!
//! Owns: the request types, the refusal type, and the classification of a `stat` group as
//! memcached 1.6.18 reads it. Must not touch: framing (`parse`), response bytes (`response`).

use super::header::{NO_CREATE, Opcode, Status};
use super::response::Echo;

/// One binary request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryRequest<'a> {
    /// As sent: the response echoes it, quiet and `K` variants included.
    pub opcode: Opcode,
    /// Echoed in the response, byte for byte.
    pub opaque: u32,
    /// The CAS to compare (0: none). Set/add/replace/append/prepend/delete/incr/decr honour it.
    pub cas: u64,
    /// memcached ignores it (only raw bytes exist).
    pub data_type: u8,
    /// memcached ignores it.
    pub vbucket: u16,
    pub command: BinaryCommand<'a>,
}

impl<'a> BinaryRequest<'a> {
    /// A quiet variant: success goes unanswered (see [`Opcode::response_sent`]).
    pub fn quiet(&self) -> bool {
        self.opcode.is_quiet()
    }

    /// A `K` variant (getk, getkq, gatk, gatkq): responses carry the key.
    pub fn returns_key(&self) -> bool {
        self.opcode.returns_key()
    }

    /// What every response to this request echoes.
    pub fn echo(&self) -> Echo {
        Echo {
            opcode: self.opcode,
            opaque: self.opaque,
        }
    }

    /// The key (the mechanism for SASL, the group for stat; empty for keyless commands).
    pub fn key(&self) -> &'a [u8] {
        match self.command {
            BinaryCommand::Get { key, .. }
            | BinaryCommand::Touch { key, .. }
            | BinaryCommand::Store { key, .. }
            | BinaryCommand::Concat { key, .. }
            | BinaryCommand::Delete { key }
            | BinaryCommand::Arith { key, .. } => key,
            BinaryCommand::Stat { group } => group,
            BinaryCommand::SaslAuth { mechanism, .. }
            | BinaryCommand::SaslStep { mechanism, .. } => mechanism,
            BinaryCommand::Quit
            | BinaryCommand::Flush { .. }
            | BinaryCommand::Noop
            | BinaryCommand::Version
            | BinaryCommand::SaslListMechs => &[],
        }
    }
}

/// set, add or replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
}

/// append or prepend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcatMode {
    Append,
    Prepend,
}

/// What a request asks, per opcode family. Exptimes are memcached's unsigned 32-bit ones
/// (relative up to 30 days, else absolute; never negative, unlike the text protocol's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryCommand<'a> {
    /// get, getq, getk, getkq (`touch: None`) and gat, gatq, gatk, gatkq (`touch: Some(exptime)`).
    Get {
        key: &'a [u8],
        touch: Option<u32>,
    },
    /// touch: answered with the flags only.
    Touch {
        key: &'a [u8],
        exptime: u32,
    },
    /// set, add, replace (and quiet forms); a non-zero request CAS makes any of them a CAS
    /// store.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: u32,
        value: &'a [u8],
    },
    /// append, prepend (and quiet forms).
    Concat {
        mode: ConcatMode,
        key: &'a [u8],
        value: &'a [u8],
    },
    /// delete (and deleteq).
    Delete {
        key: &'a [u8],
    },
    /// increment, decrement (and quiet forms).
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
        /// The value a missing counter is created with (unless `exptime` is [`NO_CREATE`]).
        initial: u64,
        exptime: u32,
    },
    /// quit, quitq: answer (unless quiet), then close.
    Quit,
    /// flush, flushq; `delay` 0 when the request had no extras.
    Flush {
        delay: u32,
    },
    Noop,
    Version,
    /// stat: `group` is the key (empty for all statistics); see [`StatGroup::of`].
    Stat {
        group: &'a [u8],
    },
    SaslListMechs,
    SaslAuth {
        mechanism: &'a [u8],
        data: &'a [u8],
    },
    SaslStep {
        mechanism: &'a [u8],
        data: &'a [u8],
    },
}

impl BinaryCommand<'_> {
    /// incr/decr: whether a miss creates the counter.
    pub fn creates_missing(&self) -> bool {
        matches!(self, BinaryCommand::Arith { exptime, .. } if *exptime != NO_CREATE)
    }
}

/// A `stat` group as memcached 1.6.18's `process_bin_stat` tells them apart: `reset`,
/// `settings` and `detail` by prefix (so `resetall` resets), the others by exact name, and
/// `conns` is not one of them in the binary protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatGroup<'a> {
    /// Empty key: general statistics.
    All,
    Reset,
    Settings,
    /// `detail dump`: one `detailed` pair holding the dump.
    DetailDump,
    DetailOn,
    DetailOff,
    Items,
    Slabs,
    Sizes,
    SizesEnable,
    SizesDisable,
    /// Anything else (`detail` with another argument included): "Not found".
    Unknown(&'a [u8]),
}

impl<'a> StatGroup<'a> {
    pub fn of(group: &'a [u8]) -> StatGroup<'a> {
        if group.is_empty() {
            return StatGroup::All;
        }
        if group.starts_with(b"reset") {
            return StatGroup::Reset;
        }
        if group.starts_with(b"settings") {
            return StatGroup::Settings;
        }
        if let Some(argument) = group.strip_prefix(b"detail") {
            return if argument.starts_with(b" dump") {
                StatGroup::DetailDump
            } else if argument.starts_with(b" on") {
                StatGroup::DetailOn
            } else if argument.starts_with(b" off") {
                StatGroup::DetailOff
            } else {
                StatGroup::Unknown(group)
            };
        }
        match group {
            b"items" => StatGroup::Items,
            b"slabs" => StatGroup::Slabs,
            b"sizes" => StatGroup::Sizes,
            b"sizes_enable" => StatGroup::SizesEnable,
            b"sizes_disable" => StatGroup::SizesDisable,
            _ => StatGroup::Unknown(group),
        }
    }
}

/// Why a frame was refused, each with memcached 1.6.18's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryErrorKind {
    /// The first byte is not 0x80: memcached closes without a response.
    BadMagic,
    /// Key and extras longer than the body: "Unknown command", then close.
    BodyTooShort,
    /// A key over 250 bytes (any opcode): "Invalid arguments", then close.
    KeyTooLong,
    /// Extras, key or body length wrong for the opcode: "Invalid arguments", then close.
    InvalidArguments,
    /// An opcode memcached does not serve (verbosity included), or SASL data over the value
    /// limit: "Unknown command", without closing.
    UnknownCommand,
    /// A value over the item size limit: "Too large.", and the value is swallowed.
    TooLarge,
}

impl BinaryErrorKind {
    /// The response status, `None` when memcached sends nothing.
    pub fn status(self) -> Option<Status> {
        match self {
            BinaryErrorKind::BadMagic => None,
            BinaryErrorKind::BodyTooShort | BinaryErrorKind::UnknownCommand => {
                Some(Status::UnknownCommand)
            }
            BinaryErrorKind::KeyTooLong | BinaryErrorKind::InvalidArguments => {
                Some(Status::InvalidArguments)
            }
            BinaryErrorKind::TooLarge => Some(Status::TooLarge),
        }
    }

    /// Whether memcached closes the connection (after the response, if any).
    pub fn closes(self) -> bool {
        matches!(
            self,
            BinaryErrorKind::BadMagic
                | BinaryErrorKind::BodyTooShort
                | BinaryErrorKind::KeyTooLong
                | BinaryErrorKind::InvalidArguments
        )
    }
}

/// A refused frame: what to answer, and what the executor may still need of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryError<'a> {
    pub kind: BinaryErrorKind,
    /// The opcode as sent (echoed by the response).
    pub opcode: Opcode,
    pub opaque: u32,
    /// The frame's key bytes (empty for `BadMagic`). A refused `Set`/`SetQ` (`TooLarge`) must
    /// unlink the item stored under it, as memcached does so that a stale value does not
    /// outlive a failed overwrite.
    pub key: &'a [u8],
}

impl BinaryError<'_> {
    pub fn echo(&self) -> Echo {
        Echo {
            opcode: self.opcode,
            opaque: self.opaque,
        }
    }

    /// Writes memcached's response to this error; false (nothing written) for `BadMagic`.
    pub fn write_response(&self, out: &mut Vec<u8>) -> bool {
        match self.kind.status() {
            Some(status) => {
                super::response::error(out, self.echo(), status);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_groups_follow_memcached_prefix_rules() {
        assert_eq!(StatGroup::of(b""), StatGroup::All);
        assert_eq!(StatGroup::of(b"resetall"), StatGroup::Reset);
        assert_eq!(StatGroup::of(b"settingsx"), StatGroup::Settings);
        assert_eq!(StatGroup::of(b"detail dump"), StatGroup::DetailDump);
        assert_eq!(StatGroup::of(b"detail onward"), StatGroup::DetailOn);
        assert_eq!(StatGroup::of(b"detail off"), StatGroup::DetailOff);
        assert_eq!(StatGroup::of(b"detail"), StatGroup::Unknown(b"detail"));
        assert_eq!(StatGroup::of(b"items"), StatGroup::Items);
        assert_eq!(StatGroup::of(b"itemsx"), StatGroup::Unknown(b"itemsx"));
        assert_eq!(StatGroup::of(b"sizes_enable"), StatGroup::SizesEnable);
        assert_eq!(StatGroup::of(b"conns"), StatGroup::Unknown(b"conns"));
    }
}
