//! The meta commands' lines (`mg`, `ms`, `md`, `ma`): key, data length, and flags, checked in
//! the order and with the texts of memcached 1.6.18's proto_text.c.
//!
//! Owns: flag parsing (`_meta_flag_preparse`), the per-command error texts, `ms` modes and
//! data blocks, base64 keys. Must not touch: framing the line (`parse`), reply bytes
//! (`reply`), or what a flag means to the cache (the server's).
//!
//! memcached accepts every known flag on every meta command and ignores those that mean
//! nothing to it (`md k v` is fine), so the parser does too. Flags later memcached versions
//! added (`E` new CAS, `x` drop the value) are refused as 1.6.18 refuses them: a client that
//! sends them would otherwise see them work here and fail on memcached.

// A `Failure` carries the refused command's key inline, like every key here (a base64 key is
// decoded into the request, never onto the heap). It is no larger than the `Parsed` of the `Ok`
// side, so boxing it would only add the allocation this crate avoids.
#![allow(clippy::result_large_err)]

use crate::base64;
use crate::error::ProtocolError;
use crate::line::{
    DataBlock, Failure, Parsed, ParserLimits, Refused, Tokens, TooLargeStore, data_block,
};
use crate::meta::{MetaArithMode, MetaCommand, MetaFlags, MetaSetMode};
use crate::number::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::request::{KEY_MAX_LEN, Key, Request};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: a meta line of this many tokens (plus the terminal one)
/// is refused.
const MAX_META_NTOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, counted with the `O`.
const MAX_OPAQUE_TOKEN: usize = 32;

/// Decodes a base64 key as memcached does, into the key's inline storage.
pub(crate) fn decode_key(raw: &[u8]) -> Option<Key<'_>> {
    let mut bytes = [0u8; 188];
    let len = base64::decode(raw, &mut bytes)?;
    // A key of at most 250 base64 bytes decodes to at most 187: the conversion cannot fail.
    let len = u8::try_from(len).ok()?;
    Some(Key::Decoded { bytes, len })
}

/// Parses an `mg`/`ms`/`md`/`ma` line (and the data block of `ms`).
pub(crate) fn parse<'i>(
    command: MetaCommand,
    tokens: &Tokens<'i>,
    input: &'i [u8],
    line_consumed: usize,
    limits: &ParserLimits,
) -> Result<Parsed<'i>, Failure<'i>> {
    let ntokens = tokens.ntokens();
    if ntokens < 3 {
        return Err(ProtocolError::UnknownCommand.into());
    }
    let raw_key = tokens.get(1);
    if raw_key.len() > KEY_MAX_LEN {
        return Err(ProtocolError::BadCommandLine.into());
    }
    if command == MetaCommand::Set && ntokens == 3 {
        return Err(ProtocolError::BadCommandLine.into());
    }
    if ntokens > MAX_META_NTOKENS {
        return Err(match command {
            MetaCommand::Get => ProtocolError::GetFlagsTooLong,
            _ => ProtocolError::FlagsTooLong,
        }
        .into());
    }

    if command != MetaCommand::Set {
        let (key, flags) = parse_flags(command, tokens, 2)?;
        let request = match command {
            MetaCommand::Get => Request::MetaGet { key, flags },
            MetaCommand::Delete => Request::MetaDelete { key, flags },
            _ => Request::MetaArith { key, flags },
        };
        return Ok(Parsed::Request {
            request,
            consumed: line_consumed,
        });
    }

    // `ms <key> <datalen> <flags>*`. A bad length (the old `ms key S2` syntax among others)
    // is refused before anything is swallowed, so memcached reads the data as a command.
    let len = match safe_strtol(tokens.get(2)).map(usize::try_from) {
        Some(Ok(len)) if len <= i32::MAX as usize - 2 => len,
        _ => return Err(ProtocolError::BadCommandLine.into()),
    };
    // From here on memcached knows the length, so an error swallows the data block.
    let swallowing = |error: ProtocolError| Failure {
        error,
        swallow: len + 2,
        silent: false,
        refused: Refused::Nothing,
    };
    let (key, flags) = parse_flags(command, tokens, 3).map_err(|f| swallowing(f.error))?;
    if len > limits.max_value {
        return Err(
            swallowing(ProtocolError::ValueTooLarge).refusing(Refused::TooLarge {
                key,
                store: TooLargeStore::Meta(flags.set_mode),
            }),
        );
    }
    Ok(match data_block(input, line_consumed, len) {
        DataBlock::Complete { value, consumed } => Parsed::Request {
            request: Request::MetaSet { key, value, flags },
            consumed,
        },
        DataBlock::Incomplete { needed } => Parsed::Incomplete { needed },
        // Meta mode always reports this one, quiet or not.
        DataBlock::BadChunk { consumed } => Parsed::Error {
            error: ProtocolError::BadDataChunk,
            consumed,
            swallow: 0,
            close: false,
            silent: false,
            refused: Refused::Nothing,
        },
    })
}

