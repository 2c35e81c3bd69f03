//! The binary protocol front: a connection's frames in, memcached 1.6.18's responses out.
//!
//! Owns: parsing frames (`ferrocache_protocol::binary::parse_binary`), turning each into the
//! command layer's commands, encoding the outcomes (`binary::response`) with memcached's
//! statuses and texts, quiet variants (a suppressed response is simply not written, so the
//! others keep request order and a noop's answer comes after all of them), CAS and opaque in
//! the header, refusals and the bytes they swallow (also across reads), the `-R` budget and the
//! output high-water mark; with `-S`, the connection's SASL exchange and the refusal of every
//! other command before it succeeds. Must not touch: sockets or buffer memory (the `connection`'s), or
//! what a command does to the cache (the `command` layer's).

use super::{OUTPUT_HIGH_WATER, ServeContext, Stop};
use crate::auth::sasl::{MAX_MECH_LEN, SaslConn, SaslOutcome};
use crate::command::Executor;
use crate::command::arith::Arith;
use crate::command::delete::Delete;
use crate::command::retrieval::Retrieve;
use crate::command::stats::StatsOutcome;
use crate::command::store::{Store, StoreKind};
use crate::latency::Family;
use crate::shared::Shared;
use ferrocache_protocol::binary::response::{self, Echo};
use ferrocache_protocol::binary::{
    AuthGate, BinaryCommand, BinaryError, BinaryErrorKind, BinaryLimits, BinaryParsed,
    BinaryRequest, ConcatMode, NO_CREATE, Opcode, StatGroup, Status, StoreMode, auth_gate,
    parse_binary,
};
use ferrocache_protocol::udp::binary_response_flushes;
use ferrocache_protocol::{DetailAction, StatsGroup, StoreCommand};
use ferrocache_storage::{ArithMode, ArithOutcome, DeleteOutcome, StoreError, StoreOutcome};

/// A binary connection's state between reads.
#[derive(Debug)]
pub struct BinarySession {
    limits: BinaryLimits,
    /// Bytes of a refused value still to be discarded as they arrive.
    swallow: usize,
    /// Responses memcached would not have sent yet: it writes nothing while it swallows, so
    /// the responses of the batch a swallowing refusal is in (its own included) go out only
    /// once the swallowed bytes have all arrived. Empty (no heap) but in that case.
    held: Vec<u8>,
    /// `-S`: the connection's SASL state (None on a server without SASL).
    sasl: Option<SaslConn>,
}

/// What one request asks of the loop around it.
enum Step {
    Done,
    Close,
}

impl BinarySession {
    pub fn new(shared: &Shared) -> Self {
        BinarySession {
            limits: BinaryLimits {
                max_value: shared.settings.storage.item_size_max,
            },
            swallow: 0,
            held: Vec::new(),
            sasl: shared.settings.sasl.then(SaslConn::new),
        }
    }

    /// Whether a refused value is being discarded.
    pub fn swallowing(&self) -> bool {
        self.swallow > 0
    }

