//! Reply encoder bytes, checked against replies captured from memcached 1.6.18 (Debian build).

use ferrocache_protocol::reply::{self, MetaItem, MetaStatus};
use ferrocache_protocol::{MetaCommand, MetaFlags, Parsed, ParserLimits, Request, parse_request};

fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out);
    out
}

/// The flags of a meta request line, for building replies to it.
fn meta_flags(line: &[u8]) -> MetaFlags<'_> {
    match parse_request(line, &ParserLimits::default()) {
        Parsed::Request {
            request:
                Request::MetaGet { flags, .. }
                | Request::MetaDelete { flags, .. }
                | Request::MetaArith { flags, .. }
                | Request::MetaSet { flags, .. },
            ..
        } => flags,
        other => panic!("{other:?}"),
    }
}

/// What [`reply::meta_reply`] writes; empty when `q` hides the status, which it must also
/// report by returning false.
fn meta_reply(
    command: MetaCommand,
    status: MetaStatus,
    flags: &MetaFlags<'_>,
    item: &MetaItem<'_>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let sent = reply::meta_reply(&mut out, command, status, flags, item);
    assert_eq!(
        sent,
        !out.is_empty(),
        "the return value says whether it wrote"
    );
    out
}

#[test]
fn text_replies() {
    // memcached 1.6.18: `get vk` after `set vk 5 0 3` -> VALUE vk 5 3 / abc / END.
    assert_eq!(
        written(|out| {
            reply::value(out, b"vk", 5, None, b"abc");
            out.extend_from_slice(reply::END);
        }),
        b"VALUE vk 5 3\r\nabc\r\nEND\r\n"
    );
    // `gets vk`: the CAS unique follows the length.
    assert_eq!(
        written(|out| reply::value(out, b"vk", 5, Some(194), b"abc")),
        b"VALUE vk 5 3 194\r\nabc\r\n"
    );
    assert_eq!(
        written(|out| {
            reply::value_header(out, b"k", u32::MAX, 0, Some(u64::MAX));
            reply::value_end(out);
        }),
        b"VALUE k 4294967295 0 18446744073709551615\r\n\r\n"
    );
    // `incr n 18446744073709551615` on 0.
    assert_eq!(
        written(|out| reply::number(out, u64::MAX)),
        b"18446744073709551615\r\n"
    );
    assert_eq!(
        written(|out| reply::version(out, "1.6.18")),
        b"VERSION 1.6.18\r\n"
    );
    assert_eq!(
        written(|out| {
            reply::stat_u64(out, b"maxconns", 1024);
            reply::stat(out, b"inter", b"127.0.0.1");
        }),
        b"STAT maxconns 1024\r\nSTAT inter 127.0.0.1\r\n"
    );
    assert_eq!(
        written(|out| reply::server_error(out, "out of memory")),
        b"SERVER_ERROR out of memory\r\n"
    );
    assert_eq!(
        written(|out| reply::client_error(out, "bad data chunk")),
        b"CLIENT_ERROR bad data chunk\r\n"
    );
}

