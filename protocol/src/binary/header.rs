//! The binary protocol's fixed vocabulary: the 24-byte header layout, opcodes and status codes
//! with memcached 1.6.18's numbers (`protocol_binary.h`) and error texts (`write_bin_error`).
//!
//! Owns: byte values, the quiet/key-returning classification of opcodes, and which responses a
//! quiet opcode still sends. Must not touch: parsing a stream or writing responses.

/// Magic byte of a request header.
pub const REQUEST_MAGIC: u8 = 0x80;
/// Magic byte of a response header.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Length of a request or response header.
pub const HEADER_LEN: usize = 24;
/// The incr/decr expiration that means "do not create a missing counter".
pub const NO_CREATE: u32 = 0xffff_ffff;

/// An opcode memcached 1.6 knows, or the raw byte of one it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    Get,
    Set,
    Add,
    Replace,
    Delete,
    Increment,
    Decrement,
    Quit,
    Flush,
    GetQ,
    Noop,
    Version,
    GetK,
    GetKQ,
    Append,
    Prepend,
    Stat,
    SetQ,
    AddQ,
    ReplaceQ,
    DeleteQ,
    IncrementQ,
    DecrementQ,
    QuitQ,
    FlushQ,
    AppendQ,
    PrependQ,
    /// 0x1b: in the binary protocol's specification, but memcached 1.6.18 no longer implements
    /// it and answers "Unknown command" (the server parser reports it so).
    Verbosity,
    Touch,
    Gat,
    GatQ,
    SaslListMechs,
    SaslAuth,
    SaslStep,
    GatK,
    GatKQ,
    /// Anything else, including the range opcodes 0x30..=0x3c that `protocol_binary.h` defines
    /// and memcached never implemented.
    Unknown(u8),
}

impl Opcode {
    /// The opcode of a header byte.
    pub fn from_byte(byte: u8) -> Opcode {
        match byte {
            0x00 => Opcode::Get,
            0x01 => Opcode::Set,
            0x02 => Opcode::Add,
            0x03 => Opcode::Replace,
            0x04 => Opcode::Delete,
            0x05 => Opcode::Increment,
            0x06 => Opcode::Decrement,
            0x07 => Opcode::Quit,
            0x08 => Opcode::Flush,
            0x09 => Opcode::GetQ,
            0x0a => Opcode::Noop,
            0x0b => Opcode::Version,
            0x0c => Opcode::GetK,
            0x0d => Opcode::GetKQ,
            0x0e => Opcode::Append,
            0x0f => Opcode::Prepend,
            0x10 => Opcode::Stat,
            0x11 => Opcode::SetQ,
            0x12 => Opcode::AddQ,
            0x13 => Opcode::ReplaceQ,
            0x14 => Opcode::DeleteQ,
            0x15 => Opcode::IncrementQ,
            0x16 => Opcode::DecrementQ,
            0x17 => Opcode::QuitQ,
            0x18 => Opcode::FlushQ,
            0x19 => Opcode::AppendQ,
            0x1a => Opcode::PrependQ,
            0x1b => Opcode::Verbosity,
            0x1c => Opcode::Touch,
            0x1d => Opcode::Gat,
            0x1e => Opcode::GatQ,
            0x20 => Opcode::SaslListMechs,
            0x21 => Opcode::SaslAuth,
            0x22 => Opcode::SaslStep,
            0x23 => Opcode::GatK,
            0x24 => Opcode::GatKQ,
            other => Opcode::Unknown(other),
        }
    }

    /// The header byte.
    pub fn byte(self) -> u8 {
        match self {
            Opcode::Get => 0x00,
            Opcode::Set => 0x01,
            Opcode::Add => 0x02,
            Opcode::Replace => 0x03,
            Opcode::Delete => 0x04,
            Opcode::Increment => 0x05,
            Opcode::Decrement => 0x06,
            Opcode::Quit => 0x07,
            Opcode::Flush => 0x08,
            Opcode::GetQ => 0x09,
            Opcode::Noop => 0x0a,
            Opcode::Version => 0x0b,
            Opcode::GetK => 0x0c,
            Opcode::GetKQ => 0x0d,
            Opcode::Append => 0x0e,
            Opcode::Prepend => 0x0f,
            Opcode::Stat => 0x10,
            Opcode::SetQ => 0x11,
            Opcode::AddQ => 0x12,
            Opcode::ReplaceQ => 0x13,
            Opcode::DeleteQ => 0x14,
            Opcode::IncrementQ => 0x15,
            Opcode::DecrementQ => 0x16,
            Opcode::QuitQ => 0x17,
            Opcode::FlushQ => 0x18,
            Opcode::AppendQ => 0x19,
            Opcode::PrependQ => 0x1a,
            Opcode::Verbosity => 0x1b,
            Opcode::Touch => 0x1c,
            Opcode::Gat => 0x1d,
            Opcode::GatQ => 0x1e,
            Opcode::SaslListMechs => 0x20,
            Opcode::SaslAuth => 0x21,
            Opcode::SaslStep => 0x22,
            Opcode::GatK => 0x23,
            Opcode::GatKQ => 0x24,
            Opcode::Unknown(byte) => byte,
        }
    }

