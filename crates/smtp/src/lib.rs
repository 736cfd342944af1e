//! The before-queue SMTP proxy and delivery to the upstream MTA.
//!
//! A client's session is read here, each message is judged by the engine
//! before the client gets its final reply, and the message is then relayed
//! upstream, held in the quarantine, or rejected. The modules, from the wire
//! inwards:
//!
//! - [`server`]: tokio tasks that own sockets, timeouts and shutdown;
//! - [`line`] and [`data`]: sans-I/O framing of command lines and of the
//!   message text (dot-unstuffing, bare CR/LF, size);
//! - [`session`]: the explicit [`State`] machine that turns command lines into
//!   replies;
//! - [`gateway`]: [`Gateway::accept`] analyses a message on a blocking thread
//!   and acts on the verdict; [`release`] re-injects held mail;
//! - [`learner`]: teaches the graph each decided message after its reply,
//!   many messages per graph transaction;
//! - [`upstream`]: the SMTP client that mirrors each session to the upstream
//!   MTA (MAIL and every RCPT as the client sends them, XCLIENT or XFORWARD,
//!   the message once delivery is decided); [`pool`] keeps its connections
//!   open between client sessions;
//! - [`delivery`]: one-shot relaying for releases, or writing into a Maildir
//!   when no upstream is configured;
//! - [`tls`]: the STARTTLS certificate; [`metrics`]: Prometheus counters.
//!
//! Every bound a client can push against is a field of [`Limits`]. Policy
//! lives in the engine; this crate only translates between SMTP and verdicts.

pub mod data;
pub mod delivery;
pub mod gateway;
pub mod learner;
pub mod line;
pub mod metrics;
pub mod pool;
pub mod server;
pub mod session;
pub mod tls;
pub mod upstream;

mod limits;
mod reply;

pub use delivery::{Delivery, DeliveryError, Maildir, Upstream};
pub use gateway::{Gateway, ReleaseError, Released, log_decision, release};
pub use learner::{LearnQueue, Learner, Learning};
pub use limits::{FailureAction, Limits, UpstreamTimeouts};
pub use metrics::{Metrics, serve_metrics};
pub use reply::Reply;
pub use server::serve;
pub use session::{State, Transaction};
