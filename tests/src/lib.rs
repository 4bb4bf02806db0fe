//! Helpers that start real SMTP servers on loopback for the interoperability tests.
#![forbid(unsafe_code)]
