//! Logging through `tracing` with the `tracing` feature, and nothing without it.
//!
//! Every event carries the server as the `server` field: `log!(warn, server, "…", args)`.

#[cfg(feature = "tracing")]
macro_rules! log {
    ($level:ident, $server:expr, $($message:tt)+) => {
        tracing::$level!(server = %$server, $($message)+)
    };
}

#[cfg(not(feature = "tracing"))]
macro_rules! log {
    ($level:ident, $server:expr, $($message:tt)+) => {{
        // Type-checks the arguments, so the code compiles the same with and without the feature.
        let _ = (&$server, format_args!($($message)+));
    }};
}

pub(crate) use log;

/// Tells whether trace-level events would be recorded, which is when the session transcript is
/// worth producing for the wire log.
pub(crate) fn wire_log_enabled() -> bool {
    #[cfg(feature = "tracing")]
    return tracing::enabled!(tracing::Level::TRACE);
    #[cfg(not(feature = "tracing"))]
    return false;
}
