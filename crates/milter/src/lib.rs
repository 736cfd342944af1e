//! The milter front: Postfix and Sendmail pass each message to Gatehouse
//! over the Sendmail 8 milter protocol (version 6) before they queue it.
//!
//! The modules, from the wire inwards:
//!
//! - [`front`]: tokio tasks that own sockets, timeouts and shutdown, and
//!   turn verdicts into decisions through the SMTP crate's shared
//!   [`gatehouse_smtp::Gateway`] (engine, quarantine, analysis bound);
//! - [`session`]: the sans-I/O [`Session`] with its explicit [`State`]: it
//!   negotiates options, collects macros and the envelope, rebuilds the
//!   message from header and body packets, and turns a [`Decision`] into
//!   end-of-message responses;
//! - [`codec`]: sans-I/O packet framing with a size cap, [`Command`] and
//!   [`Response`];
//! - [`protocol`]: the protocol's command, response and flag values.
//!
//! Every bound the MTA can push against is a field of [`Limits`]. Policy
//! lives in the engine; this crate only translates between the milter
//! protocol and verdicts.

pub mod codec;
pub mod front;
pub mod protocol;
pub mod session;

mod limits;

pub use codec::{Command, Decoded, ProtocolError, Response, decode};
pub use front::serve;
pub use limits::Limits;
pub use session::{Decision, Message, Session, State, Step};
