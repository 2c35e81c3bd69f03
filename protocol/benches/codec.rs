//! Codec cost per operation: parsing `get <32-byte key>`, a 100-byte `set`, a 10-key `get`,
//! and encoding a 100-byte `VALUE` reply.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrocache_protocol::reply;
use ferrocache_protocol::{Parsed, ParserLimits, parse_request};

fn parse_one(c: &mut Criterion, name: &str, input: &[u8]) {
    let limits = ParserLimits::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| match parse_request(black_box(input), &limits) {
            Parsed::Request { consumed, .. } => consumed,
            other => panic!("{other:?}"),
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let key32 = "k".repeat(32);
    parse_one(c, "get 32-byte key", format!("get {key32}\r\n").as_bytes());

    let value = vec![b'v'; 100];
    let set = [
        format!("set {key32} 0 0 100\r\n").as_bytes(),
        &value,
        b"\r\n",
    ]
    .concat();
    parse_one(c, "set 100-byte value", &set);

    let keys: Vec<String> = (0..10).map(|i| format!("key:{i:028}")).collect();
    parse_one(
        c,
        "get 10 keys",
        format!("get {}\r\n", keys.join(" ")).as_bytes(),
    );

    let mut out = Vec::with_capacity(256);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("VALUE 100 bytes", |b| {
        b.iter(|| {
            out.clear();
            reply::value(
                &mut out,
                black_box(key32.as_bytes()),
                black_box(0),
                black_box(Some(123_456)),
                black_box(&value),
            );
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
