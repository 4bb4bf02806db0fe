//! A wrapper for passwords, tokens and SASL payloads.

use std::fmt;

/// A value that must never be printed: its `Debug` output is always `Secret(<redacted>)`, in
/// debug and release builds alike, and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Returns the wrapped value, for the one place that has to send it.
    pub const fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_value() {
        let secret = Secret::new(String::from("s3cret-example"));

        let printed = format!("{secret:?} {:#?}", secret);

        assert!(!printed.contains("s3cret"), "{printed}");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn expose_returns_value() {
        assert_eq!(Secret::new(7).expose(), &7);
    }
}
