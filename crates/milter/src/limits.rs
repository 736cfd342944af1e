use std::time::Duration;

/// Bounds on what one MTA connection may make the milter front do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum packet length (command byte and data). Postfix sends body
    /// chunks of at most 65,535 bytes, but a header field arrives whole in
    /// one packet and Postfix's `header_size_limit` defaults to 102,400
    /// bytes. Sendmail sends body chunks of up to 1 MiB when the filter
    /// requests them. A longer packet closes the connection, and the MTA then
    /// applies its `milter_default_action`.
    pub max_packet_bytes: usize,
    /// Maximum size of a rebuilt message (headers and body). Postfix's
    /// `message_size_limit` defaults to 10,240,000 bytes. A larger message
    /// is rejected with 552 5.3.4 at its end, because it cannot be analysed whole.
    pub max_message_bytes: usize,
    /// Maximum simultaneous MTA connections. Postfix opens one per SMTP
    /// session. A connection over the limit is closed at once, and the MTA
    /// then applies its `milter_default_action`.
    pub max_connections: usize,
    /// Time to wait for the next packet. Postfix sends nothing while its SMTP
    /// client is idle, up to `smtpd_timeout` (300 s by default) per command.
    pub command_timeout: Duration,
    /// Interval between progress packets while a message is analysed. Each
    /// one restarts the MTA's wait (Postfix `milter_content_timeout`, 300 s).
    pub progress_interval: Duration,
    /// Time after which an analysis still running is given up and the
    /// message gets a temporary failure, so the client retries later.
    pub analysis_timeout: Duration,
    /// Time to finish open connections after shutdown was requested.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_bytes: 1024 * 1024 + 1,
            max_message_bytes: 50 * 1024 * 1024,
            max_connections: 200,
            command_timeout: Duration::from_secs(600),
            progress_interval: Duration::from_secs(10),
            analysis_timeout: Duration::from_secs(240),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
