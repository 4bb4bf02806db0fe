//! Target `capabilities`: the EHLO reply reader on any reply text.
//!
//! Input layout: the text of the reply lines, separated by LF. The lines go through
//! [`Reply::new`], which replaces control characters, so the reader sees any text a reply can
//! carry without the fuzzer having to find the reply framing first.

use bytes::{Bytes, BytesMut};
use smtp_proto::auth::Mechanism;
use smtp_proto::{Capabilities, Extension, Reply, ReplyCode, ReplyDecoder, ReplyLimits};

/// Reads capabilities from a 250 reply and checks that:
///
/// - each keyword appears once, ignoring case, and [`Capabilities::get`] finds it in any case;
/// - parameters are non-empty, unique and free of spaces;
/// - [`Capabilities::size`] and [`Capabilities::auth_mechanisms`] agree with the keywords;
/// - the same set comes back after the reply is encoded and decoded, and after the set is
///   written back as lines;
/// - a reply with another code gives an empty set.
pub fn check(data: &[u8]) {
    let lines: Vec<Bytes> = data
        .split(|&byte| byte == b'\n')
        .map(Bytes::copy_from_slice)
        .collect();
    let reply = Reply::new(ReplyCode::OK, lines.clone());
    let capabilities = Capabilities::from_ehlo_reply(&reply);

    assert_eq!(
        capabilities.greeting(),
        reply.lines().next().unwrap_or_default()
    );
    assert_set_is_consistent(&capabilities);
    assert_eq!(
        Capabilities::from_ehlo_reply(&over_the_wire(&reply)),
        capabilities,
        "encoding and decoding the reply changed the capabilities"
    );
    assert_eq!(
        Capabilities::from_ehlo_reply(&written_back(&capabilities)),
        capabilities,
        "reading the capabilities written back as lines changed them"
    );

    let code = ReplyCode::new(251).expect("251 is a valid reply code");
    let other = Capabilities::from_ehlo_reply(&Reply::new(code, lines));
    assert!(other.is_empty(), "a 251 reply offered {other:?}");
    assert!(other.greeting().is_empty());
}

fn assert_set_is_consistent(capabilities: &Capabilities) {
    let mut keywords: Vec<String> = Vec::new();
    for capability in capabilities.iter() {
        let keyword = capability.keyword();
        assert!(!keyword.is_empty(), "empty keyword in {capabilities:?}");
        assert!(
            !keyword.contains(|c: char| c.is_ascii_whitespace()),
            "keyword {keyword:?}"
        );
        assert_eq!(capability.extension(), Extension::from_keyword(keyword));

        let upper = keyword.to_ascii_uppercase();
        assert!(!keywords.contains(&upper), "{keyword:?} listed twice");
        keywords.push(upper.clone());
        for variant in [upper, keyword.to_ascii_lowercase()] {
            assert_eq!(
                capabilities.get(&variant),
                Some(capability),
                "get({variant:?})"
            );
            assert!(capabilities.contains(&variant));
            assert!(capabilities.has(Extension::from_keyword(&variant)));
        }

        let params = capability.params();
        for (index, param) in params.iter().enumerate() {
            assert!(!param.is_empty(), "empty parameter of {keyword:?}");
            assert!(
                !param.contains(|c: char| c.is_ascii_whitespace()),
                "parameter {param:?}"
            );
            assert!(
                !params[..index].contains(param),
                "parameter {param:?} listed twice"
            );
        }
    }

    assert_eq!(
        capabilities.size().is_some(),
        capabilities.has(Extension::Size)
    );
    assert_eq!(capabilities.is_empty(), keywords.is_empty());

    let mechanisms = capabilities.auth_mechanisms();
    let expected: Vec<Mechanism> = capabilities
        .get("AUTH")
        .map(|auth| {
            auth.params()
                .iter()
                .map(|name| Mechanism::from_name(name))
                .collect()
        })
        .unwrap_or_default();
    for (index, mechanism) in mechanisms.iter().enumerate() {
        assert!(
            !mechanisms[..index].contains(mechanism),
            "{mechanism:?} listed twice"
        );
        assert!(
            expected.contains(mechanism),
            "{mechanism:?} not among the AUTH parameters"
        );
        assert_eq!(&Mechanism::from_name(mechanism.name()), mechanism);
    }
    for mechanism in &expected {
        assert!(mechanisms.contains(mechanism), "{mechanism:?} missing");
    }
}

/// Encodes the reply and decodes it again, with limits that fit any line length.
fn over_the_wire(reply: &Reply) -> Reply {
    let mut wire = BytesMut::new();
    reply.encode(&mut wire);

    let mut limits = ReplyLimits::default();
    limits.max_line_length = wire.len() + 1;
    limits.max_lines = reply.lines().count();
    let decoded = ReplyDecoder::new(limits).decode(&mut wire);

    match decoded {
        Ok(Some(decoded)) => decoded,
        other => panic!("the encoded reply {reply:?} decoded to {other:?}"),
    }
}

/// Builds the EHLO reply that lists the capabilities as `KEYWORD PARAM...` lines.
fn written_back(capabilities: &Capabilities) -> Reply {
    let mut lines = vec![Bytes::copy_from_slice(capabilities.greeting())];
    for capability in capabilities.iter() {
        let mut line = capability.keyword().to_owned();
        for param in capability.params() {
            line.push(' ');
            line.push_str(param);
        }
        lines.push(Bytes::from(line));
    }
    Reply::new(ReplyCode::OK, lines)
}
