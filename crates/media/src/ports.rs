//! RTP port bookkeeping over a configured range: even RTP ports, RTCP on the next odd port.

/// An allocated RTP/RTCP pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPair {
    pub rtp: u16,
    pub rtcp: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("port range {first}..={last} holds no even/odd pair")]
    EmptyRange { first: u16, last: u16 },
    #[error("all {0} RTP port pairs are in use")]
    Exhausted(usize),
    #[error("port {0} was not allocated")]
    NotAllocated(u16),
}

/// Hands out port pairs round-robin (so a just-freed port is not reused at once and late packets
/// of an old call do not land in a new one).
#[derive(Debug, Clone)]
pub struct PortAllocator {
    first_even: u16,
    in_use: Vec<bool>,
    used: usize,
    cursor: usize,
}

impl PortAllocator {
    /// A range such as 10000..=20000; odd starts are rounded up, an RTP port at the end of
    /// the range without room for RTCP is skipped.
    pub fn new(first: u16, last: u16) -> Result<Self, PortError> {
        let first_even = first.checked_add(first % 2).filter(|p| *p < last);
        let Some(first_even) = first_even else {
            return Err(PortError::EmptyRange { first, last });
        };
        // Even ports p with p + 1 <= last (u32: the span may be 65536 wide).
        let pairs = (u32::from(last) - u32::from(first_even)).div_ceil(2) as usize;
        Ok(Self {
            first_even,
            in_use: vec![false; pairs],
            used: 0,
            cursor: 0,
        })
    }

    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    pub fn in_use(&self) -> usize {
        self.used
    }

    /// The next free pair after the last one handed out.
    pub fn allocate(&mut self) -> Result<PortPair, PortError> {
        self.allocate_from(self.cursor)
    }

    /// The first free pair at or after `start` (any number: it wraps). The shell passes a
    /// random one so the next call's ports cannot be predicted (issue 20); the allocator
    /// itself stays free of randomness.
    pub fn allocate_from(&mut self, start: usize) -> Result<PortPair, PortError> {
        let pairs = self.in_use.len();
        let start = start % pairs.max(1);
        for step in 0..pairs {
            let index = (start + step) % pairs;
            if !self.in_use[index] {
                self.in_use[index] = true;
                self.used += 1;
                self.cursor = (index + 1) % pairs;
                let rtp = self.port_at(index);
                return Ok(PortPair { rtp, rtcp: rtp + 1 });
            }
        }
        Err(PortError::Exhausted(pairs))
    }

    pub fn release(&mut self, rtp: u16) -> Result<(), PortError> {
        let index = rtp
            .checked_sub(self.first_even)
            .filter(|offset| offset % 2 == 0)
            .map(|offset| usize::from(offset / 2))
            .filter(|index| self.in_use.get(*index) == Some(&true))
            .ok_or(PortError::NotAllocated(rtp))?;
        self.in_use[index] = false;
        self.used -= 1;
        Ok(())
    }

    fn port_at(&self, index: usize) -> u16 {
        // index < pairs, which was derived from a u16 span, so this fits.
        self.first_even + (index as u16) * 2
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_random_start_finds_the_next_free_pair_and_wraps() {
        let mut ports = PortAllocator::new(20000, 20005).unwrap();
        assert_eq!(ports.allocate_from(1).unwrap().rtp, 20002);
        assert_eq!(ports.allocate_from(1 + 3 * 1000).unwrap().rtp, 20004);
        assert_eq!(
            ports.allocate_from(2).unwrap().rtp,
            20000,
            "wraps to the first free"
        );
        assert!(ports.allocate_from(7).is_err());
    }
}
