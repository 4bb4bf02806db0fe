//! Service extensions a server offers in its EHLO reply (RFC 5321 section 4.1.1.1).

use bytes::Bytes;

use crate::auth::Mechanism;
use crate::reply::{Reply, ReplyCode};

/// The extensions of an EHLO reply, a set keyed by case-insensitive keyword that keeps the
/// parameters of each and unknown keywords too (RFC 5321 section 4.1.1.1).
///
/// The first line of the reply is the server's domain and greeting, and each later line is one
/// `ehlo-keyword *( SP ehlo-param )`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    greeting: Bytes,
    offered: Vec<Capability>,
}

impl Capabilities {
    /// Reads the capabilities from a 250 reply to EHLO or LHLO.
    ///
    /// Reading never fails. A line without a keyword, such as the empty last line some servers
    /// send, adds nothing. A keyword sent twice keeps one entry with the parameters of both,
    /// each once. Any reply code other than 250 gives empty capabilities and greeting.
    pub fn from_ehlo_reply(reply: &Reply) -> Self {
        let mut capabilities = Self::default();
        if reply.code() != ReplyCode::OK {
            return capabilities;
        }

        let mut lines = reply.lines();
        if let Some(greeting) = lines.next() {
            capabilities.greeting = Bytes::copy_from_slice(greeting);
        }
        for line in lines {
            capabilities.add_line(line);
        }
        capabilities
    }

    /// Returns whether no extension is offered.
    pub fn is_empty(&self) -> bool {
        self.offered.is_empty()
    }

    /// Returns whether the extension `keyword` is offered, comparing case-insensitively.
    pub fn contains(&self, keyword: &str) -> bool {
        self.get(keyword).is_some()
    }

    /// Returns the extension `keyword`, comparing case-insensitively.
    pub fn get(&self, keyword: &str) -> Option<&Capability> {
        self.offered
            .iter()
            .find(|capability| capability.keyword.eq_ignore_ascii_case(keyword))
    }

    /// Returns the offered extensions in the order the server listed them.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.offered.iter()
    }

    /// Returns whether `extension` is offered.
    pub fn has(&self, extension: Extension) -> bool {
        self.offered
            .iter()
            .any(|capability| capability.extension == extension)
    }

    /// Returns the message size limit of the SIZE extension (RFC 1870 section 4), or `None` when
    /// SIZE is not offered.
    ///
    /// A bare `SIZE` and `SIZE 0` both mean no fixed limit.
    pub fn size(&self) -> Option<SizeLimit> {
        let capability = self
            .offered
            .iter()
            .find(|capability| capability.extension == Extension::Size)?;

        // NOTE: a parameter that is not a decimal number, or one too large for u64, is read as
        // no fixed limit, because the server still enforces its own limit on MAIL or DATA.
        let limit = capability
            .params
            .first()
            .filter(|param| param.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|param| param.parse::<u64>().ok());
        match limit {
            None | Some(0) => Some(SizeLimit::Unlimited),
            Some(max) => Some(SizeLimit::Max(max)),
        }
    }

    /// Returns the SASL mechanisms of the AUTH extension (RFC 4954 section 3), each once, in the
    /// order the server listed them.
    pub fn auth_mechanisms(&self) -> Vec<Mechanism> {
        let mut mechanisms = Vec::new();
        let Some(capability) = self
            .offered
            .iter()
            .find(|capability| capability.extension == Extension::Auth)
        else {
            return mechanisms;
        };

        for name in &capability.params {
            let mechanism = Mechanism::from_name(name);
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        mechanisms
    }

    /// Returns the text of the first line of the reply: the server's domain, then any greeting.
    pub fn greeting(&self) -> &[u8] {
        &self.greeting
    }

    /// Adds the keyword and parameters of one line after the first.
    fn add_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let Some(first) = words.next() else {
            return;
        };

        // Early drafts of the AUTH extension wrote `AUTH=LOGIN PLAIN`, and some servers still
        // offer that form next to `AUTH LOGIN PLAIN`.
        let (keyword, first_param) = match first.split_once('=') {
            Some((keyword, param)) if keyword.eq_ignore_ascii_case("AUTH") => {
                (keyword, Some(param).filter(|param| !param.is_empty()))
            }
            _ => (first, None),
        };

        let position = self
            .offered
            .iter()
            .position(|capability| capability.keyword.eq_ignore_ascii_case(keyword));
        let index = position.unwrap_or_else(|| {
            self.offered.push(Capability {
                keyword: keyword.to_owned(),
                extension: Extension::from_keyword(keyword),
                params: Vec::new(),
            });
            self.offered.len() - 1
        });
        let capability = &mut self.offered[index];
        for param in first_param.into_iter().chain(words) {
            if !capability.params.iter().any(|known| known == param) {
                capability.params.push(param.to_owned());
            }
        }
    }
}

/// One extension offered in an EHLO reply: its keyword and parameters (RFC 5321 section
/// 4.1.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    keyword: String,
    extension: Extension,
    params: Vec<String>,
}

