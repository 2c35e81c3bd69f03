//! memcached's UDP framing: the 8-byte frame header on every datagram, how a request datagram
//! is accepted, and how replies are split into datagrams, as memcached 1.6.18 does it
//! (`try_read_udp`, `build_udp_header`, `transmit_udp`).
//!
//! Owns: header bytes, the request-datagram checks, the reply split. Must not touch: sockets,
//! what a request means (the text and binary codecs parse the payload), what a reply says.
//!
//! The header is four big-endian u16: request id, sequence number, total datagrams, reserved.
//!
//! **Requests.** memcached drops a datagram of 8 bytes or fewer, and one whose total is not
//! exactly 1 (it never reassembles multi-datagram requests); it ignores the sequence number
//! and the reserved field. The payload holds one or more text or binary requests (its first
//! byte picks the protocol, per datagram); a request left incomplete at the end of the
//! payload is dropped, and a swallow never continues into the next datagram here (memcached
//! would read it from the socket).
//!
//! **Replies.** memcached builds one response object per command (a text multi-key get makes
//! one per key, its `END` joining the last key's) and sends each on its own datagrams: up to
//! 1392 bytes of payload after the header, sequence numbers from 0 for each response object,
//! the total datagram count of that object in every header (capped at 65535), the request id
//! echoed, reserved 0. It sends what it has queued at its flush points; at a flush, an empty
//! response object (a binary quiet command's suppressed answer, a text get miss of a multi-key
//! get) at the head of the queue goes out as a header-only datagram with total 0, while empty
//! objects right after a sent one are dropped. [`ReplyFramer`] reproduces this when fed:
//! - [`ReplyFramer::response`] for every response object, empty ones included, but not for a
//!   text `noreply` command's answer (memcached skips those entirely);
//! - [`ReplyFramer::flush`] at memcached's flush points: the end of each request datagram; a
//!   text `get`/`gets`/`gat`/`gats`, `mn` or `quit`; after a binary response when
//!   [`binary_response_flushes`] says so, and after a binary refusal that has a response and
//!   no swallow; every 20 requests of one datagram (`-R`);
//! - [`ReplyFramer::discard`] where memcached drops its queue: a frame that closes without a
//!   response (binary bad magic); the rest of that datagram is not parsed.

use crate::binary::{Opcode, Status};

/// Length of the frame header.
pub const HEADER_LEN: usize = 8;
/// memcached's largest reply datagram, header included.
pub const MAX_DATAGRAM: usize = 1400;
/// Reply payload per datagram.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN;

/// The frame header of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub request_id: u16,
    pub sequence: u16,
    pub total: u16,
    pub reserved: u16,
}

impl FrameHeader {
    /// The header at the front of `datagram` (`None` if shorter than 8 bytes).
    pub fn parse(datagram: &[u8]) -> Option<FrameHeader> {
        let bytes = datagram.first_chunk::<HEADER_LEN>()?;
        let field = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        Some(FrameHeader {
            request_id: field(0),
            sequence: field(2),
            total: field(4),
            reserved: field(6),
        })
    }

    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[0..2].copy_from_slice(&self.request_id.to_be_bytes());
        bytes[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        bytes[4..6].copy_from_slice(&self.total.to_be_bytes());
        bytes[6..8].copy_from_slice(&self.reserved.to_be_bytes());
        bytes
    }
}

/// Why a request datagram is dropped (silently, as memcached drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    #[error("datagram of {0} bytes has no payload after its frame header")]
    TooShort(usize),
    #[error("request spread over {0} datagrams (only single-datagram requests are served)")]
    NotSingle(u16),
}

/// A request datagram's header and payload, or why memcached drops it.
pub fn parse_request_datagram(datagram: &[u8]) -> Result<(FrameHeader, &[u8]), DatagramError> {
    if datagram.len() <= HEADER_LEN {
        return Err(DatagramError::TooShort(datagram.len()));
    }
    let header = FrameHeader::parse(datagram).ok_or(DatagramError::TooShort(datagram.len()))?;
    if header.total != 1 {
        return Err(DatagramError::NotSingle(header.total));
    }
    Ok((header, &datagram[HEADER_LEN..]))
}

/// Client side: a single-datagram request (sequence 0, total 1).
pub fn encode_request_datagram(out: &mut Vec<u8>, request_id: u16, payload: &[u8]) {
    let header = FrameHeader {
        request_id,
        sequence: 0,
        total: 1,
        reserved: 0,
    };
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
}

/// Reply datagrams, stored back to back in one reusable buffer: those before the last flush
/// are ready to send, later ones are still queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datagrams {
    bytes: Vec<u8>,
    /// End offset of each datagram in `bytes`.
    ends: Vec<usize>,
    /// Datagrams ready to send.
    ready: usize,
}

impl Datagrams {
    pub fn new() -> Self {
        Datagrams::default()
    }

