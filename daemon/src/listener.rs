//! Listening sockets and the streams they accept: TCP and UNIX, bound here or inherited.
//!
//! Owns: binding with memcached's socket options (SO_REUSEADDR, the `-b` backlog, the `-a`
//! mask on a UNIX socket), accepting without blocking, per-stream options (TCP_NODELAY), and
//! which listeners speak TLS (TCP ones under `-Z`, but for `notls:`; never a UNIX socket, as
//! memcached).
//! Must not touch: what is read or written on a stream.

use crate::cli::ListenSpec;
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

/// A socket that accepts connections.
#[derive(Debug)]
pub enum Listener {
    Tcp {
        listener: TcpListener,
        /// Connections accepted here speak TLS.
        tls: bool,
    },
    Unix {
        listener: UnixListener,
        path: Option<PathBuf>,
        /// Bound here, so its file is removed at exit; a socket systemd passed is left alone.
        owns_file: bool,
    },
}

/// A client connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// Accepts one pending connection; `WouldBlock` when there is none. The text is the peer's
    /// address as `stats conns` prints it.
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp { listener, .. } => {
                let (stream, peer) = listener.accept()?;
                // Replies go out in one write per batch; Nagle would only delay them.
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), format!("tcp:{peer}")))
            }
            Listener::Unix { listener, path, .. } => {
                let (stream, _) = listener.accept()?;
                let name = path
                    .as_ref()
                    .map_or_else(|| "unix:".to_string(), |p| format!("unix:{}", p.display()));
                Ok((Stream::Unix(stream), name))
            }
        }
    }

    /// Whether connections accepted here speak TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tcp { tls: true, .. })
    }

    /// The address as `stats conns` and the start-up line print it.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp { listener, .. } => listener
                .local_addr()
                .map_or_else(|_| "tcp:?".to_string(), |a| format!("tcp:{a}")),
            Listener::Unix { path, .. } => path
                .as_ref()
                .map_or_else(|| "unix:".to_string(), |p| format!("unix:{}", p.display())),
        }
    }

    /// Removes a UNIX socket's file (at shutdown), as memcached leaves none behind.
    pub fn remove_socket_file(&self) {
        if let Listener::Unix {
            path: Some(path),
            owns_file: true,
            ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp { listener, .. } => listener.as_raw_fd(),
            Listener::Unix { listener, .. } => listener.as_raw_fd(),
        }
    }
}

/// The lines memcached writes to the file `MEMCACHED_PORT_FILENAME` names: one per TCP
/// listener, `TCP INET: <port>` or `TCP INET6: <port>` (UNIX sockets have no port).
pub fn ports_file_lines(listeners: &[Listener], udp: &[SocketAddr]) -> String {
    let mut lines = String::new();
    let mut line = |transport: &str, address: SocketAddr| {
        let family = if address.is_ipv4() { "INET" } else { "INET6" };
        lines.push_str(&format!("{transport} {family}: {}\n", address.port()));
    };
    for listener in listeners {
        if let Listener::Tcp { listener: tcp, .. } = listener
            && let Ok(address) = tcp.local_addr()
        {
            line("TCP", address);
        }
    }
    // memcached opens its UDP sockets after the TCP ones.
    for &address in udp {
        line("UDP", address);
    }
    lines
}

/// Writes [`ports_file_lines`] as memcached does: appended to `<path>.lck`, which is then
/// renamed to `path`, so that whoever waits for the file never reads half of it.
pub fn write_ports_file(path: &Path, listeners: &[Listener], udp: &[SocketAddr]) -> io::Result<()> {
    let mut locked = path.as_os_str().to_owned();
    locked.push(".lck");
    let locked = PathBuf::from(locked);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&locked)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("Failed to open \"{}\": {e}", locked.display()),
            )
        })?;
    file.write_all(ports_file_lines(listeners, udp).as_bytes())?;
    drop(file);
    std::fs::rename(&locked, path)
}

