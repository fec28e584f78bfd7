//! A retail recharge line (issue 16): a reseller's agent, at its counter's phone, keys its
//! agent PIN, then a customer's phone number, the amount in cents and 1 to confirm (2, or
//! anything else, cancels). The shell moves the amount from the reseller's credit to the
//! customer once per call and `sequence`, so a confirmation keyed twice or a request repeated
//! moves it once. Then the next customer's number is asked, until the agent hangs up.

use std::time::Instant;

use talktime_pii::Pii;

use super::{Call, State};
use crate::cause::DisconnectCause;
use crate::entry::Entry;
use crate::event::{Output, RetailOutcome};
use crate::speech;

/// Phone numbers are at most this long (E.164 is 15 digits; a national prefix may add some).
const MAX_NUMBER_DIGITS: usize = 20;
const MIN_NUMBER_DIGITS: usize = 4;
/// Amounts in cents: 7 digits are up to 99,999.99.
const MAX_AMOUNT_DIGITS: usize = 7;
const MICROS_PER_CENT: i64 = 10_000;

impl Call {
    pub(super) fn ask_customer_number(&mut self, before: &[&'static str]) {
        let mut names = self.owed_welcome();
        names.extend_from_slice(before);
        names.push("enter_customer_number");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::EnteringCustomerNumber(Entry::new(playback, MAX_NUMBER_DIGITS));
    }

    pub(super) fn customer_number_entered(&mut self, digits: String, now: Instant) {
        let number = digits.trim_end_matches('#');
        let valid = (MIN_NUMBER_DIGITS..=MAX_NUMBER_DIGITS).contains(&number.len())
            && number.bytes().all(|key| key.is_ascii_digit());
        if !valid {
            self.retail_mistake("unknown_customer", now);
            return;
        }
        self.ask_amount(Pii::new(number.to_owned()), &[]);
    }

    fn ask_amount(&mut self, number: Pii<String>, before: &[&'static str]) {
        let mut names = before.to_vec();
        names.push("enter_amount");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::EnteringAmount {
            entry: Entry::new(playback, MAX_AMOUNT_DIGITS),
            number,
        };
    }

    pub(super) fn amount_entered(&mut self, digits: String, now: Instant) {
        let State::EnteringAmount { number, .. } = &self.state else {
            return;
        };
        let number = number.clone();
        let cents: Option<i64> = digits.trim_end_matches('#').parse().ok();
        let Some(amount_micros) = cents
            .filter(|cents| *cents > 0)
            .and_then(|cents| cents.checked_mul(MICROS_PER_CENT))
        else {
            self.retail_failures += 1;
            if self.retail_failures >= self.config.max_pin_tries {
                self.farewell(&["invalid_amount"], DisconnectCause::NoInput, now);
            } else {
                self.ask_amount(number, &["invalid_amount"]);
            }
            return;
        };
        // "Five dollars fifty. Press 1 to confirm this recharge, or 2 to cancel."
        let currency = self
            .account
            .as_ref()
            .map(|account| account.currency.clone())
            .unwrap_or_default();
        let mut names = self
            .speak(|grammar| speech::amount(grammar, amount_micros, &currency))
            .unwrap_or_default();
        names.push("confirm_recharge");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::ConfirmingRecharge {
            entry: Entry::new(playback, 1),
            number,
            amount_micros,
        };
    }

    pub(super) fn recharge_confirmed(&mut self, digits: String, now: Instant) {
        let State::ConfirmingRecharge {
            number,
            amount_micros,
            ..
        } = &self.state
        else {
            return;
        };
        let (number, amount_micros) = (number.clone(), *amount_micros);
        let Some(agent) = self.account.as_ref().map(|account| account.account) else {
            return;
        };
        if digits != "1" {
            self.ask_customer_number(&["recharge_cancelled"]);
            return;
        }
        self.outputs.push_back(Output::RetailRecharge {
            agent,
            number,
            amount_micros,
            sequence: self.retail_sequence,
        });
        self.state = State::RetailRecharging {
            deadline: self.request_deadline(now),
        };
    }

    pub(super) fn retail_recharged(&mut self, outcome: RetailOutcome, now: Instant) {
        if !matches!(self.state, State::RetailRecharging { .. }) {
            return;
        }
        // The next confirmation is another recharge, whatever this one's fate.
        self.retail_sequence += 1;
        match outcome {
            RetailOutcome::Done { .. } => {
                self.retail_failures = 0;
                self.ask_customer_number(&["recharge_done"]);
            }
            RetailOutcome::UnknownCustomer => self.retail_mistake("unknown_customer", now),
            RetailOutcome::CreditShort => self.ask_customer_number(&["agent_credit_short"]),
            RetailOutcome::Unavailable => {
                self.farewell(&["call_failed"], DisconnectCause::SystemError, now)
            }
        }
    }

    /// A number that is nobody's, or not a number: asked again, up to the PIN tries.
    fn retail_mistake(&mut self, prompt: &'static str, now: Instant) {
        self.retail_failures += 1;
        if self.retail_failures >= self.config.max_pin_tries {
            self.farewell(&[prompt], DisconnectCause::UnknownDestination, now);
        } else {
            self.ask_customer_number(&[prompt]);
        }
    }
}