    /// As [`super::Session::serve`], for binary frames.
    pub fn serve(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        budget: &mut usize,
        context: &mut ServeContext<'_>,
    ) -> (usize, Stop) {
        let mut consumed = 0;
        // Where this batch's responses start in `out`, for holding them back.
        let batch_start = out.len();
        context.begin();
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - consumed);
                self.swallow -= n;
                consumed += n;
                if self.swallow > 0 {
                    self.held.extend_from_slice(&out[batch_start..]);
                    out.truncate(batch_start);
                    // Held responses are not this turn's to frame (UDP drops them with the
                    // datagram, as the swallow cannot go on into the next one).
                    if let Some(marks) = &mut context.marks {
                        marks.ends.retain(|&end| end <= batch_start);
                        let kept = marks.ends.len();
                        marks.flushes.retain(|&at| at < kept);
                    }
                    return (consumed, Stop::NeedInput { total: 0 });
                }
                if !self.held.is_empty() {
                    out.extend_from_slice(&std::mem::take(&mut self.held));
                }
            }
            let rest = &input[consumed..];
            if rest.is_empty() {
                return (consumed, Stop::NeedInput { total: 0 });
            }
            if *budget == 0 {
                return (consumed, Stop::Budget);
            }
            if out.len() > OUTPUT_HIGH_WATER {
                return (consumed, Stop::Backpressure);
            }
            if let Some(sasl) = &self.sasl
                && !sasl.authenticated()
            {
                match auth_gate(rest) {
                    AuthGate::Pass => {}
                    AuthGate::Incomplete { needed } => {
                        return (consumed, Stop::NeedInput { total: needed });
                    }
                    AuthGate::Refuse { opcode, opaque } => {
                        // memcached answers and closes without reading the value, so what
                        // follows in the buffer is never looked at.
                        response::error(out, Echo { opcode, opaque }, Status::AuthError);
                        context.finish(Family::Other);
                        *budget = budget.saturating_sub(1);
                        return (consumed, Stop::Close);
                    }
                }
            }
            match parse_binary(rest, &self.limits) {
                BinaryParsed::Request {
                    request,
                    consumed: used,
                } => {
                    consumed += used;
                    *budget -= 1;
                    context.served += 1;
                    let start = out.len();
                    let step = match &mut self.sasl {
                        Some(sasl) if is_sasl(&request.command) => {
                            sasl_command(sasl, &request, out, &context.executor);
                            Step::Done
                        }
                        _ => execute(&request, out, &context.executor),
                    };
                    context.finish(family(&request.command));
                    if context.marks.is_some() {
                        let flush = binary_response_flushes(
                            request.opcode,
                            response_status(&request, &out[start..]),
                            sasl_data(&request),
                        );
                        context.mark_response(out.len(), flush);
                    }
                    if let Step::Close = step {
                        return (consumed, Stop::Close);
                    }
                }
                BinaryParsed::Incomplete { needed } => {
                    let total = if needed > rest.len() { needed } else { 0 };
                    return (consumed, Stop::NeedInput { total });
                }
                BinaryParsed::Error {
                    error,
                    consumed: used,
                    swallow,
                    close,
                } => {
                    let start = out.len();
                    refuse(&error, out, &context.executor);
                    context.finish(Family::Other);
                    if let Some(marks) = &mut context.marks
                        && error.kind == BinaryErrorKind::BadMagic
                    {
                        // memcached closes without writing what it had queued.
                        marks.discarded = true;
                    } else if out.len() > start {
                        context.mark_response(out.len(), swallow == 0);
                    }
                    consumed += used.min(rest.len());
                    self.swallow = swallow;
                    *budget = budget.saturating_sub(1);
                    if close || (used == 0 && swallow == 0) {
                        return (consumed, Stop::Close);
                    }
                }
            }
        }
    }
}

/// The latency family a binary command is counted under (as its text counterpart).
fn family(command: &BinaryCommand<'_>) -> Family {
    match command {
        BinaryCommand::Get { touch: None, .. } => Family::Get,
        BinaryCommand::Get { touch: Some(_), .. } | BinaryCommand::Touch { .. } => Family::Touch,
        BinaryCommand::Store { .. } | BinaryCommand::Concat { .. } => Family::Set,
        BinaryCommand::Delete { .. } => Family::Delete,
        BinaryCommand::Arith { .. } => Family::Arith,
        BinaryCommand::Quit
        | BinaryCommand::Flush { .. }
        | BinaryCommand::Noop
        | BinaryCommand::Version
        | BinaryCommand::Stat { .. }
        | BinaryCommand::SaslListMechs
        | BinaryCommand::SaslAuth { .. }
        | BinaryCommand::SaslStep { .. } => Family::Other,
    }
}

