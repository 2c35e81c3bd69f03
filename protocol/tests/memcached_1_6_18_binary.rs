//! Every captured binary-protocol and UDP exchange with memcached 1.6.18
//! (`common/captured_binary_1_6_18.rs`, from `scripts/capture-memcached-binary.py`) replayed
//! through the codec, without storage:
//! - the request stream parses the same whole and one byte at a time, and every refusal's
//!   response is memcached's, byte for byte, with its close and swallow;
//! - every response memcached sent to a request is re-encoded by `binary::response` from the
//!   request and the data-dependent fields of memcached's frame (CAS, flags, value), and must
//!   come out byte for byte; CAS is present exactly where the module documentation says;
//! - a quiet request gets only the responses `Opcode::response_sent` allows;
//! - UDP: memcached's drops are `parse_request_datagram`'s, and its reply datagrams are what
//!   `udp::ReplyFramer` makes of the response objects, fed by the rules of the `udp` module.

#[path = "common/binary.rs"]
mod binary_support;

include!("common/captured_binary_1_6_18.rs");

use binary_support::{
    BinaryEvent, Ending, binary_events_of, drive_binary, parse_all, response_frames,
};
use ferrocache_protocol::binary::client::BinaryResponse;
use ferrocache_protocol::binary::{
    BinaryCommand, BinaryLimits, BinaryRequest, Opcode, Status, response,
};
use ferrocache_protocol::client::{ParsedReply, Reply, parse_reply};
use ferrocache_protocol::udp::{self, Datagrams, ReplyFramer};
use ferrocache_protocol::{Parsed, ParserLimits, Request, parse_request};

/// memcached's limit with `-I 1m` for the 1-byte keys of the too-large exchanges.
fn limits() -> BinaryLimits {
    BinaryLimits {
        max_value: 1_048_516,
    }
}

/// The bytes each step of `exchange` sent, with `cas_from_previous` applied.
fn sent(exchange: &BinaryExchange) -> Vec<Vec<u8>> {
    let mut previous: &[u8] = &[];
    let mut streams = Vec::new();
    for step in exchange.steps {
        let mut bytes = step.request_bytes();
        if step.cas_from_previous {
            bytes[16..24].copy_from_slice(&previous[16..24]);
        }
        streams.push(bytes);
        previous = step.response;
    }
    streams
}

/// What `binary::response` writes for memcached's `frame` answering `request`, taking only
/// the fields that depend on stored data from the frame.
fn reencoded(request: &BinaryRequest<'_>, frame: &BinaryResponse<'_>, name: &str) -> Vec<u8> {
    let echo = request.echo();
    let status = frame.status().expect("one of memcached's statuses");
    let key = request.returns_key().then_some(request.key());
    let mut out = Vec::new();
    if status != Status::Success {
        match request.command {
            BinaryCommand::Get { .. } | BinaryCommand::Touch { .. }
                if status == Status::KeyNotFound =>
            {
                response::miss(&mut out, echo, key)
            }
            _ => response::error(&mut out, echo, status),
        }
        return out;
    }
    let with_cas = |expected: bool| {
        assert_eq!(frame.cas != 0, expected, "{name}: CAS in {frame:?}");
        frame.cas
    };
    match request.command {
        BinaryCommand::Get { .. } => response::hit(
            &mut out,
            echo,
            with_cas(true),
            frame.flags().expect("flags"),
            key,
            frame.value,
        ),
        BinaryCommand::Touch { .. } => response::touched(
            &mut out,
            echo,
            with_cas(true),
            frame.flags().expect("flags"),
        ),
        BinaryCommand::Store { .. } | BinaryCommand::Concat { .. } => {
            response::success(&mut out, echo, with_cas(true))
        }
        BinaryCommand::Delete { .. }
        | BinaryCommand::Flush { .. }
        | BinaryCommand::Noop
        | BinaryCommand::Quit => response::success(&mut out, echo, with_cas(false)),
        BinaryCommand::Arith { .. } => response::counter(
            &mut out,
            echo,
            with_cas(true),
            frame.counter().expect("8-byte value"),
        ),
        BinaryCommand::Version => response::version(&mut out, echo, "1.6.18"),
        BinaryCommand::Stat { .. } => {
            with_cas(false);
            if frame.is_stat_end() {
                response::stat_end(&mut out, echo.opaque)
            } else {
                response::stat(&mut out, echo.opaque, frame.key, frame.value)
            }
        }
        BinaryCommand::SaslListMechs
        | BinaryCommand::SaslAuth { .. }
        | BinaryCommand::SaslStep { .. } => {
            panic!("{name}: memcached without SASL answered {frame:?}")
        }
    }
    out
}

