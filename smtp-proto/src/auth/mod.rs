//! SMTP authentication (RFC 4954) with SASL mechanisms (RFC 4422).

use crate::secret::Secret;

/// A SASL mechanism name as used in `AUTH` (RFC 4954 section 4); names compare
/// case-insensitively because [`Mechanism::from_name`] upper-cases unknown ones.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`, RFC 4616.
    Plain,
    /// `LOGIN`, draft-murchison-sasl-login.
    Login,
    /// `CRAM-MD5`, RFC 2195.
    CramMd5,
    /// `XOAUTH2`, Google's OAuth 2.0 bearer token mechanism.
    XOAuth2,
    /// `OAUTHBEARER`, RFC 7628.
    OAuthBearer,
    /// Any other mechanism, its name upper-cased.
    Other(String),
}

impl Mechanism {
    /// Returns the mechanism name as written in `AUTH`.
    pub fn name(&self) -> &str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::CramMd5 => "CRAM-MD5",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::Other(name) => name,
        }
    }

    /// Maps a mechanism name, in any case, to its variant.
    pub fn from_name(name: &str) -> Self {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "PLAIN" => Self::Plain,
            "LOGIN" => Self::Login,
            "CRAM-MD5" => Self::CramMd5,
            "XOAUTH2" => Self::XOAuth2,
            "OAUTHBEARER" => Self::OAuthBearer,
            _ => Self::Other(upper),
        }
    }
}

/// What the client proves its identity with.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password, for PLAIN, LOGIN and CRAM-MD5.
    Password {
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// A user name and OAuth 2.0 access token, for OAUTHBEARER and XOAUTH2.
    OAuth2 {
        /// The user the token was issued for.
        username: String,
        /// The bearer token.
        token: Secret<String>,
    },
}

impl Credentials {
    /// Creates password credentials.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Password {
            username: username.into(),
            password: Secret::new(password.into()),
        }
    }

    /// Creates OAuth 2.0 bearer token credentials.
    pub fn oauth2(username: impl Into<String>, token: impl Into<String>) -> Self {
        Self::OAuth2 {
            username: username.into(),
            token: Secret::new(token.into()),
        }
    }

    /// Returns the user name.
    pub fn username(&self) -> &str {
        match self {
            Self::Password { username, .. } | Self::OAuth2 { username, .. } => username,
        }
    }
}