/// The status of the response just written for `request` (its first frame's), or of the one
/// a quiet request went without: a quiet get's miss, any other quiet command's success.
fn response_status(request: &BinaryRequest<'_>, written: &[u8]) -> Status {
    match written.get(6..8) {
        Some(&[high, low]) => {
            Status::from_code(u16::from_be_bytes([high, low])).unwrap_or(Status::Success)
        }
        _ if request.opcode.is_retrieval() => Status::KeyNotFound,
        _ => Status::Success,
    }
}

/// Whether a SASL request carried data (memcached swallows it, which changes when it writes).
fn sasl_data(request: &BinaryRequest<'_>) -> bool {
    matches!(
        request.command,
        BinaryCommand::SaslAuth { data, .. } | BinaryCommand::SaslStep { data, .. } if !data.is_empty()
    )
}

/// Whether a request is one of the SASL opcodes.
fn is_sasl(command: &BinaryCommand<'_>) -> bool {
    matches!(
        command,
        BinaryCommand::SaslListMechs
            | BinaryCommand::SaslAuth { .. }
            | BinaryCommand::SaslStep { .. }
    )
}

/// A SASL request on a `-S` server, answered as memcached 1.6.18 with Cyrus SASL answers it.
fn sasl_command(
    sasl: &mut SaslConn,
    request: &BinaryRequest<'_>,
    out: &mut Vec<u8>,
    exec: &Executor<'_>,
) {
    let echo = request.echo();
    let check = |user: &[u8], password: &[u8]| {
        exec.shared
            .sasl
            .as_ref()
            .is_some_and(|db| db.check(user, password))
    };
    let outcome = match request.command {
        BinaryCommand::SaslListMechs => {
            let mechanisms = sasl.list_mechs();
            response::error_with_message(out, echo, Status::Success, mechanisms);
            return;
        }
        // Checked before anything else, so it neither logs out nor counts, as in memcached.
        BinaryCommand::SaslAuth { mechanism, .. } | BinaryCommand::SaslStep { mechanism, .. }
            if mechanism.len() > MAX_MECH_LEN =>
        {
            response::error(out, echo, Status::InvalidArguments);
            return;
        }
        BinaryCommand::SaslAuth { mechanism, data } => sasl.auth(mechanism, data, check),
        BinaryCommand::SaslStep { data, .. } => sasl.step(data, check),
        _ => return,
    };
    match outcome {
        SaslOutcome::Authenticated => {
            exec.count_auth(true);
            response::error_with_message(out, echo, Status::Success, response::SASL_AUTHENTICATED);
        }
        // Not a verdict: memcached counts nothing for it.
        SaslOutcome::Continue => {
            response::error_with_message(out, echo, Status::AuthContinue, b"");
        }
        SaslOutcome::Failure => {
            exec.count_auth(false);
            response::error(out, echo, Status::AuthError);
        }
    }
}

/// Whether memcached sends a response of `status` to this request (a quiet command's success,
/// and a quiet get's miss, go unanswered).
fn sent(request: &BinaryRequest<'_>, status: Status) -> bool {
    request.opcode.response_sent(status)
}

