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
    /// final dot (or over all BDAT chunks) and announced in the EHLO `SIZE`
    /// keyword (RFC 1870).
    pub max_message_bytes: usize,
    /// Maximum recipients per transaction. RFC 5321 §4.5.3.1.8 requires at least 100.
    pub max_recipients: usize,
    /// Protocol errors (unknown commands, bad sequence, bad syntax) after which
    /// the session is closed with 421.
    pub max_errors: u32,
    /// Time the client has to send the next whole command line, counted from
    /// the previous command, and time the server waits for each read of
    /// message text. RFC 5321 §4.5.3.2.7 sets the server timeout to at least
    /// 5 minutes.
    pub command_timeout: Duration,
    /// Time one whole session may last, whatever the client does.
    pub session_timeout: Duration,
    /// Maximum simultaneous client connections. The next one gets the reply 421.
    pub max_connections: usize,
    /// Maximum messages analysed at once, each on a blocking thread.
    pub max_concurrent_analyses: usize,
    /// Time the analysis of one message may take, waiting for a free
    /// analysis slot included. When it runs out the proxy acts as
    /// [`Limits::on_analysis_failure`] says. The client waits for the reply to
    /// its final dot for 10 minutes (RFC 5321 §4.5.3.2.6), and the upstream
    /// MTA's reply must fit in that time as well.
    pub analysis_timeout: Duration,
    /// What the proxy does with a message whose analysis failed or timed out.
    pub on_analysis_failure: FailureAction,
    /// Maximum `Received` header fields a message may carry before the proxy
    /// adds its own. RFC 5321 §6.3 recommends a threshold of at least 100
    /// for loop detection; a message over it is rejected with 554 5.4.6.
    pub max_received_headers: usize,
    /// Time to wait for each reply of the upstream MTA.
    pub upstream: UpstreamTimeouts,
    /// Time to finish open sessions after shutdown was requested.
    pub shutdown_grace: Duration,
}

/// What to do with a message that could not be analysed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Reply 451 so the client keeps the message and retries later.
    Tempfail,
    /// Deliver it with the header `X-Gatehouse-Unscanned` that says why.
    Deliver,
}

/// Time the proxy waits for the upstream MTA at each step, as an SMTP client.
///
/// The defaults are the minimum client timeouts of RFC 5321 §4.5.3.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// The TCP connection and the 220 greeting (§4.5.3.2.1: 5 minutes).
    pub greeting: Duration,
    /// EHLO, XCLIENT, XFORWARD, MAIL, RSET and QUIT (§4.5.3.2.2: 5 minutes).
    pub mail: Duration,
    /// Each RCPT (§4.5.3.2.3: 5 minutes).
    pub rcpt: Duration,
    /// The reply to DATA (§4.5.3.2.4: 2 minutes).
    pub data_start: Duration,
    /// Each write of message text (§4.5.3.2.5: 3 minutes).
    pub data_block: Duration,
    /// The reply to the final dot or the last BDAT chunk (§4.5.3.2.6: 10 minutes).
    pub data_end: Duration,
}

impl UpstreamTimeouts {
    /// Returns every timeout lowered to at most `cap`.
    pub fn capped(&self, cap: Duration) -> UpstreamTimeouts {
        UpstreamTimeouts {
            greeting: self.greeting.min(cap),
            mail: self.mail.min(cap),
            rcpt: self.rcpt.min(cap),
            data_start: self.data_start.min(cap),
            data_block: self.data_block.min(cap),
            data_end: self.data_end.min(cap),
        }
    }
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            greeting: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
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
            analysis_timeout: Duration::from_secs(60),
            on_analysis_failure: FailureAction::Tempfail,
            max_received_headers: 100,
            upstream: UpstreamTimeouts::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
