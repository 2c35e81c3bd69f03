//! The client side of the protocol: requests encoded into a caller-owned buffer, and the
//! server's replies parsed incrementally, for `ferrocache-client` and `ferrocache-bench`.
//!
//! Owns: request bytes as a client sends them and the reply grammar as a client reads it. Must
//! not touch: sockets, routing or timeouts (the client crate's).