impl Capability {
    /// Returns the keyword as the server sent it, such as `Auth`.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// Returns the extension the keyword names.
    pub fn extension(&self) -> Extension {
        self.extension.clone()
    }

    /// Returns the parameters after the keyword, as lossy UTF-8.
    pub fn params(&self) -> &[String] {
        &self.params
    }
}

/// A service extension keyword (RFC 5321 section 2.2).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Extension {
    /// `PIPELINING`, RFC 2920.
    Pipelining,
    /// `STARTTLS`, RFC 3207.
    StartTls,
    /// `SIZE`, RFC 1870.
    Size,
    /// `AUTH`, RFC 4954.
    Auth,
    /// `8BITMIME`, RFC 6152.
    EightBitMime,
    /// `SMTPUTF8`, RFC 6531.
    SmtpUtf8,
    /// `CHUNKING`, RFC 3030.
    Chunking,
    /// `BINARYMIME`, RFC 3030.
    BinaryMime,
    /// `DSN`, RFC 3461.
    Dsn,
    /// `ENHANCEDSTATUSCODES`, RFC 2034.
    EnhancedStatusCodes,
    /// `REQUIRETLS`, RFC 8689.
    RequireTls,
    /// Any other keyword, upper-cased.
    Other(String),
}

impl Extension {
    /// Returns the keyword in upper case, such as `8BITMIME`.
    pub fn keyword(&self) -> &str {
        match self {
            Self::Pipelining => "PIPELINING",
            Self::StartTls => "STARTTLS",
            Self::Size => "SIZE",
            Self::Auth => "AUTH",
            Self::EightBitMime => "8BITMIME",
            Self::SmtpUtf8 => "SMTPUTF8",
            Self::Chunking => "CHUNKING",
            Self::BinaryMime => "BINARYMIME",
            Self::Dsn => "DSN",
            Self::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Self::RequireTls => "REQUIRETLS",
            Self::Other(keyword) => keyword,
        }
    }

    /// Maps a keyword, in any case, to its extension.
    pub fn from_keyword(keyword: &str) -> Self {
        let upper = keyword.to_ascii_uppercase();
        match upper.as_str() {
            "PIPELINING" => Self::Pipelining,
            "STARTTLS" => Self::StartTls,
            "SIZE" => Self::Size,
            "AUTH" => Self::Auth,
            "8BITMIME" => Self::EightBitMime,
            "SMTPUTF8" => Self::SmtpUtf8,
            "CHUNKING" => Self::Chunking,
            "BINARYMIME" => Self::BinaryMime,
            "DSN" => Self::Dsn,
            "ENHANCEDSTATUSCODES" => Self::EnhancedStatusCodes,
            "REQUIRETLS" => Self::RequireTls,
            _ => Self::Other(upper),
        }
    }
}

