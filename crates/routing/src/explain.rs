//! `talktime routes explain <number>`: the routing decision as a readable table.

use std::fmt;

use talktime_pii::Pii;

use crate::config::RouteMode;
use crate::router::{Skipped, Target};

/// A routing decision, whole: chosen carriers in order and every skipped one with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub plan: String,
    pub number: Pii<String>,
    pub route_prefix: String,
    pub mode: RouteMode,
    /// The matching route refuses these destinations.
    pub blocked: bool,
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
}

/// Prints the number: meant for the operator's terminal, not for logs.
impl fmt::Display for Explanation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.route_prefix.is_empty() {
            "(all numbers)"
        } else {
            &self.route_prefix
        };
        writeln!(
            formatter,
            "dial plan {}, number {}: route {prefix}, {}",
            self.plan,
            self.number.expose(),
            self.mode
        )?;
        if self.blocked {
            return writeln!(formatter, "blocked: calls to {prefix} are refused");
        }
        if self.targets.is_empty() {
            writeln!(formatter, "no carrier available")?;
        } else {
            let rows: Vec<Vec<String>> = self
                .targets
                .iter()
                .enumerate()
                .map(|(position, target)| target_row(position + 1, target))
                .collect();
            write_table(
                formatter,
                &["#", "carrier", "address", "buy/min", "sends", "why"],
                &rows,
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(formatter, "skipped:")?;
            let rows: Vec<Vec<String>> = self
                .skipped
                .iter()
                .map(|skip| vec![skip.carrier.clone(), skip.reason.to_string()])
                .collect();
            write_table(formatter, &["carrier", "reason"], &rows)?;
        }
        Ok(())
    }
}

fn target_row(position: usize, target: &Target) -> Vec<String> {
    vec![
        position.to_string(),
        target.carrier.clone(),
        format!("{}:{}/{}", target.host, target.port, target.transport),
        target
            .buy_per_minute
            .map_or_else(|| "-".to_owned(), |buy| buy.to_string()),
        target.request_user.expose().clone(),
        target.reason.clone(),
    ]
}

/// Left-aligned columns two spaces apart, the last one unpadded.
fn write_table(
    formatter: &mut fmt::Formatter<'_>,
    headers: &[&str],
    rows: &[Vec<String>],
) -> fmt::Result {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::from("  ");
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if column == last {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(formatter, "{}", line.trim_end())?;
    }
    Ok(())
}
