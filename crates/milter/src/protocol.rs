//! Constants of the Sendmail 8 milter protocol, version 6.
//!
//! The protocol has no RFC. The values are those of Sendmail's
//! `libmilter/mfdef.h` (8.14 and later) and of Postfix's MTA side
//! (`src/milter/milter8.c`), which uses the same numbers.

/// The protocol version this front speaks. Postfix 2.6 and later and
/// Sendmail 8.14 and later offer version 6.
pub const VERSION: u32 = 6;

/// The largest body chunk an MTA sends in one packet, and the largest this
/// front sends when it replaces a body.
pub const CHUNK_SIZE: usize = 65_535;

/// Commands from the MTA (`SMFIC_*`).
pub mod command {
    pub const ABORT: u8 = b'A';
    pub const BODY: u8 = b'B';
    pub const CONNECT: u8 = b'C';
    pub const MACRO: u8 = b'D';
    pub const END_OF_MESSAGE: u8 = b'E';
    pub const HELO: u8 = b'H';
    pub const QUIT_NEW_CONNECTION: u8 = b'K';
    pub const HEADER: u8 = b'L';
    pub const MAIL: u8 = b'M';
    pub const END_OF_HEADERS: u8 = b'N';
    pub const NEGOTIATE: u8 = b'O';
    pub const QUIT: u8 = b'Q';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    pub const UNKNOWN: u8 = b'U';
}

/// Responses and modification requests to the MTA (`SMFIR_*`).
pub mod response {
    pub const ACCEPT: u8 = b'a';
    pub const REPLACE_BODY: u8 = b'b';
    pub const CONTINUE: u8 = b'c';
    pub const DISCARD: u8 = b'd';
    pub const ADD_HEADER: u8 = b'h';
    pub const INSERT_HEADER: u8 = b'i';
    pub const CHANGE_HEADER: u8 = b'm';
    pub const PROGRESS: u8 = b'p';
    pub const QUARANTINE: u8 = b'q';
    pub const REJECT: u8 = b'r';
    pub const TEMPFAIL: u8 = b't';
    pub const REPLY_CODE: u8 = b'y';
}

/// Modifications a filter may request at the end of a message (`SMFIF_*`).
pub mod action {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    /// The filter may choose which macros the MTA sends at each stage.
    pub const SET_MACRO_LIST: u32 = 0x100;
}

/// Events a filter does not want, replies it will not send, and protocol
/// extensions (`SMFIP_*`).
pub mod flag {
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_REPLY_HEADER: u32 = 0x80;
    pub const NO_REPLY_CONNECT: u32 = 0x1000;
    pub const NO_REPLY_HELO: u32 = 0x2000;
    pub const NO_REPLY_MAIL: u32 = 0x4000;
    pub const NO_REPLY_RCPT: u32 = 0x8000;
    pub const NO_REPLY_DATA: u32 = 0x1_0000;
    pub const NO_REPLY_UNKNOWN: u32 = 0x2_0000;
    pub const NO_REPLY_END_OF_HEADERS: u32 = 0x4_0000;
    pub const NO_REPLY_BODY: u32 = 0x8_0000;
    /// Header values keep the space after the colon, so the message can be
    /// rebuilt byte for byte.
    pub const HEADER_LEADING_SPACE: u32 = 0x10_0000;

    /// Every "no reply" flag: this front never decides before the end of the
    /// message, so it saves the MTA one round trip per command and header.
    pub const NO_REPLY_ALL: u32 = NO_REPLY_HEADER
        | NO_REPLY_CONNECT
        | NO_REPLY_HELO
        | NO_REPLY_MAIL
        | NO_REPLY_RCPT
        | NO_REPLY_DATA
        | NO_REPLY_UNKNOWN
        | NO_REPLY_END_OF_HEADERS
        | NO_REPLY_BODY;
}

/// The stages whose macro lists a filter may set (`SMFIM_*`).
pub mod stage {
    pub const CONNECT: u32 = 0;
    pub const HELO: u32 = 1;
    pub const MAIL: u32 = 2;
    pub const RCPT: u32 = 3;
    pub const DATA: u32 = 4;
    pub const END_OF_MESSAGE: u32 = 5;
    pub const END_OF_HEADERS: u32 = 6;
}
