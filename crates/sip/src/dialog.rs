//! Dialogs (RFC 3261 §12): UAC and UAS state, route sets, CSeq.