#[test]
fn meta_get_replies() {
    let item = MetaItem {
        key: b"k",
        cas: 16,
        client_flags: 0,
        ttl: -1,
        size: 2,
        hit_before: false,
        last_access: 0,
        ..MetaItem::default()
    };
    // memcached 1.6.18: `mg k s t f h l c k O9 v` -> `VA 2 s2 t-1 f0 h0 l0 c16 kk O9`.
    let flags = meta_flags(b"mg k s t f h l c k O9 v\r\n");
    assert_eq!(
        meta_reply(
            MetaCommand::Get,
            MetaStatus::Value { len: 2 },
            &flags,
            &item
        ),
        b"VA 2 s2 t-1 f0 h0 l0 c16 kk O9\r\n"
    );
    // `mg k s t f h l c k O9 q` (hit, no v): HD is not hidden by q for mg.
    let flags = meta_flags(b"mg k s t f h l c k O9 q\r\n");
    let hit = MetaItem {
        hit_before: true,
        last_access: 1,
        ..item
    };
    assert_eq!(
        meta_reply(MetaCommand::Get, MetaStatus::Done, &flags, &hit),
        b"HD s2 t-1 f0 h1 l1 c16 kk O9\r\n"
    );
    // ... but EN is.
    assert!(meta_reply(MetaCommand::Get, MetaStatus::Miss, &flags, &hit).is_empty());
    // A miss echoes only O and k: `mg k v k O123` -> `EN kk O123`.
    let flags = meta_flags(b"mg k v s k O123\r\n");
    assert_eq!(
        meta_reply(MetaCommand::Get, MetaStatus::Miss, &flags, &item),
        b"EN kk O123\r\n"
    );
    // Base64 key: `k` is re-encoded and followed by `b`, wherever `b` was; after `md Zm9v b I`,
    // the next two `mg Zm9v b k v c t` got `... X W` then `... Z X`.
    let flags = meta_flags(b"mg Zm9v b k v c t\r\n");
    let stale = MetaItem {
        key: b"foo",
        cas: 23,
        ttl: 30,
        stale: true,
        win: true,
        ..MetaItem::default()
    };
    assert_eq!(
        meta_reply(
            MetaCommand::Get,
            MetaStatus::Value { len: 2 },
            &flags,
            &stale
        ),
        b"VA 2 kZm9v b c23 t30 X W\r\n"
    );
    let later = MetaItem {
        win: false,
        win_sent: true,
        ..stale
    };
    assert_eq!(
        meta_reply(
            MetaCommand::Get,
            MetaStatus::Value { len: 2 },
            &flags,
            &later
        ),
        b"VA 2 kZm9v b c23 t30 Z X\r\n"
    );
}

#[test]
fn meta_set_delete_arith_replies() {
    // `ms k 2 v s t c f l h O k v ...` -> ms answers only c, k, O: `HD c16 kk O9`.
    let flags = meta_flags(b"ms k 2 s t c f l h k O9\r\nab\r\n");
    let item = MetaItem {
        key: b"k",
        cas: 16,
        ..MetaItem::default()
    };
    assert_eq!(
        meta_reply(MetaCommand::Set, MetaStatus::Done, &flags, &item),
        b"HD c16 kk O9\r\n"
    );
    // `ms k 2 ME c k` on an existing key -> `NS c0 kk`.
    let flags = meta_flags(b"ms k 2 ME c k\r\nab\r\n");
    let not_stored = MetaItem {
        key: b"k",
        ..MetaItem::default()
    };
    assert_eq!(
        meta_reply(MetaCommand::Set, MetaStatus::NotStored, &flags, &not_stored),
        b"NS c0 kk\r\n"
    );
    // `ms Zm9v 2 b k c O1 T0` -> `HD kZm9v b c22 O1`.
    let flags = meta_flags(b"ms Zm9v 2 b k c O1 T0\r\nab\r\n");
    let foo = MetaItem {
        key: b"foo",
        cas: 22,
        ..MetaItem::default()
    };
    assert_eq!(
        meta_reply(MetaCommand::Set, MetaStatus::Done, &flags, &foo),
        b"HD kZm9v b c22 O1\r\n"
    );
    // q hides ms's and md's HD, not md's NF (1.6.18 sends `NF` to `md k q`).
    let quiet = meta_flags(b"md k q\r\n");
    for command in [MetaCommand::Set, MetaCommand::Delete] {
        assert!(meta_reply(command, MetaStatus::Done, &quiet, &item).is_empty());
    }
    assert_eq!(
        meta_reply(MetaCommand::Delete, MetaStatus::NotFound, &quiet, &item),
        b"NF\r\n"
    );
    // `md k C1 k` -> `EX kk`.
    let flags = meta_flags(b"md k C1 k\r\n");
    assert_eq!(
        meta_reply(MetaCommand::Delete, MetaStatus::Exists, &flags, &item),
        b"EX kk\r\n"
    );
    // `ma n v t c k O1 N0 s f` on "7" -> `VA 1 t-1 c20 kn O1` then `8`: ma writes t, c, O, k.
    let flags = meta_flags(b"ma n v t c k O1 N0 s f\r\n");
    let counter = MetaItem {
        key: b"n",
        cas: 20,
        ttl: -1,
        size: 1,
        ..MetaItem::default()
    };
    let mut out = meta_reply(
        MetaCommand::Arith,
        MetaStatus::Value { len: 1 },
        &flags,
        &counter,
    );
    out.extend_from_slice(b"8");
    reply::value_end(&mut out);
    assert_eq!(out, b"VA 1 t-1 c20 kn O1\r\n8\r\n");
    // q hides ma's VA as well (1.6.18 sends nothing to `ma n q v`), not NF.
    let quiet = meta_flags(b"ma n q v\r\n");
    assert!(
        meta_reply(
            MetaCommand::Arith,
            MetaStatus::Value { len: 1 },
            &quiet,
            &counter
        )
        .is_empty()
    );
    // `ma zz2 t c k O1` on a missing key -> `NF kzz2 O1`.
    let flags = meta_flags(b"ma zz2 t c k O1\r\n");
    let missing = MetaItem {
        key: b"zz2",
        ..MetaItem::default()
    };
    assert_eq!(
        meta_reply(MetaCommand::Arith, MetaStatus::NotFound, &flags, &missing),
        b"NF kzz2 O1\r\n"
    );
}