fn execute(request: &BinaryRequest<'_>, out: &mut Vec<u8>, exec: &Executor<'_>) -> Step {
    let echo = request.echo();
    let compare_cas = (request.cas != 0).then_some(request.cas);
    match request.command {
        BinaryCommand::Get { key, touch } => {
            let how = match touch {
                Some(exptime) => Retrieve::Touch {
                    exptime: i64::from(exptime),
                },
                None => Retrieve::Get,
            };
            let returned_key = request.returns_key().then_some(key);
            let hit = exec.retrieve(key, how, |item| {
                response::hit_header(
                    out,
                    echo,
                    item.cas(),
                    item.flags(),
                    returned_key,
                    item.value_len(),
                );
                for chunk in item.value() {
                    out.extend_from_slice(chunk);
                }
            });
            if !hit && sent(request, Status::KeyNotFound) {
                response::miss(out, echo, returned_key);
            }
        }
        BinaryCommand::Touch { key, exptime } => {
            let touched = exec.touch_item(key, i64::from(exptime), |item| {
                response::touched(out, echo, item.cas(), item.flags());
            });
            if !touched {
                response::error(out, echo, Status::KeyNotFound);
            }
        }
        BinaryCommand::Store {
            mode,
            key,
            flags,
            exptime,
            value,
        } => {
            let command = match mode {
                StoreMode::Set => StoreCommand::Set,
                StoreMode::Add => StoreCommand::Add,
                StoreMode::Replace => StoreCommand::Replace,
            };
            let mut store = Store::new(
                StoreKind::Binary(command),
                key,
                value,
                flags,
                i64::from(exptime),
            );
            store.compare_cas = compare_cas;
            let result = exec.store(&store);
            store_response(out, request, result, mode == StoreMode::Add);
        }
        BinaryCommand::Concat { mode, key, value } => {
            let command = match mode {
                ConcatMode::Append => StoreCommand::Append,
                ConcatMode::Prepend => StoreCommand::Prepend,
            };
            let mut store = Store::new(StoreKind::Binary(command), key, value, 0, 0);
            store.compare_cas = compare_cas;
            let result = exec.store(&store);
            store_response(out, request, result, false);
        }
        BinaryCommand::Delete { key } => {
            let mut delete = Delete::new(key);
            delete.compare_cas = compare_cas;
            let status = match exec.delete(&delete) {
                DeleteOutcome::Deleted => Status::Success,
                DeleteOutcome::NotFound => Status::KeyNotFound,
                DeleteOutcome::Exists => Status::KeyExists,
            };
            if sent(request, status) {
                status_response(out, echo, status, 0);
            }
        }
        BinaryCommand::Arith {
            incr,
            key,
            delta,
            initial,
            exptime,
        } => {
            let mode = if incr {
                ArithMode::Incr
            } else {
                ArithMode::Decr
            };
            let arith = Arith {
                key,
                mode,
                delta,
                compare_cas,
                vivify: (exptime != NO_CREATE).then_some((initial, i64::from(exptime))),
                exptime: None,
            };
            match exec.arith(&arith) {
                Ok(ArithOutcome::Updated { value, cas, .. }) => {
                    if sent(request, Status::Success) {
                        response::counter(out, echo, cas, value);
                    }
                }
                Ok(ArithOutcome::NotFound) => response::error(out, echo, Status::KeyNotFound),
                Ok(ArithOutcome::Exists) => response::error(out, echo, Status::KeyExists),
                Ok(ArithOutcome::NonNumeric) => response::error(out, echo, Status::NonNumeric),
                Err(_) => response::error_with_message(
                    out,
                    echo,
                    Status::OutOfMemory,
                    response::OUT_OF_MEMORY_INCREMENTING,
                ),
            }
        }
        BinaryCommand::Quit => {
            if sent(request, Status::Success) {
                response::success(out, echo, 0);
            }
            return Step::Close;
        }
        BinaryCommand::Flush { delay } => match exec.flush_all(i64::from(delay)) {
            Ok(()) => {
                if sent(request, Status::Success) {
                    response::success(out, echo, 0);
                }
            }
            // memcached answers a disabled flush with this status.
            Err(_) => response::error(out, echo, Status::AuthError),
        },
        BinaryCommand::Noop => response::success(out, echo, 0),
        BinaryCommand::Version => response::version(out, echo, exec.version()),
        BinaryCommand::Stat { group } => stat(out, request.opaque, echo, group, exec),
        // Without authentication support memcached answers every SASL opcode this way.
        BinaryCommand::SaslListMechs
        | BinaryCommand::SaslAuth { .. }
        | BinaryCommand::SaslStep { .. } => response::error(out, echo, Status::UnknownCommand),
    }
    Step::Done
}

