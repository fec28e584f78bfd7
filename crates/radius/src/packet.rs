//! RADIUS packets on the wire (RFC 2865 §3, §5): a 20-octet header and type-length-value
//! attributes. Decoding checks every length before it reads; octets past the header's
//! Length are padding and ignored, a datagram shorter than it is refused.

/// The smallest and largest packets RFC 2865 allows.
pub const MIN_PACKET: usize = 20;
pub const MAX_PACKET: usize = 4096;

/// Packet codes this server meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    Other(u8),
}

impl Code {
    pub fn from_byte(byte: u8) -> Code {
        match byte {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            other => Code::Other(other),
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::Other(other) => other,
        }
    }
}

/// One attribute: its type and value (the length octet is implied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// A decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} octets: shorter than a RADIUS header")]
    TooShort(usize),
    #[error("declared length {0} is outside 20..=4096")]
    BadLength(usize),
    #[error("declared length {declared} but only {received} octets arrived")]
    Truncated { declared: usize, received: usize },
    #[error("attribute at offset {0} has a bad length")]
    BadAttribute(usize),
}

/// The Vendor-Specific attribute type (RFC 2865 §5.26).
pub const VENDOR_SPECIFIC: u8 = 26;

impl Packet {
    /// Decodes a datagram.
    pub fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        if bytes.len() < MIN_PACKET {
            return Err(DecodeError::TooShort(bytes.len()));
        }
        let declared = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if !(MIN_PACKET..=MAX_PACKET).contains(&declared) {
            return Err(DecodeError::BadLength(declared));
        }
        if bytes.len() < declared {
            return Err(DecodeError::Truncated {
                declared,
                received: bytes.len(),
            });
        }
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&bytes[4..20]);
        let attributes = decode_attributes(&bytes[MIN_PACKET..declared], MIN_PACKET)?;
        Ok(Packet {
            code: Code::from_byte(bytes[0]),
            identifier: bytes[1],
            authenticator,
            attributes,
        })
    }

    /// The packet's octets with its authenticator as it stands.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(self.code.byte());
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.authenticator);
        for attribute in &self.attributes {
            // Values are bounded where attributes are made (at most 253 octets).
            out.push(attribute.kind);
            out.push((attribute.value.len() + 2) as u8);
            out.extend_from_slice(&attribute.value);
        }
        let length = (out.len() as u16).to_be_bytes();
        out[2] = length[0];
        out[3] = length[1];
        out
    }

    /// The first value of an attribute type.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|attribute| attribute.kind == kind)
            .map(|attribute| attribute.value.as_slice())
    }

    /// An attribute as text (invalid UTF-8 replaced), trimmed; empty counts as absent.
    pub fn text(&self, kind: u8) -> Option<String> {
        let text = String::from_utf8_lossy(self.get(kind)?).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// A 32-bit integer attribute.
    pub fn integer(&self, kind: u8) -> Option<u32> {
        let value: [u8; 4] = self.get(kind)?.try_into().ok()?;
        Some(u32::from_be_bytes(value))
    }

    /// Every (vendor type, value) of one vendor's Vendor-Specific attributes (RFC 2865 §5.26
    /// layout: vendor id, then sub-attributes with one-octet type and length).
    pub fn vendor_attributes(&self, vendor: u32) -> Vec<(u8, &[u8])> {
        let mut found = Vec::new();
        for attribute in self.attributes.iter().filter(|a| a.kind == VENDOR_SPECIFIC) {
            let value = attribute.value.as_slice();
            if value.len() < 4
                || u32::from_be_bytes([value[0], value[1], value[2], value[3]]) != vendor
            {
                continue;
            }
            let mut rest = &value[4..];
            while rest.len() >= 2 {
                let length = usize::from(rest[1]);
                if length < 2 || length > rest.len() {
                    break;
                }
                found.push((rest[0], &rest[2..length]));
                rest = &rest[length..];
            }
        }
        found
    }

    /// Adds an attribute; a value longer than 253 octets is cut to fit.
    pub fn push(&mut self, kind: u8, value: &[u8]) {
        let value = &value[..value.len().min(253)];
        self.attributes.push(Attribute {
            kind,
            value: value.to_vec(),
        });
    }

    /// Adds one vendor sub-attribute in its own Vendor-Specific attribute.
    pub fn push_vendor(&mut self, vendor: u32, kind: u8, value: &[u8]) {
        let value = &value[..value.len().min(247)];
        let mut data = vendor.to_be_bytes().to_vec();
        data.push(kind);
        data.push((value.len() + 2) as u8);
        data.extend_from_slice(value);
        self.push(VENDOR_SPECIFIC, &data);
    }
}

fn decode_attributes(mut bytes: &[u8], mut offset: usize) -> Result<Vec<Attribute>, DecodeError> {
    let mut attributes = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 2 {
            return Err(DecodeError::BadAttribute(offset));
        }
        let length = usize::from(bytes[1]);
        if length < 2 || length > bytes.len() {
            return Err(DecodeError::BadAttribute(offset));
        }
        attributes.push(Attribute {
            kind: bytes[0],
            value: bytes[2..length].to_vec(),
        });
        bytes = &bytes[length..];
        offset += length;
    }
    Ok(attributes)
}