/// The maximum message size of the SIZE extension (RFC 1870 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeLimit {
    /// No fixed maximum: a bare `SIZE` or `SIZE 0`.
    Unlimited,
    /// A maximum size in octets.
    Max(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_ehlo_reply_reads_keywords_and_params() {
        let capabilities = ehlo(&[
            "mx.example.net Hello client.example.org",
            "PIPELINING",
            "size 10240000",
            "X-Custom one two",
            "8BITMIME",
            "",
        ]);

        let keywords: Vec<&str> = capabilities.iter().map(Capability::keyword).collect();
        assert_eq!(keywords, ["PIPELINING", "size", "X-Custom", "8BITMIME"]);
        assert_eq!(
            capabilities.greeting(),
            b"mx.example.net Hello client.example.org"
        );
        assert_eq!(
            capabilities.get("x-custom").unwrap().params(),
            ["one", "two"]
        );
        assert_eq!(
            capabilities.get("X-CUSTOM").unwrap().extension(),
            Extension::Other("X-CUSTOM".to_owned())
        );
        assert!(capabilities.get("PIPELINING").unwrap().params().is_empty());
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let capabilities = ehlo(&["mx.example.net", "StartTLS", "pipelining", "SmtpUtf8"]);

        let cases = [
            ("upper", "STARTTLS", true),
            ("lower", "starttls", true),
            ("as sent", "StartTLS", true),
            ("other keyword", "pipelining", true),
            ("absent", "CHUNKING", false),
            ("greeting is no keyword", "mx.example.net", false),
        ];
        for (label, keyword, expected) in cases {
            assert_eq!(capabilities.contains(keyword), expected, "{label}");
        }
        assert!(capabilities.has(Extension::StartTls));
        assert!(capabilities.has(Extension::Pipelining));
        assert!(capabilities.has(Extension::SmtpUtf8));
        assert!(!capabilities.has(Extension::Chunking));
    }

    #[test]
    fn size_reads_limit() {
        let cases: [(&str, &[&str], Option<SizeLimit>); 7] = [
            (
                "limit",
                &["SIZE 10000000"],
                Some(SizeLimit::Max(10_000_000)),
            ),
            ("bare", &["SIZE"], Some(SizeLimit::Unlimited)),
            ("zero", &["SIZE 0"], Some(SizeLimit::Unlimited)),
            ("lower case", &["size 512"], Some(SizeLimit::Max(512))),
            ("not a number", &["SIZE lots"], Some(SizeLimit::Unlimited)),
            ("signed", &["SIZE +5"], Some(SizeLimit::Unlimited)),
            ("absent", &["PIPELINING"], None),
        ];

        for (label, lines, expected) in cases {
            let mut all = vec!["mx.example.net"];
            all.extend_from_slice(lines);

            assert_eq!(ehlo(&all).size(), expected, "{label}");
        }
    }

    #[test]
    fn auth_mechanisms_merge_both_forms() {
        let cases: [(&str, &[&str], &[Mechanism]); 5] = [
            (
                "both forms",
                &["AUTH PLAIN LOGIN", "AUTH=LOGIN"],
                &[Mechanism::Plain, Mechanism::Login],
            ),
            (
                "equals form only",
                &["AUTH=LOGIN PLAIN"],
                &[Mechanism::Login, Mechanism::Plain],
            ),
            (
                "repeated and mixed case",
                &["auth cram-md5 PLAIN plain"],
                &[Mechanism::CramMd5, Mechanism::Plain],
            ),
            (
                "unknown mechanism",
                &["AUTH SCRAM-SHA-256 XOAUTH2"],
                &[
                    Mechanism::Other("SCRAM-SHA-256".to_owned()),
                    Mechanism::XOAuth2,
                ],
            ),
            ("absent", &["PIPELINING"], &[]),
        ];

        for (label, lines, expected) in cases {
            let mut all = vec!["mx.example.net"];
            all.extend_from_slice(lines);

            assert_eq!(ehlo(&all).auth_mechanisms(), expected, "{label}");
        }
    }

    #[test]
    fn repeated_keyword_merges_params() {
        let capabilities = ehlo(&["mx.example.net", "AUTH PLAIN LOGIN", "AUTH=LOGIN"]);

        let auth: Vec<&Capability> = capabilities.iter().collect();
        assert_eq!(auth.len(), 1);
        assert_eq!(auth[0].keyword(), "AUTH");
        assert_eq!(auth[0].params(), ["PLAIN", "LOGIN"]);
    }

    #[test]
    fn empty_lines_add_nothing() {
        let cases: [(&str, &[&str]); 4] = [
            ("greeting only", &["mx.example.net"]),
            ("empty last line", &["mx.example.net", ""]),
            ("blank line", &["mx.example.net", "   "]),
            ("empty greeting", &[""]),
        ];

        for (label, lines) in cases {
            assert!(ehlo(lines).is_empty(), "{label}");
        }
    }

    #[test]
    fn smtp_sink_reply() {
        let capabilities = ehlo(&[
            "mx.example.net",
            "PIPELINING",
            "8BITMIME",
            "AUTH PLAIN LOGIN",
            "XCLIENT NAME HELO",
            "",
        ]);

        assert_eq!(capabilities.iter().count(), 4);
        assert_eq!(capabilities.greeting(), b"mx.example.net");
        assert_eq!(
            capabilities.get("xclient").unwrap().params(),
            ["NAME", "HELO"]
        );
    }

    #[test]
    fn negative_reply_gives_nothing() {
        let reply = Reply::new(
            ReplyCode::COMMAND_NOT_IMPLEMENTED,
            vec![
                Bytes::from_static(b"5.5.2 EHLO not implemented"),
                Bytes::from_static(b"SIZE"),
            ],
        );

        let capabilities = Capabilities::from_ehlo_reply(&reply);

        assert_eq!(capabilities, Capabilities::default());
    }

    #[test]
    fn extension_keyword_round_trip() {
        let cases = [
            ("pipelining", Extension::Pipelining),
            ("STARTTLS", Extension::StartTls),
            ("Size", Extension::Size),
            ("auth", Extension::Auth),
            ("8bitmime", Extension::EightBitMime),
            ("SMTPUTF8", Extension::SmtpUtf8),
            ("chunking", Extension::Chunking),
            ("BinaryMime", Extension::BinaryMime),
            ("dsn", Extension::Dsn),
            ("enhancedstatuscodes", Extension::EnhancedStatusCodes),
            ("requiretls", Extension::RequireTls),
            ("x-unknown", Extension::Other("X-UNKNOWN".to_owned())),
        ];

        for (keyword, extension) in cases {
            assert_eq!(Extension::from_keyword(keyword), extension, "{keyword}");
            assert_eq!(
                extension.keyword(),
                keyword.to_ascii_uppercase(),
                "{keyword}: canonical form"
            );
        }
    }

    fn ehlo(lines: &[&str]) -> Capabilities {
        let lines = lines
            .iter()
            .map(|line| Bytes::copy_from_slice(line.as_bytes()))
            .collect();
        Capabilities::from_ehlo_reply(&Reply::new(ReplyCode::OK, lines))
    }
}