/// The response to a set, add, replace, append or prepend.
fn store_response(
    out: &mut Vec<u8>,
    request: &BinaryRequest<'_>,
    result: Result<StoreOutcome, StoreError>,
    is_add: bool,
) {
    let echo = request.echo();
    let status = match result {
        Ok(StoreOutcome::Stored { cas }) => {
            if sent(request, Status::Success) {
                response::success(out, echo, cas);
            }
            return;
        }
        // memcached: an add on an existing key "exists"; a replace of a missing one is "not
        // found"; an append or prepend to a missing one "not stored".
        Ok(StoreOutcome::NotStored) if is_add => Status::KeyExists,
        Ok(StoreOutcome::NotStored) => match request.opcode.loud() {
            Opcode::Replace => Status::KeyNotFound,
            _ => Status::NotStored,
        },
        Ok(StoreOutcome::Exists) => Status::KeyExists,
        Ok(StoreOutcome::NotFound) => Status::KeyNotFound,
        Err(StoreError::TooLarge) => Status::TooLarge,
        Err(StoreError::OutOfMemory) => {
            return response::error_with_message(
                out,
                echo,
                Status::OutOfMemory,
                response::OUT_OF_MEMORY_STORING,
            );
        }
    };
    response::error(out, echo, status);
}

/// A bodyless success (with `cas`) or memcached's error text.
fn status_response(out: &mut Vec<u8>, echo: Echo, status: Status, cas: u64) {
    if status == Status::Success {
        response::success(out, echo, cas);
    } else {
        response::error(out, echo, status);
    }
}

/// `stat [group]`: one pair per statistic, then the empty pair.
fn stat(out: &mut Vec<u8>, opaque: u32, echo: Echo, group: &[u8], exec: &Executor<'_>) {
    let group = match StatGroup::of(group) {
        StatGroup::All => StatsGroup::General,
        StatGroup::Reset => StatsGroup::Reset,
        StatGroup::Settings => StatsGroup::Settings,
        StatGroup::DetailDump => StatsGroup::Detail(Some(DetailAction::Dump)),
        StatGroup::DetailOn => StatsGroup::Detail(Some(DetailAction::On)),
        StatGroup::DetailOff => StatsGroup::Detail(Some(DetailAction::Off)),
        StatGroup::Items => StatsGroup::Items,
        StatGroup::Slabs => StatsGroup::Slabs,
        StatGroup::Sizes => StatsGroup::Sizes,
        StatGroup::SizesEnable => StatsGroup::SizesEnable,
        StatGroup::SizesDisable => StatsGroup::SizesDisable,
        StatGroup::Unknown(_) => return response::error(out, echo, Status::KeyNotFound),
    };
    match exec.stats(group) {
        StatsOutcome::Pairs(pairs) => {
            let mut value = Vec::with_capacity(64);
            for (name, stat) in &pairs {
                value.clear();
                stat.write_to(&mut value);
                response::stat(out, opaque, name.as_bytes(), &value);
            }
        }
        // memcached sends the dump as one pair named `detailed`.
        StatsOutcome::Report(report) => response::stat(out, opaque, b"detailed", &report),
        StatsOutcome::Reset | StatsOutcome::Done => {}
        StatsOutcome::Refused(_) | StatsOutcome::Unknown => {
            return response::error(out, echo, Status::KeyNotFound);
        }
    }
    response::stat_end(out, opaque);
}

/// Answers a refused frame, doing first what memcached does beyond the response: a set refused
/// as too large unlinks the key's old item.
fn refuse(error: &BinaryError<'_>, out: &mut Vec<u8>, exec: &Executor<'_>) {
    if error.kind == BinaryErrorKind::TooLarge && matches!(error.opcode.loud(), Opcode::Set) {
        exec.refuse_too_large(StoreKind::Binary(StoreCommand::Set), error.key);
    }
    error.write_response(out);
}
