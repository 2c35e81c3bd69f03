//! Binary codec cost per operation, beside `codec.rs`'s text figures: parsing a GET of a
//! 32-byte key, a SET of a 100-byte value, a GETKQ x10 + NOOP pipeline, and encoding a
//! 100-byte GETK hit.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferrocache_protocol::binary::client::encode_frame;
use ferrocache_protocol::binary::response::{self, Echo};
use ferrocache_protocol::binary::{BinaryLimits, BinaryParsed, Opcode, parse_binary};

fn parse_all(input: &[u8], limits: &BinaryLimits) -> usize {
    let mut at = 0;
    while at < input.len() {
        match parse_binary(&input[at..], limits) {
            BinaryParsed::Request { consumed, .. } => at += consumed,
            other => panic!("{other:?}"),
        }
    }
    at
}

fn binary(c: &mut Criterion) {
    let limits = BinaryLimits::default();
    let key32 = [b'k'; 32];
    let value = [b'v'; 100];
    let mut get = Vec::new();
    encode_frame(&mut get, Opcode::Get.byte(), 1, 0, &[], &key32, &[]);
    let mut set = Vec::new();
    encode_frame(&mut set, Opcode::Set.byte(), 1, 0, &[0; 8], &key32, &value);
    let mut multi = Vec::new();
    for i in 0..10 {
        let key = format!("key:{i:028}");
        encode_frame(
            &mut multi,
            Opcode::GetKQ.byte(),
            i,
            0,
            &[],
            key.as_bytes(),
            &[],
        );
    }
    encode_frame(&mut multi, Opcode::Noop.byte(), 10, 0, &[], &[], &[]);

    let mut group = c.benchmark_group("parse_binary");
    group.throughput(Throughput::Elements(1));
    for (name, input) in [
        ("get 32-byte key", &get),
        ("set 100-byte value", &set),
        ("getkq x10 + noop", &multi),
    ] {
        group.bench_function(name, |b| b.iter(|| parse_all(black_box(input), &limits)));
    }
    group.finish();

    let mut out = Vec::with_capacity(256);
    let echo = Echo {
        opcode: Opcode::GetK,
        opaque: 7,
    };
    let mut group = c.benchmark_group("encode_binary");
    group.throughput(Throughput::Elements(1));
    group.bench_function("getk hit 100 bytes", |b| {
        b.iter(|| {
            out.clear();
            response::hit(
                &mut out,
                black_box(echo),
                black_box(123_456),
                black_box(0),
                Some(black_box(&key32)),
                black_box(&value),
            );
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, binary);
criterion_main!(benches);
