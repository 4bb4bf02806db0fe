//! Logging macros that forward to `tracing` with the `tracing` feature and compile to nothing
//! without it. Only the format-string form is supported, so both expansions take the same input.

#[cfg(feature = "tracing")]
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        tracing::$level!($($arg)+)
    };
}

#[cfg(not(feature = "tracing"))]
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {{
        // Type-checks the arguments, so code compiles the same with and without the feature.
        let _ = format_args!($($arg)+);
    }};
}

macro_rules! log_trace {
    ($($arg:tt)+) => { $crate::log::log!(trace, $($arg)+) };
}

macro_rules! log_debug {
    ($($arg:tt)+) => { $crate::log::log!(debug, $($arg)+) };
}

macro_rules! log_info {
    ($($arg:tt)+) => { $crate::log::log!(info, $($arg)+) };
}

macro_rules! log_warn {
    ($($arg:tt)+) => { $crate::log::log!(warn, $($arg)+) };
}

pub(crate) use {log, log_debug, log_info, log_trace, log_warn};

/// Tells whether trace-level events would be recorded, so the session transcript is worth
/// producing for the wire log.
pub(crate) fn trace_enabled() -> bool {
    #[cfg(feature = "tracing")]
    return tracing::enabled!(tracing::Level::TRACE);
    #[cfg(not(feature = "tracing"))]
    return false;
}
