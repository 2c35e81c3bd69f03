//! Every command of the client against the reference server, Debian's memcached 1.6.18, and
//! multi-server routing over three of them: each key lands on the server the ring names.

mod support;

use ferrocache_client::{
    Client, ClientConfig, ClientError, ServerErrorKind, ServerSpec, StoreOutcome, Timeouts,
};
use ferrocache_protocol::StatsGroup;
use std::time::Duration;
use support::{ServerProcess, free_port, start_ferrocached, start_memcached};

fn client_for(servers: &[&ServerProcess]) -> Client {
    let specs = servers
        .iter()
        .map(|s| ServerSpec::new("127.0.0.1", s.port))
        .collect();
    Client::new(specs, ClientConfig::default()).unwrap()
}

#[test]
fn every_command_against_memcached() {
    every_command(&start_memcached());
}

#[test]
fn every_command_against_ferrocached() {
    every_command(&start_ferrocached());
}

/// The same sequence, with the same expected replies, as memcached 1.6.18 gives them.
fn every_command(server: &ServerProcess) {
    let client = client_for(&[server]);
    client.flush_all().unwrap();

    assert_eq!(client.get(b"missing").unwrap(), None);
    client.set(b"k", b"hello", 0).unwrap();
    let item = client.get(b"k").unwrap().unwrap();
    assert_eq!(
        (item.value.as_slice(), item.flags, item.cas),
        (b"hello".as_slice(), 0, None)
    );

    assert!(!client.add(b"k", b"x", 0).unwrap());
    assert!(client.add(b"new", b"x", 0).unwrap());
    assert!(client.replace(b"new", b"y", 0).unwrap());
    assert!(!client.replace(b"absent", b"y", 0).unwrap());
    assert!(client.append(b"k", b" world").unwrap());
    assert!(client.prepend(b"k", b">").unwrap());
    assert!(!client.append(b"absent", b"z").unwrap());
    assert_eq!(client.get(b"k").unwrap().unwrap().value, b">hello world");

    let cas = client
        .gets(b"k")
        .unwrap()
        .unwrap()
        .cas
        .expect("gets returns a cas");
    assert_eq!(
        client.cas(b"k", b"v2", 0, cas + 1000).unwrap(),
        StoreOutcome::Exists
    );
    assert_eq!(
        client.cas(b"k", b"v2", 0, cas).unwrap(),
        StoreOutcome::Stored
    );
    assert_eq!(
        client.cas(b"absent", b"v", 0, 1).unwrap(),
        StoreOutcome::NotFound
    );

    client.set(b"n", b"10", 0).unwrap();
    assert_eq!(client.incr(b"n", 5).unwrap(), Some(15));
    assert_eq!(client.decr(b"n", 100).unwrap(), Some(0));
    assert_eq!(client.incr(b"absent", 1).unwrap(), None);
    match client.incr(b"k", 1) {
        Err(ClientError::Server { kind, message, .. }) => {
            assert_eq!(kind, ServerErrorKind::ClientError);
            assert_eq!(message, "cannot increment or decrement non-numeric value");
        }
        other => panic!("incr of text: {other:?}"),
    }
    // The connection survives a server error line.
    // memcached rewrites a shrinking decr result in place, padded with spaces.
    assert_eq!(client.get(b"n").unwrap().unwrap().value, b"0 ");

    assert!(client.touch(b"k", 100).unwrap());
    assert!(!client.touch(b"absent", 100).unwrap());
    assert_eq!(client.gat(200, b"k").unwrap().unwrap().value, b"v2");
    assert!(client.gats(200, b"k").unwrap().unwrap().cas.is_some());
    assert!(client.delete(b"k").unwrap());
    assert!(!client.delete(b"k").unwrap());

    let big = vec![b'v'; 600_000];
    client.set(b"big", &big, 0).unwrap();
    assert_eq!(client.get(b"big").unwrap().unwrap().value, big);
    match client.set(b"huge", &vec![0; 2 << 20], 0) {
        Err(ClientError::Server {
            kind: ServerErrorKind::ServerError,
            message,
            ..
        }) => {
            assert_eq!(message, "object too large for cache")
        }
        other => panic!("2 MiB set: {other:?}"),
    }

    let stats = client.stats(StatsGroup::General).unwrap();
    assert!(stats[0]["version"].starts_with("1.6.18"));
    assert!(stats[0].contains_key("curr_items"));
    assert!(client.version().unwrap()[0].starts_with("1.6.18"));

    assert!(matches!(
        client.get(b"bad key"),
        Err(ClientError::InvalidRequest(_))
    ));
    client.flush_all().unwrap();
    assert_eq!(client.get(b"n").unwrap(), None);
}

