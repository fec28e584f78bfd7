//! The shared-secret arithmetic of RADIUS: request and response authenticators (RFC 2865
//! §3, RFC 2866 §3), Message-Authenticator (RFC 2869 §5.14, HMAC-MD5) and the hiding of
//! User-Password (RFC 2865 §5.2). Comparisons of secrets' results are constant-time.

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};

use crate::packet::{Code, MIN_PACKET, Packet};

/// The Message-Authenticator attribute type.
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC takes a key of any length.
    let mut mac =
        <hmac::Hmac<Md5> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_key());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_key() -> hmac::Hmac<Md5> {
    // new_from_slice never fails for HMAC; this keeps the function total without unwrap.
    <hmac::Hmac<Md5> as KeyInit>::new(&Default::default())
}

/// The header's Length, within the octets there are and never inside the header, so a lying
/// Length cannot make a slice panic (these functions are public and take raw octets).
fn declared_length(raw: &[u8]) -> usize {
    let declared = match raw {
        [_, _, high, low, ..] => usize::from(u16::from_be_bytes([*high, *low])),
        _ => 0,
    };
    declared.clamp(MIN_PACKET.min(raw.len()), raw.len())
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Where the Message-Authenticator's 16 octets sit in `raw` (the first one), if any.
fn message_authenticator_offset(raw: &[u8]) -> Option<usize> {
    let length = usize::from(u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?])).min(raw.len());
    let mut offset = MIN_PACKET;
    while offset + 2 <= length {
        let kind = raw[offset];
        let attribute_length = usize::from(raw[offset + 1]);
        if attribute_length < 2 || offset + attribute_length > length {
            return None;
        }
        if kind == MESSAGE_AUTHENTICATOR && attribute_length == 18 {
            return Some(offset + 2);
        }
        offset += attribute_length;
    }
    None
}

/// Whether a request's Message-Authenticator is present and right (`raw` as received).
pub fn message_authenticator_valid(raw: &[u8], secret: &[u8]) -> bool {
    let Some(at) = message_authenticator_offset(raw) else {
        return false;
    };
    let length = declared_length(raw);
    let mut copy = raw[..length].to_vec();
    let received: Vec<u8> = copy[at..at + 16].to_vec();
    copy[at..at + 16].fill(0);
    equal(&hmac_md5(secret, &copy), &received)
}

/// Whether an Accounting-Request's authenticator is MD5(header, 16 zeros, attributes,
/// secret) (RFC 2866 §3).
pub fn accounting_request_valid(raw: &[u8], secret: &[u8]) -> bool {
    if raw.len() < MIN_PACKET {
        return false;
    }
    let length = declared_length(raw);
    let expected = md5(&[&raw[..4], &[0u8; 16], &raw[MIN_PACKET..length], secret]);
    equal(&expected, &raw[4..20])
}