/// Flags from token `first` on, then the checks memcached makes after them (mode, opaque).
fn parse_flags<'i>(
    command: MetaCommand,
    tokens: &Tokens<'i>,
    first: usize,
) -> Result<(Key<'i>, MetaFlags<'i>), Failure<'i>> {
    let raw_key = tokens.get(1);
    let (key, flags, mode) = match preparse(tokens, first, raw_key) {
        Ok(parsed) => parsed,
        // md and ma answer every flag error with one text.
        Err(error) => {
            return Err(match command {
                MetaCommand::Get | MetaCommand::Set => error,
                MetaCommand::Delete | MetaCommand::Arith => ProtocolError::InvalidOrDuplicateFlag,
            }
            .into());
        }
    };
    let mut flags = flags;
    match command {
        MetaCommand::Set => {
            flags.set_mode = match mode {
                None | Some(b'S') => MetaSetMode::Set,
                Some(b'E') => MetaSetMode::Add,
                Some(b'A') => MetaSetMode::Append,
                Some(b'P') => MetaSetMode::Prepend,
                Some(b'R') => MetaSetMode::Replace,
                Some(_) => return Err(ProtocolError::InvalidSetMode.into()),
            }
        }
        MetaCommand::Arith => {
            flags.arith_mode = match mode {
                None | Some(b'I' | b'+') => MetaArithMode::Incr,
                Some(b'D' | b'-') => MetaArithMode::Decr,
                Some(_) => return Err(ProtocolError::InvalidArithMode.into()),
            }
        }
        // mg and md ignore a mode.
        MetaCommand::Get | MetaCommand::Delete => {}
    }
    if flags
        .opaque
        .is_some_and(|opaque| opaque.len() + 1 > MAX_OPAQUE_TOKEN)
    {
        return Err(ProtocolError::OpaqueTooLong.into());
    }
    Ok((key, flags))
}

/// memcached's `_meta_flag_preparse`. An unknown or repeated flag stops at once; a bad value
/// is remembered and the walk goes on, so the last bad value's text wins, as in memcached.
/// Returns the key (decoded with `b`), the flags, and the raw `M` mode character.
fn preparse<'i>(
    tokens: &Tokens<'i>,
    first: usize,
    raw_key: &'i [u8],
) -> Result<(Key<'i>, MetaFlags<'i>, Option<u8>), ProtocolError> {
    let mut flags = MetaFlags {
        tokens: tokens.rest_from(first),
        ..MetaFlags::default()
    };
    let mut key = Key::Borrowed(raw_key);
    let mut mode = None;
    let mut seen: u128 = 0;
    let mut bad_value = false;
    let mut bad_value_error: Option<ProtocolError> = None;
    let mut fail = |error: Option<ProtocolError>| {
        bad_value = true;
        if error.is_some() {
            bad_value_error = error;
        }
    };

    for index in first..tokens.ntokens() - 1 {
        let token = tokens.get(index);
        let letter = token[0];
        let value = &token[1..];
        if letter >= 127 || seen & (1u128 << letter) != 0 {
            return Err(ProtocolError::DuplicateFlag);
        }
        seen |= 1u128 << letter;
        match letter {
            b'b' => {
                flags.base64 = true;
                match decode_key(raw_key) {
                    Some(decoded) => key = decoded,
                    None => fail(Some(ProtocolError::BadBase64Key)),
                }
            }
            b'N' => match safe_strtol(value) {
                Some(ttl) => flags.vivify = Some(i64::from(ttl)),
                None => fail(Some(ProtocolError::BadFlagToken)),
            },
            b'T' => match safe_strtol(value) {
                Some(ttl) => flags.ttl = Some(i64::from(ttl)),
                None => fail(Some(ProtocolError::BadFlagToken)),
            },
            b'R' => match safe_strtol(value) {
                Some(ttl) => flags.recache = Some(i64::from(ttl)),
                None => fail(Some(ProtocolError::BadFlagToken)),
            },
            b'l' => flags.return_last_access = true,
            b'O' => flags.opaque = Some(value),
            // Proxy hints: accepted and ignored.
            b'P' | b'L' => {}
            b'k' => flags.return_key = true,
            b's' => flags.return_size = true,
            b't' => flags.return_ttl = true,
            b'c' => flags.return_cas = true,
            b'f' => flags.return_flags = true,
            b'v' => flags.return_value = true,
            b'h' => flags.return_hit = true,
            b'u' => flags.no_bump = true,
            b'q' => flags.quiet = true,
            // memcached flags the error without choosing a text for it: the previous bad
            // value's text, or the default `bad command line format`.
            b'F' => match safe_strtoul(value) {
                Some(client_flags) => flags.client_flags = Some(client_flags),
                None => fail(None),
            },
            b'C' => match safe_strtoull(value) {
                Some(cas) => flags.compare_cas = Some(cas),
                None => fail(Some(ProtocolError::BadFlagToken)),
            },
            b'M' => match *value {
                [mode_char] => mode = Some(mode_char),
                _ => fail(Some(ProtocolError::BadModeLength)),
            },
            b'J' => match safe_strtoull(value) {
                Some(initial) => flags.initial = Some(initial),
                None => fail(Some(ProtocolError::InvalidInitialValue)),
            },
            b'D' => match safe_strtoull(value) {
                Some(delta) => flags.delta = Some(delta),
                None => fail(Some(ProtocolError::InvalidDeltaValue)),
            },
            b'I' => flags.invalidate = true,
            _ => return Err(ProtocolError::InvalidFlag),
        }
    }
    if bad_value {
        return Err(bad_value_error.unwrap_or(ProtocolError::BadCommandLine));
    }
    Ok((key, flags, mode))
}