    /// The loud form of a quiet opcode (`GetKQ` -> `GetK`), as memcached's dispatch translates
    /// it before validating; other opcodes are returned unchanged.
    pub fn loud(self) -> Opcode {
        match self {
            Opcode::GetQ => Opcode::Get,
            Opcode::GetKQ => Opcode::GetK,
            Opcode::SetQ => Opcode::Set,
            Opcode::AddQ => Opcode::Add,
            Opcode::ReplaceQ => Opcode::Replace,
            Opcode::DeleteQ => Opcode::Delete,
            Opcode::IncrementQ => Opcode::Increment,
            Opcode::DecrementQ => Opcode::Decrement,
            Opcode::QuitQ => Opcode::Quit,
            Opcode::FlushQ => Opcode::Flush,
            Opcode::AppendQ => Opcode::Append,
            Opcode::PrependQ => Opcode::Prepend,
            Opcode::GatQ => Opcode::Gat,
            Opcode::GatKQ => Opcode::GatK,
            other => other,
        }
    }

    /// A quiet variant: its success is not answered (see [`Opcode::response_sent`]).
    pub fn is_quiet(self) -> bool {
        self.loud() != self
    }

    /// A "K" variant: hits (and, for the loud ones, misses) carry the key.
    pub fn returns_key(self) -> bool {
        matches!(
            self,
            Opcode::GetK | Opcode::GetKQ | Opcode::GatK | Opcode::GatKQ
        )
    }

    /// A get or get-and-touch of any variant (whose hits are answered even when quiet).
    pub fn is_retrieval(self) -> bool {
        matches!(
            self.loud(),
            Opcode::Get | Opcode::GetK | Opcode::Gat | Opcode::GatK
        )
    }

    /// Whether memcached 1.6.18 sends a response with `status` to a request with this opcode:
    /// - every response to a loud opcode;
    /// - for quiet gets and get-and-touches, hits, and errors other than the miss;
    /// - for the other quiet opcodes, errors only (a miss, `KeyExists`, `NotStored`, ... are
    ///   errors and are sent: only `Success` is suppressed).
    pub fn response_sent(self, status: Status) -> bool {
        if !self.is_quiet() {
            return true;
        }
        if self.is_retrieval() {
            return status != Status::KeyNotFound;
        }
        status != Status::Success
    }
}

/// A response status, with memcached's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Success,
    KeyNotFound,
    KeyExists,
    TooLarge,
    InvalidArguments,
    NotStored,
    /// incr/decr on a value that is not a number.
    NonNumeric,
    AuthError,
    AuthContinue,
    UnknownCommand,
    OutOfMemory,
}

impl Status {
    /// The status field's value.
    pub fn code(self) -> u16 {
        match self {
            Status::Success => 0x00,
            Status::KeyNotFound => 0x01,
            Status::KeyExists => 0x02,
            Status::TooLarge => 0x03,
            Status::InvalidArguments => 0x04,
            Status::NotStored => 0x05,
            Status::NonNumeric => 0x06,
            Status::AuthError => 0x20,
            Status::AuthContinue => 0x21,
            Status::UnknownCommand => 0x81,
            Status::OutOfMemory => 0x82,
        }
    }

    /// The status of a field value memcached 1.6.18 sends (`None` for others).
    pub fn from_code(code: u16) -> Option<Status> {
        Some(match code {
            0x00 => Status::Success,
            0x01 => Status::KeyNotFound,
            0x02 => Status::KeyExists,
            0x03 => Status::TooLarge,
            0x04 => Status::InvalidArguments,
            0x05 => Status::NotStored,
            0x06 => Status::NonNumeric,
            0x20 => Status::AuthError,
            0x21 => Status::AuthContinue,
            0x81 => Status::UnknownCommand,
            0x82 => Status::OutOfMemory,
            _ => return None,
        })
    }

    /// The body memcached's `write_bin_error` sends with this status when it has no specific
    /// text (empty for `Success` and `AuthContinue`, which are not errors).
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::Success | Status::AuthContinue => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_bytes_round_trip() {
        for byte in 0..=u8::MAX {
            assert_eq!(Opcode::from_byte(byte).byte(), byte);
        }
        let known = (0..=u8::MAX)
            .filter(|&b| !matches!(Opcode::from_byte(b), Opcode::Unknown(_)))
            .count();
        assert_eq!(known, 36, "memcached 1.6's opcodes, verbosity included");
    }

    #[test]
    fn quiet_and_key_variants() {
        assert_eq!(Opcode::GetKQ.loud(), Opcode::GetK);
        assert!(Opcode::GatKQ.is_quiet() && Opcode::GatKQ.returns_key());
        assert!(!Opcode::Touch.is_quiet() && !Opcode::Touch.is_retrieval());
        assert!(!Opcode::Verbosity.is_quiet());
        let quiet = (0..=u8::MAX)
            .filter(|&b| Opcode::from_byte(b).is_quiet())
            .count();
        assert_eq!(quiet, 14);
    }

    #[test]
    fn quiet_responses() {
        assert!(!Opcode::GetQ.response_sent(Status::KeyNotFound));
        assert!(Opcode::GetQ.response_sent(Status::Success));
        assert!(!Opcode::SetQ.response_sent(Status::Success));
        assert!(Opcode::SetQ.response_sent(Status::KeyExists));
        assert!(Opcode::DeleteQ.response_sent(Status::KeyNotFound));
        assert!(Opcode::Get.response_sent(Status::KeyNotFound));
    }

    #[test]
    fn status_codes_round_trip() {
        for code in 0..=u16::MAX {
            if let Some(status) = Status::from_code(code) {
                assert_eq!(status.code(), code);
            }
        }
    }
}
