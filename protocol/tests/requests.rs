//! What `parse_request` makes of each command when it succeeds, and how much it consumes or
//! waits for; plus the limits (long lines, large values) and the no-allocation promise.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::events_of;
use ferrocache_protocol::{
    CrawlTarget, DetailAction, GetKind, Key, LruCrawlerCommand, MetaArithMode, MetaFlags,
    MetaSetMode, Parsed, ParserLimits, ProtocolError, Refused, Request, SlabsCommand, StatsGroup,
    StoreCommand, TooLargeStore, parse_request,
};

/// Counts heap allocations made by the current thread, so the no-allocation test is not
/// disturbed by the test harness's other threads.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// thread-local cell, never the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn limits() -> ParserLimits {
    ParserLimits::default()
}

/// The request parsed from `input`, which must be exactly one complete request.
fn request(input: &[u8]) -> Request<'_> {
    match parse_request(input, &limits()) {
        Parsed::Request { request, consumed } => {
            assert_eq!(
                consumed,
                input.len(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            request
        }
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(input)),
    }
}

fn keys(request: &Request<'_>) -> Vec<Vec<u8>> {
    match request {
        Request::Get { keys, .. } => keys.iter().map(<[u8]>::to_vec).collect(),
        other => panic!("not a get: {other:?}"),
    }
}

