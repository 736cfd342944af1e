use std::fmt;

/// One SMTP reply: a code, an enhanced status code (RFC 3463) and text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Class, subject and detail of the enhanced status code, such as `[2, 0, 0]`.
    pub status: Option<[u8; 3]>,
    /// One entry per reply line; never empty.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: [u8; 3], text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// Builds a reply from another server's, such as the upstream MTA's reply.
    ///
    /// Its text is cleaned of control characters so it cannot break the
    /// client's reply framing, and bounded in length.
    pub fn relayed(code: u16, status: [u8; 3], text: &str) -> Reply {
        const MAX_LINES: usize = 20;
        const MAX_LINE_CHARS: usize = 400;
        let mut lines: Vec<String> = text
            .lines()
            .take(MAX_LINES)
            .map(|line| {
                line.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_LINE_CHARS)
                    .collect()
            })
            .collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        let status = (status != [0, 0, 0]).then_some(status);
        Reply {
            code,
            status,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Encodes the reply for the wire: `250-...` continuation lines, `250 ...` last.
    pub fn to_wire(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    pub(crate) fn service_ready(hostname: &str) -> Reply {
        Reply {
            code: 220,
            status: None,
            lines: vec![format!("{hostname} ESMTP Gatehouse")],
        }
    }

    pub(crate) fn ok() -> Reply {
        Reply::new(250, [2, 0, 0], "Ok")
    }

    pub(crate) fn closing(hostname: &str) -> Reply {
        Reply::new(221, [2, 0, 0], format!("{hostname} closing connection"))
    }

    pub(crate) fn shutting_down(hostname: &str) -> Reply {
        Reply::new(
            421,
            [4, 3, 2],
            format!("{hostname} shutting down, try again later"),
        )
    }

    pub(crate) fn timed_out(hostname: &str) -> Reply {
        Reply::new(
            421,
            [4, 4, 2],
            format!("{hostname} timed out waiting for input, closing connection"),
        )
    }

    pub(crate) fn too_many_connections(hostname: &str) -> Reply {
        Reply::new(
            421,
            [4, 7, 0],
            format!("{hostname} has too many connections, try again later"),
        )
    }

    /// Builds the reply when the upstream MTA cannot be reached or failed mid-session.
    pub(crate) fn upstream_unavailable() -> Reply {
        Reply::new(451, [4, 4, 1], "Upstream unavailable, try again later")
    }

    /// Builds the reply to an unexpected internal failure. It is transient, so the client keeps the message.
    pub(crate) fn local_error() -> Reply {
        Reply::new(451, [4, 3, 0], "Local error in processing, try again later")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            write!(f, "{}{separator}", self.code)?;
            if let Some([class, subject, detail]) = self.status {
                write!(f, "{class}.{subject}.{detail} ")?;
            }
            write!(f, "{line}\r\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_reply_wire_format() {
        let reply = Reply {
            code: 250,
            status: None,
            lines: vec!["mx.example".to_owned(), "SIZE 100".to_owned()],
        };

        assert_eq!(reply.to_string(), "250-mx.example\r\n250 SIZE 100\r\n");
    }

    #[test]
    fn relayed_reply_drops_control_characters() {
        let reply = Reply::relayed(550, [5, 1, 1], "no such user\r\n\x1b[31mred");

        assert_eq!(
            reply.to_string(),
            "550-5.1.1 no such user\r\n550 5.1.1 [31mred\r\n"
        );
    }
}