/// The octets of a response to a request whose authenticator was `request_authenticator`:
/// Access-Accept, -Reject and -Challenge carry a Message-Authenticator first (RFC 5080 §2.2.2
/// and the BlastRADIUS advice), then the Response Authenticator is computed over it all.
pub fn sign_response(
    mut response: Packet,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Vec<u8> {
    response
        .attributes
        .retain(|attribute| attribute.kind != MESSAGE_AUTHENTICATOR);
    let access = matches!(
        response.code,
        Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
    );
    if access {
        response.attributes.insert(
            0,
            crate::packet::Attribute {
                kind: MESSAGE_AUTHENTICATOR,
                value: vec![0; 16],
            },
        );
    }
    response.authenticator = *request_authenticator;
    let mut raw = response.encode();
    if access {
        let mac = hmac_md5(secret, &raw);
        let at = MIN_PACKET + 2;
        raw[at..at + 16].copy_from_slice(&mac);
    }
    let authenticator = md5(&[&raw[..4], request_authenticator, &raw[MIN_PACKET..], secret]);
    raw[4..20].copy_from_slice(&authenticator);
    raw
}

/// Signs a request as a client would (tests and tools): Access-Request gets a
/// Message-Authenticator over `authenticator` (random in real clients); Accounting-Request the
/// MD5 authenticator.
pub fn sign_request(mut request: Packet, authenticator: [u8; 16], secret: &[u8]) -> Vec<u8> {
    match request.code {
        Code::AccountingRequest => {
            request.authenticator = [0; 16];
            let mut raw = request.encode();
            let digest = md5(&[&raw[..4], &[0u8; 16], &raw[MIN_PACKET..], secret]);
            raw[4..20].copy_from_slice(&digest);
            raw
        }
        _ => {
            request
                .attributes
                .retain(|attribute| attribute.kind != MESSAGE_AUTHENTICATOR);
            request.attributes.push(crate::packet::Attribute {
                kind: MESSAGE_AUTHENTICATOR,
                value: vec![0; 16],
            });
            request.authenticator = authenticator;
            let mut raw = request.encode();
            if let Some(at) = message_authenticator_offset(&raw) {
                let mac = hmac_md5(secret, &raw);
                raw[at..at + 16].copy_from_slice(&mac);
            }
            raw
        }
    }
}

/// A response's authenticator checked against its request's (clients and tests).
pub fn response_valid(raw: &[u8], request_authenticator: &[u8; 16], secret: &[u8]) -> bool {
    if raw.len() < MIN_PACKET {
        return false;
    }
    let length = declared_length(raw);
    let expected = md5(&[
        &raw[..4],
        request_authenticator,
        &raw[MIN_PACKET..length],
        secret,
    ]);
    equal(&expected, &raw[4..20])
}

/// The clear text of a hidden User-Password (trailing NULs removed); `None` when its length
/// is not 16..=128 in steps of 16.
pub fn reveal_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Option<Vec<u8>> {
    if hidden.is_empty() || hidden.len() > 128 || !hidden.len().is_multiple_of(16) {
        return None;
    }
    let mut clear = Vec::with_capacity(hidden.len());
    let mut previous: &[u8] = request_authenticator;
    for chunk in hidden.chunks(16) {
        let pad = md5(&[secret, previous]);
        clear.extend(chunk.iter().zip(pad).map(|(c, p)| c ^ p));
        previous = chunk;
    }
    while clear.last() == Some(&0) {
        clear.pop();
    }
    Some(clear)
}

/// Hides a password as a client does (tests and tools).
pub fn hide_password(clear: &[u8], secret: &[u8], request_authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = clear[..clear.len().min(128)].to_vec();
    let blocks = padded.len().div_ceil(16).max(1);
    padded.resize(blocks * 16, 0);
    let mut hidden: Vec<u8> = Vec::with_capacity(padded.len());
    for (index, chunk) in padded.chunks(16).enumerate() {
        let previous: &[u8] = if index == 0 {
            request_authenticator
        } else {
            &hidden[(index - 1) * 16..index * 16]
        };
        let pad = md5(&[secret, previous]);
        let block: Vec<u8> = chunk.iter().zip(pad).map(|(c, p)| c ^ p).collect();
        hidden.extend(block);
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Attribute;

    #[test]
    fn a_lying_length_field_is_refused_not_a_panic() {
        let mut raw = vec![4u8, 1, 0, 3];
        raw.extend_from_slice(&[0; 30]);
        assert!(!accounting_request_valid(&raw, b"s"));
        assert!(!response_valid(&raw, &[0; 16], b"s"));
        assert!(!message_authenticator_valid(&raw, b"s"));
        assert!(!message_authenticator_valid(&[1, 2], b"s"));
    }

    #[test]
    fn a_hidden_password_comes_back() {
        let authenticator = [7u8; 16];
        for clear in [&b"1234"[..], b"0123456789abcdef", b"0123456789abcdef0"] {
            let hidden = hide_password(clear, b"secret", &authenticator);
            assert_eq!(hidden.len() % 16, 0);
            let revealed = reveal_password(&hidden, b"secret", &authenticator).unwrap();
            assert_eq!(revealed, clear);
            assert_ne!(
                reveal_password(&hidden, b"wrong", &authenticator).unwrap(),
                clear
            );
        }
        assert!(reveal_password(&[1; 15], b"s", &authenticator).is_none());
    }

    #[test]
    fn signed_requests_and_responses_verify_and_tampering_shows() {
        let request = Packet {
            code: Code::AccessRequest,
            identifier: 9,
            authenticator: [0; 16],
            attributes: vec![Attribute {
                kind: 1,
                value: b"1234".to_vec(),
            }],
        };
        let raw = sign_request(request, [3; 16], b"secret");
        assert!(message_authenticator_valid(&raw, b"secret"));
        assert!(!message_authenticator_valid(&raw, b"other"));
        let mut tampered = raw.clone();
        tampered[22] ^= 1;
        assert!(!message_authenticator_valid(&tampered, b"secret"));

        let accounting = Packet {
            code: Code::AccountingRequest,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![Attribute {
                kind: 40,
                value: vec![0, 0, 0, 1],
            }],
        };
        let raw = sign_request(accounting, [0; 16], b"secret");
        assert!(accounting_request_valid(&raw, b"secret"));
        assert!(!accounting_request_valid(&raw, b"secreT"));

        let response = Packet {
            code: Code::AccessAccept,
            identifier: 9,
            authenticator: [0; 16],
            attributes: Vec::new(),
        };
        let raw = sign_response(response, &[3; 16], b"secret");
        assert!(response_valid(&raw, &[3; 16], b"secret"));
        assert!(!response_valid(&raw, &[4; 16], b"secret"));
        // Its Message-Authenticator is over the packet with the request's authenticator.
        let mut check = raw.clone();
        check[4..20].copy_from_slice(&[3; 16]);
        assert!(message_authenticator_valid(&check, b"secret"));
    }
}