#[test]
fn retrieval_commands() {
    let get = request(b"get a bb ccc\r\n");
    assert!(matches!(
        get,
        Request::Get {
            kind: GetKind::Get,
            exptime: 0,
            ..
        }
    ));
    assert_eq!(keys(&get), [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
    assert!(matches!(
        request(b"gets k\n"),
        Request::Get {
            kind: GetKind::Gets,
            ..
        }
    ));
    let gat = request(b"gat -1 x y\r\n");
    assert!(matches!(
        gat,
        Request::Get {
            kind: GetKind::Gat,
            exptime: -1,
            ..
        }
    ));
    assert_eq!(keys(&gat).len(), 2);
    assert!(matches!(
        request(b"gats 30 x\r\n"),
        Request::Get {
            kind: GetKind::Gats,
            exptime: 30,
            ..
        }
    ));
    // Leading, trailing and repeated spaces are skipped; a tab is part of a key.
    assert_eq!(
        keys(&request(b"  get  a\tb   c  \r\n")),
        [b"a\tb".to_vec(), b"c".to_vec()]
    );
    // The longest key is 250 bytes.
    let long_key = [b'k'; 250];
    let line = [&b"get "[..], &long_key, b"\r\n"].concat();
    assert_eq!(keys(&request(&line)), [long_key.to_vec()]);
    // memcached reads the line as a C string: a NUL ends it.
    assert_eq!(keys(&request(b"get foo\0bar baz\r\n")), [b"foo".to_vec()]);
    // 100 keys: more than memcached's 24 tokens, which it re-tokenises.
    let many: Vec<u8> = (0..100)
        .flat_map(|i| format!(" k{i}").into_bytes())
        .collect();
    let line = [&b"get"[..], &many, b"\r\n"].concat();
    assert_eq!(keys(&request(&line)).len(), 100);
}

#[test]
fn storage_commands() {
    assert_eq!(
        request(b"set k 5 100 3\r\nabc\r\n"),
        Request::Store {
            command: StoreCommand::Set,
            key: b"k",
            flags: 5,
            exptime: 100,
            value: b"abc",
            cas: 0,
            noreply: false,
        }
    );
    for (name, command) in [
        (&b"add"[..], StoreCommand::Add),
        (b"replace", StoreCommand::Replace),
        (b"append", StoreCommand::Append),
        (b"prepend", StoreCommand::Prepend),
    ] {
        let input = [name, b" k 0 0 1 noreply\r\nx\r\n"].concat();
        let parsed = request(&input);
        assert!(
            matches!(parsed, Request::Store { command: c, noreply: true, .. } if c == command),
            "{parsed:?}"
        );
    }
    assert_eq!(
        request(b"cas k 1 2 0 99\r\n\r\n"),
        Request::Store {
            command: StoreCommand::Cas,
            key: b"k",
            flags: 1,
            exptime: 2,
            value: b"",
            cas: 99,
            noreply: false,
        }
    );
    // The data block may hold anything, `\r\n` included; only its last two bytes count.
    assert!(matches!(
        request(b"set k 0 0 4\r\n\r\n\r\n\r\n"),
        Request::Store {
            value: b"\r\n\r\n",
            ..
        }
    ));
    // A 7th token that is not `noreply` is ignored, as memcached does.
    assert!(matches!(
        request(b"set k 0 0 1 please\r\nx\r\n"),
        Request::Store { noreply: false, .. }
    ));
    // Numbers as memcached reads them: `+`, leading tab, 32-bit truncation.
    assert!(matches!(
        request(b"set k +5 \t-1 +1\r\nx\r\n"),
        Request::Store {
            flags: 5,
            exptime: -1,
            ..
        }
    ));
    assert!(matches!(
        request(b"set k 4294967296 2147483648 1\r\nx\r\n"),
        Request::Store {
            flags: 0,
            exptime: -2_147_483_648,
            ..
        }
    ));
}

#[test]
fn other_text_commands() {
    assert_eq!(
        request(b"delete k\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        request(b"delete k 0\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        request(b"delete k 0 noreply\r\n"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert_eq!(
        request(b"incr k 18446744073709551615\r\n"),
        Request::Arith {
            incr: true,
            key: b"k",
            delta: u64::MAX,
            noreply: false
        }
    );
    assert_eq!(
        request(b"decr k 1 noreply\r\n"),
        Request::Arith {
            incr: false,
            key: b"k",
            delta: 1,
            noreply: true
        }
    );
    assert_eq!(
        request(b"touch k 10 noreply\r\n"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: true
        }
    );
    assert_eq!(
        request(b"flush_all\r\n"),
        Request::FlushAll {
            delay: 0,
            noreply: false
        }
    );
    assert_eq!(
        request(b"flush_all 10 noreply\r\n"),
        Request::FlushAll {
            delay: 10,
            noreply: true
        }
    );
    assert_eq!(
        request(b"flush_all noreply\r\n"),
        Request::FlushAll {
            delay: 0,
            noreply: true
        }
    );
    assert_eq!(
        request(b"flush_all -1\r\n"),
        Request::FlushAll {
            delay: -1,
            noreply: false
        }
    );
    assert_eq!(request(b"version\r\n"), Request::Version);
    assert_eq!(request(b"version 1 2 3\r\n"), Request::Version);
    assert_eq!(
        request(b"refresh_certs\r\n"),
        Request::RefreshCerts { noreply: false }
    );
    assert_eq!(
        request(b"refresh_certs a b noreply\r\n"),
        Request::RefreshCerts { noreply: true }
    );
    assert_eq!(
        request(b"verbosity 1 noreply\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: true
        }
    );
    assert_eq!(request(b"quit\r\n"), Request::Quit);
    assert_eq!(
        request(b"shutdown\r\n"),
        Request::Shutdown { graceful: false }
    );
    assert_eq!(
        request(b"shutdown graceful\r\n"),
        Request::Shutdown { graceful: true }
    );
    assert_eq!(
        request(b"cache_memlimit 64 noreply\r\n"),
        Request::CacheMemlimit {
            megabytes: 64,
            noreply: true
        }
    );
    for (line, group) in [
        (&b"stats\r\n"[..], StatsGroup::General),
        (b"stats settings\r\n", StatsGroup::Settings),
        (b"stats items\r\n", StatsGroup::Items),
        (b"stats slabs\r\n", StatsGroup::Slabs),
        (b"stats sizes\r\n", StatsGroup::Sizes),
        (b"stats conns\r\n", StatsGroup::Conns),
        (b"stats latency\r\n", StatsGroup::Latency),
        (b"stats reset\r\n", StatsGroup::Reset),
        (
            b"stats detail on\r\n",
            StatsGroup::Detail(Some(DetailAction::On)),
        ),
        (
            b"stats detail dump\r\n",
            StatsGroup::Detail(Some(DetailAction::Dump)),
        ),
        (b"stats detail\r\n", StatsGroup::Detail(None)),
        (b"stats detail x\r\n", StatsGroup::Detail(None)),
        (
            b"stats cachedump 3 10\r\n",
            StatsGroup::Cachedump(Ok((3, 10))),
        ),
        (
            b"stats cachedump 3\r\n",
            StatsGroup::Cachedump(Err(ProtocolError::BadCommandLineShort)),
        ),
        (
            b"stats cachedump x 1\r\n",
            StatsGroup::Cachedump(Err(ProtocolError::BadCommandLine)),
        ),
        (
            b"stats cachedump 64 1\r\n",
            StatsGroup::Cachedump(Err(ProtocolError::IllegalSlabId)),
        ),
        (b"stats sizes_enable\r\n", StatsGroup::SizesEnable),
        (b"stats noreply\r\n", StatsGroup::Other(b"noreply")),
    ] {
        assert_eq!(request(line), Request::Stats(group));
    }
}

#[test]
fn meta_commands() {
    let Request::MetaGet { key, flags } = request(b"mg foo s v t c f h l k O123 q u\r\n") else {
        panic!()
    };
    assert_eq!(key, Key::Borrowed(b"foo"));
    assert_eq!(
        flags,
        MetaFlags {
            tokens: b"s v t c f h l k O123 q u",
            quiet: true,
            opaque: Some(b"123"),
            return_key: true,
            return_value: true,
            return_cas: true,
            return_flags: true,
            return_hit: true,
            return_last_access: true,
            return_size: true,
            return_ttl: true,
            no_bump: true,
            ..MetaFlags::default()
        }
    );
    assert_eq!(
        flags.return_flags().collect::<Vec<_>>(),
        b"stcfhlkO".to_vec()
    );
    let Request::MetaGet { flags, .. } = request(b"mg foo N30 R10 T-1\r\n") else {
        panic!()
    };
    assert_eq!(
        (flags.vivify, flags.recache, flags.ttl),
        (Some(30), Some(10), Some(-1))
    );

    let Request::MetaSet { key, value, flags } = request(b"ms Zm9v 2 b T60 F7 C5 I MA k\r\nhi\r\n")
    else {
        panic!()
    };
    assert_eq!(key.bytes(), b"foo");
    assert!(key.is_base64() && flags.base64 && flags.invalidate && flags.return_key);
    assert_eq!(value, b"hi");
    assert_eq!(
        (
            flags.ttl,
            flags.client_flags,
            flags.compare_cas,
            flags.set_mode
        ),
        (Some(60), Some(7), Some(5), MetaSetMode::Append)
    );
    for (mode, expected) in [
        (&b"ME"[..], MetaSetMode::Add),
        (b"MP", MetaSetMode::Prepend),
        (b"MR", MetaSetMode::Replace),
        (b"MS", MetaSetMode::Set),
    ] {
        let input = [&b"ms k 0 "[..], mode, b"\r\n\r\n"].concat();
        let Request::MetaSet { flags, .. } = request(&input) else {
            panic!()
        };
        assert_eq!(flags.set_mode, expected);
    }

    let Request::MetaDelete { flags, .. } = request(b"md k q I T30 C9\r\n") else {
        panic!()
    };
    assert!(flags.quiet && flags.invalidate);
    assert_eq!((flags.ttl, flags.compare_cas), (Some(30), Some(9)));

    let Request::MetaArith { flags, .. } = request(b"ma k N0 J10 D5 MD v\r\n") else {
        panic!()
    };
    assert_eq!(
        (flags.vivify, flags.initial, flags.delta, flags.arith_mode),
        (Some(0), Some(10), Some(5), MetaArithMode::Decr)
    );
    for (mode, expected) in [
        (&b"M+"[..], MetaArithMode::Incr),
        (b"MI", MetaArithMode::Incr),
        (b"M-", MetaArithMode::Decr),
    ] {
        let input = [&b"ma k "[..], mode, b"\r\n"].concat();
        let Request::MetaArith { flags, .. } = request(&input) else {
            panic!()
        };
        assert_eq!(flags.arith_mode, expected);
    }

    assert_eq!(request(b"mn\r\n"), Request::MetaNoop);
    let Request::MetaDebug { key, base64 } = request(b"me Zm9v b\r\n") else {
        panic!()
    };
    assert!(base64 && key.bytes() == b"foo");
    assert!(matches!(
        request(b"me foo\r\n"),
        Request::MetaDebug { base64: false, .. }
    ));
}

#[test]
fn incomplete_input_asks_for_what_it_needs() {
    let limits = limits();
    assert_eq!(
        parse_request(b"", &limits),
        Parsed::Incomplete { needed: 1 }
    );
    assert_eq!(
        parse_request(b"get k", &limits),
        Parsed::Incomplete { needed: 6 }
    );
    // A data block on its way: the whole of it, so the caller need not call again before.
    let line = b"set k 0 0 100\r\n";
    assert_eq!(
        parse_request(line, &limits),
        Parsed::Incomplete {
            needed: line.len() + 102
        }
    );
    let partial = [&line[..], &[b'x'; 60]].concat();
    assert_eq!(
        parse_request(&partial, &limits),
        Parsed::Incomplete {
            needed: line.len() + 102
        }
    );
    assert_eq!(
        parse_request(b"ms k 3 T1\r\nab", &limits),
        Parsed::Incomplete { needed: 16 }
    );
    // Only the first request counts; what follows is left for the next call.
    assert!(matches!(
        parse_request(b"version\r\nget", &limits),
        Parsed::Request { consumed: 9, .. }
    ));
}

#[test]
fn long_lines_close_the_connection_silently() {
    let limits = limits();
    let too_long = Parsed::Error {
        error: ProtocolError::LineTooLong,
        consumed: 2049,
        swallow: 0,
        close: true,
        silent: true,
        refused: Refused::Nothing,
    };
    // memcached 1.6.18: 2049 bytes without a newline -> closed, nothing sent.
    assert_eq!(parse_request(&[b'x'; 2049], &limits), too_long);
    assert_eq!(
        parse_request(&[b'x'; 2048], &limits),
        Parsed::Incomplete { needed: 2049 }
    );
    // The same when the newline comes later: the decision does not depend on read sizes.
    let mut line = vec![b'x'; 2049];
    line.extend_from_slice(b"\r\n");
    assert!(matches!(
        parse_request(&line, &limits),
        Parsed::Error {
            error: ProtocolError::LineTooLong,
            close: true,
            ..
        }
    ));
    // 2048 bytes and a newline is fine.
    let mut line = b"version ".to_vec();
    line.resize(2048, b'v');
    line.push(b'\n');
    assert!(matches!(
        parse_request(&line, &limits),
        Parsed::Request {
            request: Request::Version,
            ..
        }
    ));
    // Key lists may be long, up to max_key_list_line.
    for prefix in [&b"get "[..], b"gets ", b"  get ", b"gat 0 ", b"gats 0 "] {
        let mut line = prefix.to_vec();
        while line.len() < 5000 {
            line.extend_from_slice(b"key ");
        }
        assert_eq!(
            parse_request(&line, &limits),
            Parsed::Incomplete {
                needed: line.len() + 1
            }
        );
        line.extend_from_slice(b"\r\n");
        let Parsed::Request { request, .. } = parse_request(&line, &limits) else {
            panic!()
        };
        assert!(keys(&request).len() > 1000);
    }
    let small = ParserLimits {
        max_key_list_line: 4096,
        ..limits
    };
    let mut line = b"get ".to_vec();
    line.resize(4097, b'k');
    assert!(matches!(
        parse_request(&line, &small),
        Parsed::Error {
            error: ProtocolError::LineTooLong,
            close: true,
            ..
        }
    ));
}

/// Found by the fuzzer: a long run of leading spaces could be judged before the command after
/// it arrived, so the verdict depended on where the read ended.
#[test]
fn leading_spaces_wait_for_the_command_before_judging_a_long_line() {
    let limits = ParserLimits {
        max_line: 48,
        max_key_list_line: 96,
        max_value: 16,
        ..ParserLimits::default()
    };
    let stream = [&[b' '; 69][..], b"gat        mb\r\nm\x93\n"].concat();
    let whole = events_of(&[&stream], &limits);
    assert_eq!(whole.0.len(), 2, "{whole:?}");
    assert!(whole.0[0].contains("InvalidExptime"));
    let (front, back) = stream.split_at(55);
    assert_eq!(events_of(&[front, back], &limits), whole);
    assert_eq!(
        parse_request(&[b' '; 60], &limits),
        Parsed::Incomplete { needed: 61 }
    );
    assert_eq!(
        parse_request(&[&[b' '; 60][..], b"ge"].concat(), &limits),
        Parsed::Incomplete { needed: 63 }
    );
    // More than 100 spaces, or anything but a key list command, is decided at once.
    assert!(matches!(
        parse_request(&[b' '; 101], &limits),
        Parsed::Error {
            error: ProtocolError::LineTooLong,
            ..
        }
    ));
    assert!(matches!(
        parse_request(&[&[b' '; 60][..], b"set"].concat(), &limits),
        Parsed::Error {
            error: ProtocolError::LineTooLong,
            ..
        }
    ));
}

#[test]
fn values_over_the_limit_are_swallowed() {
    let limits = ParserLimits {
        max_value: 1000,
        ..ParserLimits::default()
    };
    let line = b"set k 0 0 1001\r\n";
    assert_eq!(
        parse_request(line, &limits),
        Parsed::Error {
            error: ProtocolError::ValueTooLarge,
            consumed: line.len(),
            swallow: 1003,
            close: false,
            silent: false,
            refused: Refused::TooLarge {
                key: Key::Borrowed(b"k"),
                store: TooLargeStore::Text(StoreCommand::Set),
            },
        }
    );
    // noreply: memcached 1.6.18 swallows silently.
    assert!(matches!(
        parse_request(b"set k 0 0 1001 noreply\r\n", &limits),
        Parsed::Error {
            error: ProtocolError::ValueTooLarge,
            swallow: 1003,
            silent: true,
            ..
        }
    ));
    // Meta: never silent, even with q.
    assert!(matches!(
        parse_request(b"ms k 1001 q\r\n", &limits),
        Parsed::Error {
            error: ProtocolError::ValueTooLarge,
            swallow: 1003,
            silent: false,
            ..
        }
    ));
    // A meta flag error also swallows the block (its length is known by then).
    assert!(matches!(
        parse_request(b"ms k 5 zz\r\n", &limits),
        Parsed::Error {
            error: ProtocolError::InvalidFlag,
            consumed: 11,
            swallow: 7,
            ..
        }
    ));
    // Through a connection: the swallowed block is dropped and the next command parsed.
    let stream = [
        &b"set k 0 0 1001\r\n"[..],
        &[b'v'; 1001],
        b"\r\nversion\r\n",
    ]
    .concat();
    let (events, rest) = events_of(&[&stream], &limits);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[1].contains("Version"));
    assert_eq!(rest, Some(0));
}

#[test]
fn keys_and_values_borrow_from_the_input() {
    let inputs: [&[u8]; 6] = [
        b"get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        b"get k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n",
        b"set k 0 0 5\r\nhello\r\n",
        b"mg Zm9v b v k c t O1\r\n",
        b"ms k 2 T0 F1\r\nhi\r\n",
        b"flush_all 0 noreply\r\n",
    ];
    let limits = limits();
    let before = ALLOCATIONS.with(Cell::get);
    let mut parsed = 0;
    for input in inputs {
        for _ in 0..100 {
            if let Parsed::Request { consumed, .. } = parse_request(input, &limits) {
                parsed += consumed;
            }
        }
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert!(parsed > 0);
    assert_eq!(after - before, 0, "parse_request allocated");
}

#[test]
fn binary_frames_borrow_from_the_input() {
    use ferrocache_protocol::binary::{BinaryLimits, BinaryParsed, client, parse_binary};
    let mut get = Vec::new();
    client::encode_frame(&mut get, 0x0c, 1, 0, &[], &[b'k'; 32], &[]);
    let mut set = Vec::new();
    client::encode_frame(&mut set, 0x01, 2, 0, &[0; 8], b"key", &[b'v'; 100]);
    let mut incr = Vec::new();
    client::encode_frame(&mut incr, 0x05, 3, 0, &[0; 20], b"n", &[]);
    let mut refused = Vec::new();
    client::encode_frame(&mut refused, 0x50, 4, 0, &[], b"k", &[]);
    let limits = BinaryLimits::default();
    let before = ALLOCATIONS.with(Cell::get);
    let mut parsed = 0;
    for input in [&get, &set, &incr, &refused] {
        for _ in 0..100 {
            match parse_binary(input, &limits) {
                BinaryParsed::Request { consumed, .. } | BinaryParsed::Error { consumed, .. } => {
                    parsed += consumed
                }
                BinaryParsed::Incomplete { .. } => {}
            }
        }
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert!(parsed > 0);
    assert_eq!(after - before, 0, "parse_binary allocated");
}

/// The parse error (and reply) of a one-line request.
fn error_of(input: &[u8]) -> ProtocolError {
    match parse_request(input, &limits()) {
        Parsed::Error { error, .. } => error,
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn lru_crawler_commands_as_memcached_tells_them_apart() {
    use CrawlTarget::*;
    use LruCrawlerCommand::*;
    let cases: [(&[u8], LruCrawlerCommand); 12] = [
        (b"lru_crawler metadump all\r\n", Metadump(All)),
        (b"lru_crawler metadump hash\r\n", Metadump(Hash)),
        (b"lru_crawler metadump 1\r\n", Metadump(Classes(1 << 1))),
        (
            b"lru_crawler metadump 1,,63\r\n",
            Metadump(Classes(1 << 1 | 1 << 63)),
        ),
        (b"lru_crawler metadump ,\r\n", Metadump(Classes(0))),
        (b"lru_crawler metadump 0\r\n", Metadump(BadClass)),
        (b"lru_crawler metadump 64\r\n", Metadump(BadClass)),
        (b"lru_crawler crawl 2,x\r\n", Crawl(BadClass)),
        (b"lru_crawler tocrawl 5\r\n", Tocrawl(5)),
        (b"lru_crawler sleep 2000000\r\n", Sleep(2_000_000)),
        (b"lru_crawler enable\r\n", Enable),
        (b"lru_crawler disable\r\n", Disable),
    ];
    for (input, expected) in cases {
        assert_eq!(
            request(input),
            Request::LruCrawler(expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    for input in [
        b"lru_crawler\r\n".as_slice(),
        b"lru_crawler metadump\r\n",
        b"lru_crawler metadump all extra\r\n",
        b"lru_crawler metadump all noreply\r\n",
        b"lru_crawler foo\r\n",
        b"lru_crawler enable now\r\n",
    ] {
        assert_eq!(error_of(input), ProtocolError::UnknownCommand);
    }
    assert_eq!(
        error_of(b"lru_crawler tocrawl x\r\n"),
        ProtocolError::BadCommandLine
    );
    assert_eq!(
        error_of(b"lru_crawler sleep -1\r\n"),
        ProtocolError::BadCommandLine
    );
}

#[test]
fn slabs_commands_as_memcached_reads_them() {
    use SlabsCommand::*;
    let cases: [(&[u8], SlabsCommand); 7] = [
        (b"slabs reassign 1 2\r\n", Reassign { src: 1, dst: 2 }),
        (b"slabs reassign -1 0\r\n", Reassign { src: -1, dst: 0 }),
        (b"slabs reassign 3 3\r\n", Reassign { src: 3, dst: 3 }),
        (
            b"slabs automove 0\r\n",
            Automove {
                level: 0,
                noreply: false,
            },
        ),
        (
            b"slabs automove 2 noreply\r\n",
            Automove {
                level: 2,
                noreply: true,
            },
        ),
        // strtoul's 64 bits truncated into memcached's uint32_t.
        (
            b"slabs automove 4294967297\r\n",
            Automove {
                level: 1,
                noreply: false,
            },
        ),
        (
            b"slabs automove 1 extra\r\n",
            Automove {
                level: 1,
                noreply: false,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            request(input),
            Request::Slabs(expected),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    match request(b"slabs automove ratio 0.5 noreply\r\n") {
        Request::Slabs(Ratio { ratio, noreply }) => {
            assert_eq!(ratio.get(), 0.5);
            assert!(noreply);
        }
        other => panic!("{other:?}"),
    }
    for input in [
        b"slabs\r\n".as_slice(),
        b"slabs reassign\r\n",
        b"slabs reassign 1\r\n",
        b"slabs reassign 1 2 noreply\r\n",
        b"slabs automove\r\n",
        b"slabs automove 3\r\n",
        b"slabs automove ratio\r\n",
        b"slabs automove ratio x\r\n",
        b"slabs foo 1 2\r\n",
    ] {
        assert_eq!(
            error_of(input),
            ProtocolError::UnknownCommand,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    for input in [
        b"slabs reassign x 2\r\n".as_slice(),
        b"slabs reassign 1 2x\r\n",
        b"slabs automove x\r\n",
        b"slabs automove -1\r\n",
    ] {
        assert_eq!(
            error_of(input),
            ProtocolError::BadCommandLine,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // automove's errors are silent under noreply; reassign takes no noreply.
    for input in [
        b"slabs automove 3 noreply\r\n".as_slice(),
        b"slabs automove x noreply\r\n",
        b"slabs automove ratio x noreply\r\n",
    ] {
        match parse_request(input, &limits()) {
            Parsed::Error { silent, .. } => assert!(silent),
            other => panic!("{other:?}"),
        }
    }
}
