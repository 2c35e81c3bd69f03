//! `-S` through the real binary session: memcached 1.6.18's answers (captured side by side
//! with it and Cyrus SASL, daemon/tests/sasl.rs) for the refusal before authentication, a
//! successful PLAIN login, a failed one, and the counters they move.

use super::Harness;
use crate::auth::sasl::SaslAuth;

/// A request frame with opaque 0x11223344.
fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = (extras.len() + key.len() + value.len()) as u32;
    let mut bytes = vec![0x80, opcode];
    bytes.extend_from_slice(&(key.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    bytes.extend_from_slice(&body.to_be_bytes());
    bytes.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(extras);
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(value);
    bytes
}

/// A response frame as memcached writes it (CAS 0).
fn answer(opcode: u8, status: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x81, opcode, 0, 0, 0, 0];
    bytes.extend_from_slice(&status.to_be_bytes());
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&0x1122_3344u32.to_be_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(body);
    bytes
}

fn server() -> Harness {
    // A database of its own for each server: the tests run in parallel, and a check reads
    // the file at each login, so one test rewriting a shared file made another's login fail.
    static SERVERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let serial = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "ferrocache-sasl-harness-{}-{serial}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("pwdb");
    std::fs::write(&path, "alice:secret\n").expect("the pwdb");
    let sasl = SaslAuth::load(&path).expect("a readable pwdb");
    Harness::with_sasl(&["-S"], Some(sasl))
}

fn auth_counters(harness: &Harness) -> (u64, u64) {
    let mut conn = harness.connect();
    // Stats need a logged-in connection too.
    conn.send(&frame(0x21, &[], b"PLAIN", b"\0alice\0secret"));
    let stats = conn.send(&frame(0x10, &[], &[], &[]));
    let text = String::from_utf8_lossy(&stats).into_owned();
    let value = |name: &str| -> u64 {
        let at = text.find(name).expect("the stat") + name.len();
        text[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("a number")
    };
    (value("auth_cmds"), value("auth_errors"))
}

#[test]
fn commands_before_auth_are_refused_and_close() {
    let harness = server();
    let mut conn = harness.connect();
    assert_eq!(
        conn.send(&frame(0x0b, &[], &[], &[])),
        answer(0x0b, 0, crate::VERSION.as_bytes())
    );
    // The refusal comes once extras and key are in, without the value, and closes.
    let set = frame(0x01, &[0; 8], b"k", b"value");
    assert_eq!(conn.send(&set[..33]), answer(0x01, 0x20, b"Auth failure."));
    assert!(conn.is_closed());
}

#[test]
fn plain_login_then_set_and_get() {
    let harness = server();
    let mut conn = harness.connect();
    assert_eq!(
        conn.send(&frame(0x20, &[], &[], &[])),
        answer(0x20, 0, b"PLAIN")
    );
    assert_eq!(
        conn.send(&frame(0x21, &[], b"PLAIN", b"\0alice\0secret")),
        answer(0x21, 0, b"Authenticated")
    );
    let stored = conn.send(&frame(0x01, &[0; 8], b"k", b"v"));
    assert_eq!(&stored[6..8], &[0, 0]);
    let got = conn.send(&frame(0x00, &[], b"k", &[]));
    assert_eq!(&got[6..8], &[0, 0]);
    assert!(got.ends_with(b"v"));
    assert!(!conn.is_closed());
}

#[test]
fn failed_login_stays_open_but_refuses() {
    let harness = server();
    let mut conn = harness.connect();
    assert_eq!(
        conn.send(&frame(0x21, &[], b"PLAIN", b"\0alice\0wrong")),
        answer(0x21, 0x20, b"Auth failure.")
    );
    assert!(!conn.is_closed());
    assert_eq!(
        conn.send(&frame(0x22, &[], b"PLAIN", b"\0alice\0secret")),
        answer(0x22, 0x20, b"Auth failure.")
    );
    assert_eq!(
        conn.send(&frame(0x0a, &[], &[], &[])),
        answer(0x0a, 0x20, b"Auth failure.")
    );
    assert!(conn.is_closed());
    // Two failures, then the counting connection's success.
    assert_eq!(auth_counters(&harness), (3, 2));
}

#[test]
fn plain_in_two_steps_and_long_mechanism() {
    let harness = server();
    let mut conn = harness.connect();
    assert_eq!(
        conn.send(&frame(0x21, &[], b"PLAIN", &[])),
        answer(0x21, 0x21, b"")
    );
    assert_eq!(
        conn.send(&frame(0x22, &[], b"PLAIN", b"\0alice\0secret")),
        answer(0x22, 0, b"Authenticated")
    );
    assert_eq!(
        conn.send(&frame(0x21, &[], &[b'X'; 33], b"x")),
        answer(0x21, 0x04, b"Invalid arguments")
    );
    // Still logged in: a too-long mechanism is refused before the exchange is touched.
    assert_eq!(conn.send(&frame(0x0a, &[], &[], &[])), answer(0x0a, 0, b""));
}
