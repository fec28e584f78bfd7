//! Transactions (RFC 3261 §17, RFC 6026): client and server, INVITE and non-INVITE.
