//! Upstream connections kept open between client sessions.
//!
//! Each new upstream connection costs a TCP handshake, a greeting and an
//! EHLO before the first MAIL. A client session that ends with its upstream
//! connection outside a transaction leaves it here, and the next session
//! takes it and names its own client with XCLIENT (or with XFORWARD before
//! each MAIL), as a fresh connection would.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::upstream::UpstreamSession;

/// Connections kept idle at most. More sessions than this ending at once
/// close their extra connections.
pub const MAX_IDLE: usize = 32;

/// Time a connection may stay idle before it is closed. Postfix closes an
/// idle SMTP session after `smtpd_timeout` (300 s by default), and its own
/// SMTP client keeps cached connections for 2 s
/// (`smtp_connection_cache_time_limit`).
pub const IDLE_TIME: Duration = Duration::from_secs(5);

/// Idle upstream connections, the most recently used last.
pub struct UpstreamPool {
    idle: Mutex<Vec<(UpstreamSession, Instant)>>,
    max_idle: usize,
    idle_time: Duration,
}

impl Default for UpstreamPool {
    fn default() -> Self {
        UpstreamPool::new(MAX_IDLE, IDLE_TIME)
    }
}

impl UpstreamPool {
    pub fn new(max_idle: usize, idle_time: Duration) -> UpstreamPool {
        UpstreamPool {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_time,
        }
    }

    /// Takes the most recently used connection that is still usable, unless
    /// it has been idle longer than the idle time. Connections the upstream
    /// closed or wrote to meanwhile are dropped on the way. Connections idle
    /// too long stay for [`UpstreamPool::expired`] to hand out for closing.
    pub fn take(&self) -> Option<UpstreamSession> {
        let mut idle = self.lock();
        while let Some((_, since)) = idle.last() {
            if since.elapsed() >= self.idle_time {
                return None;
            }
            let (session, _) = idle.pop()?;
            if session.is_usable() {
                return Some(session);
            }
            tracing::debug!(
                upstream = session.address(),
                "kept upstream connection closed by the upstream"
            );
        }
        None
    }

    /// Keeps an idle connection for a later session. Returns it instead,
    /// for the caller to close, when the pool is full or a transaction is
    /// still open on it.
    #[must_use = "a connection the pool did not keep must be closed"]
    pub fn put(&self, session: UpstreamSession) -> Option<UpstreamSession> {
        if !session.is_idle() {
            return Some(session);
        }
        let mut idle = self.lock();
        if idle.len() >= self.max_idle {
            return Some(session);
        }
        idle.push((session, Instant::now()));
        None
    }

    /// Removes and returns the connections idle for longer than the idle time.
    pub fn expired(&self) -> Vec<UpstreamSession> {
        let mut idle = self.lock();
        let fresh = idle
            .iter()
            .position(|(_, since)| since.elapsed() < self.idle_time)
            .unwrap_or(idle.len());
        idle.drain(..fresh).map(|(session, _)| session).collect()
    }

    /// Removes and returns every connection, at shutdown.
    pub fn drain(&self) -> Vec<UpstreamSession> {
        self.lock().drain(..).map(|(session, _)| session).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(UpstreamSession, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
