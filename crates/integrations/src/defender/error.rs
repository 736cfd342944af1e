//! Errors of the Defender client.

use crate::secret::SecretError;

/// A Graph or token request that failed.
#[derive(Debug, thiserror::Error)]
pub enum DefenderError {
    /// The token endpoint rejected the request with a 400-class error, such as
    /// `invalid_client` for a wrong or expired secret. Retrying cannot help.
    #[error(
        "the token endpoint rejected the client credentials (HTTP {status}, {code}): {description}; {fix}"
    )]
    Credentials {
        status: u16,
        code: String,
        description: String,
        fix: &'static str,
    },
    /// Graph still returned 401 after a new token was fetched.
    #[error(
        "{url} answered HTTP 401 with a fresh token; check that the app registration is in this tenant and that its token is for {scope}"
    )]
    Unauthorized { url: String, scope: String },
    /// Graph returned another error status that is not retried.
    #[error("{url} answered HTTP {status}: {body}{fix}")]
    Status {
        url: String,
        status: u16,
        body: String,
        fix: &'static str,
    },
    /// A status that is worth retrying (429, 5xx) came back on every attempt.
    #[error("{url} answered HTTP {status} on all {attempts} attempts: {body}")]
    RetriesExhausted {
        url: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    /// Connecting, sending or receiving failed.
    #[error("request to {url} failed: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the response from {url} is larger than {limit} bytes; raise limits.max_response_bytes or lower limits.page_size"
    )]
    ResponseTooLarge { url: String, limit: usize },
    #[error("the response from {url} is not the expected JSON: {detail}")]
    InvalidResponse { url: String, detail: String },
    /// A `@odata.nextLink` pointed away from the configured Graph endpoint. It is
    /// not followed, because the request would carry the access token.
    #[error(
        "@odata.nextLink {link} is not under the Graph endpoint {graph_base}; it was not followed"
    )]
    ForeignNextLink { link: String, graph_base: String },
    #[error("invalid Defender configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl DefenderError {
    /// Returns whether the same request may succeed later without a change of
    /// configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RetriesExhausted { .. } | Self::Transport { .. } => true,
            Self::InvalidResponse { .. } => true,
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Credentials { .. }
            | Self::Unauthorized { .. }
            | Self::ResponseTooLarge { .. }
            | Self::ForeignNextLink { .. }
            | Self::Config(_)
            | Self::Secret(_) => false,
        }
    }
}

/// Returns what to change for a token error code of the Microsoft identity
/// platform.
pub(crate) fn credentials_fix(code: &str) -> &'static str {
    match code {
        "invalid_client" => {
            "check client_id and the client secret (its value, not its id) and that the secret has not expired"
        }
        "unauthorized_client" => {
            "the application was not found in this tenant; check tenant_id and client_id and that the app is consented"
        }
        "invalid_scope" => "check the scope; for application permissions it must end in /.default",
        "invalid_request" => "check tenant_id and login_base",
        _ => "check tenant_id, client_id and the client secret",
    }
}

/// Returns a hint for an error status of the alerts API, or nothing.
pub(crate) fn status_fix(status: u16) -> &'static str {
    match status {
        403 => "; grant the application permission SecurityAlert.Read.All with admin consent",
        404 => "; check graph_base",
        _ => "",
    }
}
