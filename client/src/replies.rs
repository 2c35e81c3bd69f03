//! What each reply means to the command that asked for it, for the blocking and the async
//! client alike: a hit or the end of a retrieval, stored or not, deleted or not.
//!
//! Owns: the mapping from parsed replies to results. Must not touch: I/O, the parser.

use crate::client::{Item, StoreOutcome};
use ferrocache_protocol::client::Reply;
use std::collections::HashMap;

/// One unit of a `VALUE ... END` reply: `Ok(true)` at `END`, `Ok(false)` after a value (kept
/// in `found`), `Err(text)` for a reply that has no place in a retrieval.
pub(crate) fn retrieval_step(
    reply: Reply<'_>,
    found: &mut HashMap<Vec<u8>, Item>,
) -> Result<bool, String> {
    match reply {
        Reply::Value {
            key,
            flags,
            cas,
            data,
        } => {
            let item = Item {
                value: data.to_vec(),
                flags,
                cas,
            };
            found.insert(key.to_vec(), item);
            Ok(false)
        }
        Reply::End => Ok(true),
        other => Err(format!("{other:?}")),
    }
}

/// The answer to a storage command.
pub(crate) fn store_outcome(reply: &Reply<'_>) -> Option<StoreOutcome> {
    match reply {
        Reply::Stored => Some(StoreOutcome::Stored),
        Reply::NotStored => Some(StoreOutcome::NotStored),
        Reply::Exists => Some(StoreOutcome::Exists),
        Reply::NotFound => Some(StoreOutcome::NotFound),
        _ => None,
    }
}

/// The answer to `delete`: whether the key existed.
pub(crate) fn deleted(reply: &Reply<'_>) -> Option<bool> {
    match reply {
        Reply::Deleted => Some(true),
        Reply::NotFound => Some(false),
        _ => None,
    }
}

/// The answer to `touch`: whether the key existed.
pub(crate) fn touched(reply: &Reply<'_>) -> Option<bool> {
    match reply {
        Reply::Touched => Some(true),
        Reply::NotFound => Some(false),
        _ => None,
    }
}
