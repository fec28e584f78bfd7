//! Prints a simulator report as the `talktime rate` subcommand would:
//! `cargo run -p talktime-billing --example simulate`.

use rust_decimal::Decimal;
use talktime_billing::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut india = Rate::new("91", Decimal::new(8, 2), 180, 180);
    india.description = "India".to_owned();
    india.connection_fee = Decimal::new(39, 2);
    let deck = RateDeck::build(TariffSettings::default(), vec![india])?;
    let request = SimulationRequest {
        number: "919812345678".to_owned(),
        duration_ms: 25 * 60 * 1000,
        start: LocalStart::new(Date::new(2025, 5, 1)?, TimeOfDay::new(9, 0, 0)?),
        toll_free_access: false,
        package_seconds_available: 0,
        account_fees: vec![AccountFee {
            name: "activation".to_owned(),
            amount: Decimal::new(39, 2),
        }],
        taxes: TaxProfile::none(),
        balance: Some(Money::new(Decimal::new(500, 2), Currency::USD)),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&simulate(&deck, &request)?)?
    );
    Ok(())
}
