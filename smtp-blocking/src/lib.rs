//! A blocking SMTP client over `std::net` and rustls.
#![forbid(unsafe_code)]
