use std::time::Duration;

/// Bounds on what one SMTP client may make the proxy do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of a command line, CRLF included. RFC 5321 §4.5.3.1.4
    /// sets 512 octets and lets extensions (SIZE, BODY, DSN parameters) raise
    /// it, and Postfix's `line_length_limit` is 2048. A longer line is drained to
    /// its end and gets the reply 500.
    pub max_command_line: usize,
    /// Maximum message size in bytes, counted after dot-unstuffing to the
    /// final dot and announced in the EHLO `SIZE` keyword (RFC 1870).
    pub max_message_bytes: usize,
    /// Maximum recipients per transaction. RFC 5321 §4.5.3.1.8 requires at least 100.
    pub max_recipients: usize,
    /// Protocol errors (unknown commands, bad sequence, bad syntax) after which
    /// the session is closed with 421.
    pub max_errors: u32,
    /// Time the server waits for the next command or the next chunk of DATA.
    /// RFC 5321 §4.5.3.2.7 sets the server timeout to at least 5 minutes.
    pub command_timeout: Duration,
    /// Time one whole session may last, whatever the client does.
    pub session_timeout: Duration,
    /// Maximum simultaneous client connections. The next one gets the reply 421.
    pub max_connections: usize,
    /// Maximum messages analysed at once, each on a blocking thread.
    pub max_concurrent_analyses: usize,
    /// Time to wait for the upstream MTA's greeting and each of its replies.
    /// RFC 5321 §4.5.3.2 gives 5 minutes for the greeting and MAIL and
    /// 10 minutes after the final dot. A client waits on the proxy meanwhile,
    /// so the proxy waits less and replies 451.
    pub upstream_timeout: Duration,
    /// Time to finish open sessions after shutdown was requested.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_command_line: 2048,
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 3,
            command_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(3600),
            max_connections: 200,
            max_concurrent_analyses: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2),
            upstream_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