#[test]
fn command_agnostic_meta_form() {
    let flags = meta_flags(b"mg k v k O1 q\r\n");
    let item = MetaItem {
        key: b"k",
        ..MetaItem::default()
    };
    assert!(!reply::meta(
        &mut Vec::new(),
        MetaStatus::Miss,
        &flags,
        &item
    ));
    assert!(!reply::meta(
        &mut Vec::new(),
        MetaStatus::Done,
        &flags,
        &item
    ));
    assert_eq!(
        written(|out| {
            reply::meta(out, MetaStatus::Value { len: 0 }, &flags, &item);
        }),
        b"VA 0 kk O1\r\n"
    );
}

#[test]
fn meta_debug_reply() {
    // memcached 1.6.18: `me Zm9v b` -> `ME Zm9v exp=-1 la=0 cas=22 fetch=yes cls=1 size=64`.
    assert_eq!(
        written(|out| reply::meta_debug(out, b"foo", true, -1, 0, 22, true, 1, 64)),
        b"ME Zm9v exp=-1 la=0 cas=22 fetch=yes cls=1 size=64\r\n"
    );
    // `me k` -> `ME k exp=-1 la=5 cas=16 fetch=yes cls=1 size=62`.
    assert_eq!(
        written(|out| reply::meta_debug(out, b"k", false, -1, 5, 16, true, 1, 62)),
        b"ME k exp=-1 la=5 cas=16 fetch=yes cls=1 size=62\r\n"
    );
    assert_eq!(
        written(|out| reply::meta_debug(out, b"k", false, 30, 0, 1, false, 2, 70)),
        b"ME k exp=30 la=0 cas=1 fetch=no cls=2 size=70\r\n"
    );
}

#[test]
fn metadump_and_cachedump_lines() {
    assert_eq!(
        written(|out| reply::metadump_item(out, b"a", None, 1_796_619_095, 1, true, 1, 61)),
        b"key=a exp=-1 la=1796619095 cas=1 fetch=yes cls=1 size=61\n"
    );
    // memcached 1.6.18's line for the key `b%20c/\xff`.
    assert_eq!(
        written(|out| reply::metadump_item(
            out,
            b"b%20c/\xff",
            Some(1_796_619_195),
            1_796_619_095,
            2,
            false,
            1,
            73
        )),
        b"key=b%2520c%2F%FF exp=1796619195 la=1796619095 cas=2 fetch=no cls=1 size=73\n"
    );
    assert_eq!(
        written(|out| reply::uri_encode(b"AZaz09-._~ +:", out)),
        b"AZaz09-._~%20%2B%3A"
    );
    assert_eq!(
        written(|out| reply::cachedump_item(out, b"a", 1, None)),
        b"ITEM a [1 b; 0 s]\r\n"
    );
    assert_eq!(
        written(|out| reply::cachedump_item(out, b"k", 3, Some(1_796_619_195))),
        b"ITEM k [3 b; 1796619195 s]\r\n"
    );
}