/// Binds every address the settings name; `tls` tells which TCP addresses speak TLS.
pub fn bind_all(
    specs: &[ListenSpec],
    backlog: i32,
    tls: impl Fn(&str) -> bool,
) -> io::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for spec in specs {
        match spec {
            ListenSpec::Tcp(address) => {
                let addresses: Vec<SocketAddr> = address
                    .to_socket_addrs()
                    .map_err(|e| io::Error::new(e.kind(), format!("{address}: {e}")))?
                    .collect();
                if addresses.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{address}: no such address"),
                    ));
                }
                for addr in addresses {
                    let listener = bind_tcp(addr, backlog).map_err(|e| {
                        io::Error::new(e.kind(), format!("failed to listen on TCP {addr}: {e}"))
                    })?;
                    listeners.push(Listener::Tcp {
                        listener,
                        tls: tls(address),
                    });
                }
            }
            ListenSpec::Unix { path, mask } => {
                listeners.push(bind_unix(path, *mask, backlog).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("failed to listen on UNIX socket {}: {e}", path.display()),
                    )
                })?);
            }
        }
    }
    Ok(listeners)
}

/// The listening sockets systemd passed (socket activation: `LISTEN_FDS` and `LISTEN_PID`
/// naming this process); empty when the daemon was not socket-activated. They are served as
/// they are: their address, backlog and options are the socket unit's. Under `-Z` (`tls`) their
/// TCP sockets speak TLS, but for one named `notls` (`FileDescriptorName=notls`).
pub fn inherited(tls: bool) -> io::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for (fd, name) in sd_notify::listen_fds_with_names()? {
        if name == crate::restart::MEMORY_FD_NAME {
            // The cache's memory, back from systemd's store: `restart` adopts it.
            continue;
        }
        let socket = Socket::from(crate::os::adopt_inherited_fd(fd));
        if socket.r#type()? != Type::STREAM {
            log::warn!("ignoring inherited socket {fd} ({name}): not a stream socket");
            continue;
        }
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        if local.as_socket().is_some() {
            listeners.push(Listener::Tcp {
                listener: TcpListener::from_std(socket.into()),
                tls: tls && name != "notls",
            });
        } else {
            let path = local.as_pathname().map(PathBuf::from);
            let std_listener: std::os::unix::net::UnixListener = socket.into();
            listeners.push(Listener::Unix {
                listener: UnixListener::from_std(std_listener),
                path,
                owns_file: false,
            });
        }
    }
    Ok(listeners)
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // As memcached: an IPv6 listener does not also take IPv4, so both can be listed.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn bind_unix(path: &PathBuf, mask: u32, backlog: i32) -> io::Result<Listener> {
    // A socket file left by a previous run would make bind fail; memcached removes it too.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    // The mask applies to the file bind creates; umask is process-wide, which is why listeners
    // are bound before any worker thread starts.
    let bound = crate::os::with_umask(mask, || socket.bind(&socket2::SockAddr::unix(path)?));
    bound?;
    socket.listen(backlog)?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    Ok(Listener::Unix {
        listener: UnixListener::from_std(std_listener),
        path: Some(path.clone()),
        owns_file: true,
    })
}

/// Listeners and streams register with the poll by their descriptor: mio's `SourceFd` works
/// alike for TCP and UNIX sockets, so neither enum needs to delegate variant by variant.
macro_rules! source_by_descriptor {
    ($($socket:ty),*) => {$(
        impl Source for $socket {
            fn register(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                SourceFd(&self.raw_fd()).register(registry, token, interests)
            }

            fn reregister(
                &mut self,
                registry: &Registry,
                token: Token,
                interests: Interest,
            ) -> io::Result<()> {
                SourceFd(&self.raw_fd()).reregister(registry, token, interests)
            }

            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                SourceFd(&self.raw_fd()).deregister(registry)
            }
        }
    )*};
}

source_by_descriptor!(Listener, Stream);

impl Stream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    /// TLS records go out as one `writev`.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_file_names_each_tcp_port_as_memcached_does() {
        let specs = [
            ListenSpec::Tcp("127.0.0.1:0".into()),
            ListenSpec::Tcp("127.0.0.1:0".into()),
        ];
        let listeners = bind_all(&specs, 16, |_| false).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| match l {
                Listener::Tcp { listener: tcp, .. } => tcp.local_addr().unwrap().port(),
                Listener::Unix { .. } => unreachable!(),
            })
            .collect();
        let expected = format!("TCP INET: {}\nTCP INET: {}\n", ports[0], ports[1]);
        assert_eq!(ports_file_lines(&listeners, &[]), expected);
        let with_udp = format!("{expected}UDP INET: 5000\n");
        let dir = std::env::temp_dir().join(format!("ferrocache-ports-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ports");
        write_ports_file(&path, &listeners, &["127.0.0.1:5000".parse().unwrap()]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), with_udp);
        assert!(!dir.join("ports.lck").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