/// Checks one step: the parser's events against memcached's response frames.
fn check_step(name: &str, events: &[BinaryEvent<'_>], ending: Ending, step: &BinaryStep) {
    let frames = response_frames(step.response);
    let mut used = vec![false; frames.len()];
    let mut closes = false;
    for (index, event) in events.iter().enumerate() {
        let opaque = match event {
            BinaryEvent::Request(request) => request.opaque,
            BinaryEvent::Error { error, .. } => error.opaque,
        };
        let mut answer = Vec::new();
        for (at, (frame, bytes)) in frames.iter().enumerate() {
            if frame.opaque == opaque {
                assert!(!used[at], "{name}: frame {at} answers two requests");
                used[at] = true;
                answer.push((frame, *bytes));
            }
        }
        match event {
            BinaryEvent::Error {
                error,
                swallow,
                close,
            } => {
                let mut ours = Vec::new();
                error.write_response(&mut ours);
                // memcached holds its responses until a swallow completes.
                let held = *swallow > 0 && ending.swallow_left > 0 && index == events.len() - 1;
                let theirs: Vec<u8> = answer.iter().flat_map(|(_, b)| b.to_vec()).collect();
                let expected = if held { Vec::new() } else { ours };
                assert_eq!(theirs, expected, "{name}: response to {error:?}");
                closes |= *close;
            }
            BinaryEvent::Request(request) => {
                for (frame, bytes) in &answer {
                    let status = frame.status().expect("known status");
                    assert!(
                        request.opcode.response_sent(status),
                        "{name}: {:?} answered {status:?}",
                        request.opcode
                    );
                    if !matches!(request.command, BinaryCommand::Stat { .. }) {
                        assert_eq!(frame.opcode, request.opcode, "{name}: opcode echo");
                    }
                    assert_eq!(
                        reencoded(request, frame, name),
                        *bytes,
                        "{name}: response to {request:?}"
                    );
                }
                if answer.is_empty() {
                    assert!(request.quiet(), "{name}: no response to {request:?}");
                }
                closes |= matches!(request.command, BinaryCommand::Quit);
            }
        }
        if closes {
            break; // memcached reads nothing after a close
        }
    }
    let stray: Vec<_> = (0..frames.len()).filter(|&at| !used[at]).collect();
    assert!(stray.is_empty(), "{name}: frames {stray:?} answer nothing");
    assert_eq!(step.closed, closes, "{name}: close");
}

#[test]
fn binary_exchanges_parse_and_encode_as_memcached_answered() {
    let limits = limits();
    for exchange in BINARY_EXCHANGES {
        for (stream, step) in sent(exchange).iter().zip(exchange.steps) {
            let (events, ending) = parse_all(stream, &limits);
            check_step(exchange.name, &events, ending, step);
        }
    }
}

#[test]
fn binary_exchanges_parse_the_same_one_byte_at_a_time() {
    let limits = limits();
    for exchange in BINARY_EXCHANGES {
        for stream in sent(exchange) {
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            let (events, ending) = parse_all(&stream, &limits);
            let whole = (events.iter().map(|e| format!("{e:?}")).collect(), ending);
            assert_eq!(
                binary_events_of(&bytes, &limits),
                whole,
                "{}",
                exchange.name
            );
            assert_eq!(
                binary_events_of(&[&stream], &limits),
                whole,
                "{}",
                exchange.name
            );
        }
    }
}

#[test]
fn the_goldens_show_the_documented_quirks() {
    let find = |name: &str| {
        BINARY_EXCHANGES
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no exchange {name:?}"))
    };
    // An unknown opcode swallows body_len bytes after its key: 3 more than its body.
    let unknown = find("unknown opcode with a key, 3 bytes, noop");
    assert_eq!(response_frames(unknown.steps[0].response).len(), 2);
    // Verbosity is unknown to 1.6.18, and its swallow eats the next frame's first bytes.
    let verbosity = find("verbosity, noop");
    assert_eq!(response_frames(verbosity.steps[0].response).len(), 1);
    // stat and gat leave the rest of a longer body to be parsed as the next frame.
    for name in [
        "stat with a noop inside its body",
        "gat with a noop inside its body",
    ] {
        let frames = response_frames(find(name).steps[0].response);
        assert_eq!(frames.last().unwrap().0.opcode, Opcode::Noop, "{name}");
    }
    // A set refused as too large unlinks the old value; an append does not.
    let set = response_frames(find("set too large unlinks the old value").steps[0].response);
    assert_eq!(set[1].0.status(), Some(Status::KeyNotFound));
    let append = response_frames(find("append too large keeps the old value").steps[0].response);
    assert_eq!(append[1].0.value, b"abc");
    // A CAS makes an add succeed on an existing item.
    let add = find("add with the item's CAS");
    assert!(response_frames(add.steps[1].response)[0].0.is_success());
}

/// Reply datagram payloads of one request datagram, back to back: its response bytes.
fn reply_stream(replies: &[&[u8]]) -> Vec<u8> {
    replies
        .iter()
        .flat_map(|d| d[udp::HEADER_LEN..].to_vec())
        .collect()
}

/// memcached's response objects for a binary payload, with its flush points.
fn frame_binary_payload(
    payload: &[u8],
    responses: &[u8],
    framer: &mut ReplyFramer,
    out: &mut Datagrams,
) {
    let frames = response_frames(responses);
    let answer_to = |opaque: u32| -> Vec<u8> {
        frames
            .iter()
            .filter(|(frame, _)| frame.opaque == opaque)
            .flat_map(|(_, bytes)| bytes.to_vec())
            .collect()
    };
    let mut stopped = false;
    drive_binary([payload], &limits(), |event| {
        if stopped {
            return;
        }
        match event {
            BinaryEvent::Request(request) => {
                let answer = answer_to(request.opaque);
                if answer.is_empty() && !request.quiet() {
                    // A loud request's answer memcached dropped unsent (a later bad magic
                    // discards it): queue something that must be discarded too.
                    framer.response(b"dropped", out);
                    return;
                }
                framer.response(&answer, out);
                let status = match response_frames(&answer).first() {
                    Some((frame, _)) => frame.status().expect("known status"),
                    // Suppressed: a quiet success, or a quiet retrieval's miss.
                    None if request.opcode.is_retrieval() => Status::KeyNotFound,
                    None => Status::Success,
                };
                let sasl_data = matches!(
                    request.command,
                    BinaryCommand::SaslAuth { data, .. } | BinaryCommand::SaslStep { data, .. }
                        if !data.is_empty()
                );
                if udp::binary_response_flushes(request.opcode, status, sasl_data) {
                    framer.flush(out);
                }
                stopped = matches!(request.command, BinaryCommand::Quit);
            }
            BinaryEvent::Error {
                error,
                swallow,
                close,
            } => {
                let mut ours = Vec::new();
                if !error.write_response(&mut ours) {
                    framer.discard(out);
                    stopped = true;
                    return;
                }
                framer.response(&ours, out);
                if swallow == 0 {
                    framer.flush(out);
                }
                stopped = close;
            }
        }
    });
}

/// memcached's response objects for a text payload: one per key of a get (its `END` joining
/// the last), one per other command unless `noreply`; a get flushes.
fn frame_text_payload(
    payload: &[u8],
    responses: &[u8],
    framer: &mut ReplyFramer,
    out: &mut Datagrams,
) {
    let mut replies = responses;
    let mut next_reply = || -> (Reply<'_>, &[u8]) {
        let Ok(ParsedReply::Complete { reply, consumed }) = parse_reply(replies) else {
            panic!("no whole reply left in {replies:?}")
        };
        let (bytes, rest) = replies.split_at(consumed);
        replies = rest;
        (reply, bytes)
    };
    let mut input = payload;
    while let Parsed::Request { request, consumed } = parse_request(input, &ParserLimits::default())
    {
        input = &input[consumed..];
        match request {
            Request::Get { keys, .. } => {
                let mut units: Vec<Vec<u8>> = Vec::new();
                let (mut reply, mut bytes) = next_reply();
                for key in keys.iter() {
                    match reply {
                        Reply::Value { key: hit, .. } if hit == key => {
                            units.push(bytes.to_vec());
                            (reply, bytes) = next_reply();
                        }
                        _ => units.push(Vec::new()),
                    }
                }
                assert_eq!(reply, Reply::End);
                units.last_mut().unwrap().extend_from_slice(bytes);
                for unit in &units {
                    framer.response(unit, out);
                }
                framer.flush(out);
            }
            other if other.noreply() => {}
            _ => {
                let (_, bytes) = next_reply();
                framer.response(bytes, out);
            }
        }
    }
}

#[test]
fn udp_exchanges_frame_as_memcached_framed_them() {
    for exchange in UDP_EXCHANGES {
        for (datagram, replies) in exchange.datagrams.iter().zip(exchange.replies) {
            let payload = match udp::parse_request_datagram(datagram) {
                Ok((_, payload)) => payload,
                Err(_) => {
                    assert!(replies.is_empty(), "{}: a dropped datagram", exchange.name);
                    continue;
                }
            };
            let header = udp::FrameHeader::parse(datagram).unwrap();
            let responses = reply_stream(replies);
            let mut framer = ReplyFramer::new(header.request_id);
            let mut out = Datagrams::new();
            if payload[0] == ferrocache_protocol::binary::REQUEST_MAGIC {
                frame_binary_payload(payload, &responses, &mut framer, &mut out);
            } else {
                frame_text_payload(payload, &responses, &mut framer, &mut out);
            }
            framer.flush(&mut out);
            let ours: Vec<&[u8]> = out.ready().collect();
            assert_eq!(&ours, replies, "{}", exchange.name);
        }
    }
}
