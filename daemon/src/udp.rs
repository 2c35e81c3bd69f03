//! UDP (`-U PORT`, off by default as in memcached 1.6): every worker reads request datagrams
//! from its own socket on each listening address (SO_REUSEPORT, so the kernel spreads
//! datagrams over the workers), serves the text, meta or binary requests each holds through
//! the same session and command layer as TCP, and answers in memcached's reply datagrams.
//!
//! Owns: the UDP sockets, one datagram's round trip ([`answer_datagram`]: frame header checks,
//! a fresh session over the payload, the reply split by response objects and flush points
//! with `ferrocache_protocol::udp`), and sending the replies. Must not touch: what a request
//! means (the session's and the command layer's).
//!
//! A bad frame (too short, or a request said to span several datagrams, which memcached never
//! reassembles) is dropped without a word, as memcached drops it; so is a request cut off at
//! the end of its datagram, and a reply the socket cannot take at once (UDP may lose it anyway).

use crate::session::{ResponseMarks, ServeContext, Session, Stop};
use crate::shared::Shared;
use ferrocache_protocol::udp::{Datagrams, ReplyFramer, parse_request_datagram};
use mio::net::UdpSocket;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

/// Largest datagram read (the largest a UDP packet can be).
const DATAGRAM_MAX: usize = 65_536;

/// Answers one request datagram: `replies` is left holding the datagrams to send back.
/// `output` is scratch space for the session's replies (kept between calls for its capacity).
pub fn answer_datagram(
    shared: &Shared,
    worker: usize,
    fd: i32,
    datagram: &[u8],
    output: &mut Vec<u8>,
    replies: &mut Datagrams,
) {
    replies.clear();
    let Ok((header, payload)) = parse_request_datagram(datagram) else {
        return;
    };
    let mut context = ServeContext::new(shared, worker, fd);
    context.marks = Some(ResponseMarks::default());
    let mut session = Session::new(shared);
    output.clear();
    let mut consumed = 0;
    let budget_per_turn = shared.settings.reqs_per_event;
    loop {
        let mut budget = budget_per_turn;
        let (used, stop) = session.serve(&payload[consumed..], output, &mut budget, &mut context);
        consumed += used;
        match stop {
            // memcached writes its queue every -R requests of one datagram.
            Stop::Budget | Stop::Backpressure => {
                if let Some(marks) = &mut context.marks
                    && let Some(last) = marks.ends.len().checked_sub(1)
                {
                    marks.flushes.push(last);
                }
            }
            Stop::NeedInput { .. } | Stop::Close | Stop::Watch => break,
        }
        if consumed >= payload.len() {
            break;
        }
    }
    // A watcher needs a connection to write to: over UDP `watch` answers and nothing follows.
    if let Some(watcher) = context.watcher.take() {
        shared.watchers.remove(&watcher);
    }
    let marks = context.marks.take().unwrap_or_default();
    let mut framer = ReplyFramer::new(header.request_id);
    let mut start = 0;
    let mut flushes = marks.flushes.iter().peekable();
    for (index, &end) in marks.ends.iter().enumerate() {
        framer.response(&output[start..end], replies);
        start = end;
        if flushes.next_if(|&&at| at == index).is_some() {
            framer.flush(replies);
        }
    }
    if marks.discarded {
        framer.discard(replies);
    } else {
        framer.flush(replies);
    }
}

/// One worker's UDP socket on one address.
pub struct UdpEndpoint {
    pub socket: UdpSocket,
    /// Scratch buffers, kept for their capacity.
    datagram: Box<[u8]>,
    output: Vec<u8>,
    replies: Datagrams,
}

impl UdpEndpoint {
    /// A socket on `address` that other workers may bind too (SO_REUSEPORT).
    pub fn bind(address: SocketAddr) -> io::Result<UdpEndpoint> {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if address.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        Ok(UdpEndpoint {
            socket: UdpSocket::from_std(socket.into()),
            datagram: vec![0u8; DATAGRAM_MAX].into_boxed_slice(),
            output: Vec::new(),
            replies: Datagrams::new(),
        })
    }

    /// Serves every datagram waiting on the socket (edge-triggered: until it would block).
    pub fn serve(&mut self, shared: &Shared, worker: usize) {
        let fd = self.socket.as_raw_fd();
        let stats = &shared.threads[worker];
        loop {
            let (len, peer) = match self.socket.recv_from(&mut self.datagram) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained; anything else (an ICMP error for an earlier reply) is
                // the peer's problem, not the socket's.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            stats.bytes_read.add(len as u64);
            answer_datagram(
                shared,
                worker,
                fd,
                &self.datagram[..len],
                &mut self.output,
                &mut self.replies,
            );
            for reply in self.replies.ready() {
                if let Ok(sent) = self.socket.send_to(reply, peer) {
                    stats.bytes_written.add(sent as u64);
                }
            }
        }
    }
}

/// The UDP addresses to serve: every TCP listening address, with the UDP port.
pub fn addresses(settings: &crate::cli::Settings) -> io::Result<Vec<SocketAddr>> {
    let port = settings.udp_port;
    if port == 0 {
        return Ok(Vec::new());
    }
    let mut addresses = Vec::new();
    for spec in &settings.listen {
        if let crate::cli::ListenSpec::Tcp(address) = spec {
            for mut address in address.to_socket_addrs()? {
                address.set_port(port);
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
    }
    Ok(addresses)
}