#[test]
fn multi_get_over_three_servers_merges_and_routes_by_the_ring() {
    let servers = [start_memcached(), start_memcached(), start_memcached()];
    let client = client_for(&[&servers[0], &servers[1], &servers[2]]);
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    for key in keys.iter().step_by(2) {
        client.set(key.as_bytes(), key.as_bytes(), 0).unwrap();
    }
    let found = client.get_multi(&keys).unwrap();
    assert_eq!(found.len(), 300);
    for key in keys.iter().step_by(2) {
        assert_eq!(found[key.as_bytes()].value, key.as_bytes());
    }
    // Each key is on the ring's server and on no other.
    let singles: Vec<Client> = servers.iter().map(|s| client_for(&[s])).collect();
    let mut per_server = [0usize; 3];
    for key in keys.iter().step_by(2) {
        let owner = client.server_index(key.as_bytes());
        per_server[owner] += 1;
        for (index, single) in singles.iter().enumerate() {
            assert_eq!(
                single.get(key.as_bytes()).unwrap().is_some(),
                index == owner,
                "{key}"
            );
        }
    }
    assert!(per_server.iter().all(|&n| n > 50), "{per_server:?}");
}

#[test]
fn refused_and_timed_out_connections_are_told_apart() {
    let closed_port = free_port();
    let client = Client::single(&format!("127.0.0.1:{closed_port}")).unwrap();
    assert!(matches!(
        client.get(b"k"),
        Err(ClientError::ConnectionRefused { .. })
    ));

    // A listener that never answers: the read times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = ServerSpec::new("127.0.0.1", silent.local_addr().unwrap().port());
    let config = ClientConfig {
        timeouts: Timeouts {
            read: Some(Duration::from_millis(100)),
            ..Timeouts::default()
        },
        ..ClientConfig::default()
    };
    let client = Client::new(vec![spec], config).unwrap();
    match client.get(b"k") {
        Err(ClientError::Timeout { during, .. }) => assert_eq!(during, "reading from"),
        other => panic!("silent server: {other:?}"),
    }
}

#[test]
fn a_multi_get_cut_short_by_an_error_leaves_no_reply_for_the_next_call() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A scripted server: on the first connection, an error for the first `get` line and, a
    // moment later, END for the second; on the second connection, a hit.
    let server = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(first.try_clone().unwrap());
        let mut line = String::new();
        for _ in 0..2 {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        let mut first = first;
        first.write_all(b"SERVER_ERROR busy\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        first.write_all(b"END\r\n").unwrap();
        let (mut second, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(second.try_clone().unwrap());
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "get c\r\n");
        second.write_all(b"VALUE c 0 1\r\nx\r\nEND\r\n").unwrap();
    });
    let config = ClientConfig {
        keys_per_get: 1,
        ..ClientConfig::default()
    };
    let client = Client::new(vec![ServerSpec::new("127.0.0.1", port)], config).unwrap();
    assert!(matches!(
        client.get_multi(&[b"a".as_slice(), b"b"]),
        Err(ClientError::Server { .. })
    ));
    std::thread::sleep(Duration::from_millis(100));
    // Had the first connection gone back to the pool, this would read its late END: a miss.
    assert_eq!(client.get(b"c").unwrap().unwrap().value, b"x");
    server.join().unwrap();
}