    /// Forgets every datagram, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.ready = 0;
    }

    /// Datagrams ready to send (flushed), in order.
    pub fn ready(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .take(self.ready)
            .map(|(start, end)| &self.bytes[start..end])
    }

    /// How many datagrams are ready.
    pub fn ready_count(&self) -> usize {
        self.ready
    }

    fn push(&mut self, header: FrameHeader, payload: &[u8]) {
        self.bytes.extend_from_slice(&header.to_bytes());
        self.bytes.extend_from_slice(payload);
        self.ends.push(self.bytes.len());
    }

    fn commit(&mut self) {
        self.ready = self.ends.len();
    }

    fn drop_queued(&mut self) {
        self.ends.truncate(self.ready);
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

/// Whether memcached writes its queued responses right after answering a binary request
/// with `opcode` and `status` (whether sent or suppressed): after a noop or a quit (quitq
/// too), and after an error it writes with `write_bin_error` without a swallow, which is every
/// non-success except a `K` get's miss (it carries the key), a quiet get's suppressed miss,
/// and the "Unknown command" to a SASL request with data (memcached swallows the data).
pub fn binary_response_flushes(opcode: Opcode, status: Status, sasl_data: bool) -> bool {
    match status {
        Status::Success => matches!(opcode.loud(), Opcode::Noop | Opcode::Quit),
        Status::KeyNotFound if opcode.returns_key() => false,
        Status::KeyNotFound if opcode.is_retrieval() && opcode.is_quiet() => false,
        Status::UnknownCommand
            if matches!(opcode, Opcode::SaslAuth | Opcode::SaslStep) && sasl_data =>
        {
            false
        }
        _ => true,
    }
}

/// Splits one request datagram's replies into reply datagrams as memcached does (see the
/// module documentation for what to feed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyFramer {
    request_id: u16,
    /// A datagram went out since the last flush: empty response objects are dropped.
    sent_since_flush: bool,
}

impl ReplyFramer {
    /// A framer for the replies to request `request_id`.
    pub fn new(request_id: u16) -> Self {
        ReplyFramer {
            request_id,
            sent_since_flush: false,
        }
    }

    /// Queues one response object's datagrams in `out`.
    pub fn response(&mut self, response: &[u8], out: &mut Datagrams) {
        if response.is_empty() {
            if !self.sent_since_flush {
                out.push(self.header(0, 0), &[]);
                self.sent_since_flush = true;
            }
            return;
        }
        let total = response
            .len()
            .div_ceil(MAX_PAYLOAD)
            .min(usize::from(u16::MAX)) as u16;
        for (sequence, payload) in response.chunks(MAX_PAYLOAD).enumerate() {
            // memcached's sequence counter is an int written as two bytes: it wraps.
            out.push(self.header(sequence as u16, total), payload);
        }
        self.sent_since_flush = true;
    }

    /// memcached writes its queue: what was queued is ready to send.
    pub fn flush(&mut self, out: &mut Datagrams) {
        out.commit();
        self.sent_since_flush = false;
    }

    /// memcached drops its queue unsent (a connection "closed" without a response).
    pub fn discard(&mut self, out: &mut Datagrams) {
        out.drop_queued();
        self.sent_since_flush = false;
    }

    fn header(&self, sequence: u16, total: u16) -> FrameHeader {
        FrameHeader {
            request_id: self.request_id,
            sequence,
            total,
            reserved: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_single_datagrams_with_a_payload() {
        let mut datagram = Vec::new();
        encode_request_datagram(&mut datagram, 0xabcd, b"version\r\n");
        let (header, payload) = parse_request_datagram(&datagram).unwrap();
        assert_eq!((header.request_id, header.total), (0xabcd, 1));
        assert_eq!(payload, b"version\r\n");
        assert_eq!(
            parse_request_datagram(&datagram[..8]),
            Err(DatagramError::TooShort(8))
        );
        datagram[5] = 2;
        assert_eq!(
            parse_request_datagram(&datagram),
            Err(DatagramError::NotSingle(2))
        );
        // The sequence number is not checked.
        datagram[5] = 1;
        datagram[3] = 9;
        assert!(parse_request_datagram(&datagram).is_ok());
    }

    #[test]
    fn long_replies_split_at_1392_bytes() {
        let mut out = Datagrams::new();
        let mut framer = ReplyFramer::new(7);
        let reply = vec![b'v'; 3025];
        framer.response(&reply, &mut out);
        assert_eq!(out.ready_count(), 0, "queued until the flush");
        framer.flush(&mut out);
        let datagrams: Vec<&[u8]> = out.ready().collect();
        assert_eq!(datagrams.len(), 3);
        assert_eq!(datagrams[0][..8], [0, 7, 0, 0, 0, 3, 0, 0]);
        assert_eq!(datagrams[2][..8], [0, 7, 0, 2, 0, 3, 0, 0]);
        assert_eq!(
            datagrams.iter().map(|d| d.len()).collect::<Vec<_>>(),
            [1400, 1400, 249]
        );
    }

    #[test]
    fn empty_responses_go_out_only_at_the_head_of_a_flush() {
        let mut out = Datagrams::new();
        let mut framer = ReplyFramer::new(1);
        framer.response(b"", &mut out);
        framer.response(b"", &mut out);
        framer.response(b"END\r\n", &mut out);
        framer.response(b"", &mut out);
        framer.flush(&mut out);
        framer.response(b"", &mut out);
        framer.flush(&mut out);
        let lens: Vec<usize> = out.ready().map(<[u8]>::len).collect();
        assert_eq!(lens, [8, 13, 8]);
        assert_eq!(out.ready().next().unwrap(), [0, 1, 0, 0, 0, 0, 0, 0]);
        // A discard drops what was queued since the last flush.
        framer.response(b"x", &mut out);
        framer.discard(&mut out);
        assert_eq!(out.ready_count(), 3);
        framer.response(b"y", &mut out);
        framer.flush(&mut out);
        assert_eq!(out.ready().last().unwrap(), b"\0\x01\0\0\0\x01\0\0y");
    }
}
