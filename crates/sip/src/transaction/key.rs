//! Transaction matching keys (§17.1.3 for responses, §17.2.3 for requests).

use super::TransactionError;
use super::random::MAGIC_COOKIE;
use crate::{Method, Request, Response};

/// A client transaction is found by the branch of the top Via and the CSeq method (so a
/// CANCEL, which shares the INVITE's branch, has its own transaction).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    pub fn for_request(request: &Request) -> Result<ClientKey, TransactionError> {
        let via = request
            .top_via()
            .map_err(|_| TransactionError::MissingHeader("Via"))?;
        let branch = via
            .branch()
            .ok_or(TransactionError::MissingHeader("Via branch"))?;
        Ok(ClientKey {
            branch: branch.to_owned(),
            method: request.method.clone(),
        })
    }

    pub fn for_response(response: &Response) -> Result<ClientKey, TransactionError> {
        let via = response
            .top_via()
            .map_err(|_| TransactionError::MissingHeader("Via"))?;
        let branch = via
            .branch()
            .ok_or(TransactionError::MissingHeader("Via branch"))?;
        let cseq = response
            .cseq()
            .map_err(|_| TransactionError::MissingHeader("CSeq"))?;
        Ok(ClientKey {
            branch: branch.to_owned(),
            method: cseq.method,
        })
    }
}

/// A server transaction key. An ACK looks up the INVITE it acknowledges, so the method of
/// an ACK key is INVITE; a CANCEL looks up its INVITE through [`ServerKey::with_method`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261 branch (magic cookie present): branch, sent-by and method.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers: no usable branch, so match on the request's identifying fields.
    Legacy {
        request_uri: String,
        to_tag: Option<String>,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        method: Method,
        top_via: String,
    },
}

impl ServerKey {
    pub fn for_request(request: &Request) -> Result<ServerKey, TransactionError> {
        let via = request
            .top_via()
            .map_err(|_| TransactionError::MissingHeader("Via"))?;
        let method = match request.method {
            Method::Ack => Method::Invite,
            ref other => other.clone(),
        };
        if let Some(branch) = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)) {
            let sent_by = match via.port {
                Some(port) => format!("{}:{port}", via.host.to_ascii_lowercase()),
                None => via.host.to_ascii_lowercase(),
            };
            return Ok(ServerKey::Branch {
                branch: branch.to_owned(),
                sent_by,
                method,
            });
        }
        let cseq = request
            .cseq()
            .map_err(|_| TransactionError::MissingHeader("CSeq"))?;
        let call_id = request
            .call_id()
            .map_err(|_| TransactionError::MissingHeader("Call-ID"))?;
        let from = request
            .from()
            .map_err(|_| TransactionError::MissingHeader("From"))?;
        let to = request
            .to()
            .map_err(|_| TransactionError::MissingHeader("To"))?;
        // The ACK of a non-2xx carries the To tag our response added; the INVITE did not.
        // The layer retries an ACK lookup without the tag (see `without_to_tag`).
        Ok(ServerKey::Legacy {
            request_uri: request.uri.to_string(),
            to_tag: to.tag().map(str::to_owned),
            from_tag: from.tag().map(str::to_owned),
            call_id: call_id.to_owned(),
            cseq: cseq.sequence,
            method,
            top_via: via.to_string(),
        })
    }

    /// The same key for another method: a CANCEL finds the INVITE it cancels this way.
    pub fn with_method(&self, method: Method) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Branch { method: m, .. } | ServerKey::Legacy { method: m, .. } => {
                *m = method
            }
        }
        key
    }

    /// For RFC 2543 ACK matching: the INVITE key had no To tag.
    pub fn without_to_tag(&self) -> Option<ServerKey> {
        match self {
            ServerKey::Legacy {
                to_tag: Some(_), ..
            } => {
                let mut key = self.clone();
                if let ServerKey::Legacy { to_tag, .. } = &mut key {
                    *to_tag = None;
                }
                Some(key)
            }
            _ => None,
        }
    }
}
