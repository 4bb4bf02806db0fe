//! A sans-IO SMTP client protocol state machine.
#![forbid(unsafe_code)]
