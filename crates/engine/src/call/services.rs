//! The caller's services at the destination prompt (issue 21): `#` redials, a lone key 1-9
//! calls a speed dial, `*1`-`*9` stores the last number under that key, `*0` recharges with a
//! voucher, `*00` changes the card's PIN and `*01` reads out a one-time code for the customer
//! portal. A recharge line (`recharge_only`) goes straight
//! to the voucher and says goodbye after it.

use std::time::Instant;

use talktime_pii::Pii;

use super::{Call, EntryKind, State};
use crate::cause::DisconnectCause;
use crate::destination::normalize_destination;
use crate::entry::Entry;
use crate::event::{AuthMethod, Output, PinChangeOutcome, VoucherOutcome};
use crate::speech;

/// A new PIN keyed once, waiting for its confirmation.
pub(super) type NewPin = Pii<String>;

/// Longest voucher code the IVR collects (the ledger decides which lengths exist).
const MAX_VOUCHER_DIGITS: usize = 18;

/// What a service code asks for.
enum Service {
    Redial,
    SpeedDial(u8),
    StoreSpeedDial(u8),
    Voucher,
    ChangePin,
    PortalCode,
}

impl Call {
    /// Handles `dialled` when it is a service code; `false` leaves it to be a destination.
    pub(super) fn service_code(&mut self, dialled: &str, now: Instant) -> bool {
        let Some(account) = self.account.as_ref().map(|account| account.account) else {
            return false;
        };
        let service = match self.parse_service(dialled) {
            Some(service) => service,
            None if dialled == "#" => {
                // Codes are on but redial is not: a lone `#` is silence, as without codes.
                self.no_input(EntryKind::Destination, now);
                return true;
            }
            None if dialled.starts_with('*') => {
                self.destination_refused(
                    "invalid_destination",
                    DisconnectCause::UnknownDestination,
                    now,
                );
                return true;
            }
            None => return false,
        };
        match service {
            Service::Redial => match self.last_destination.clone() {
                Some(last) => self.open_attempt(last, now),
                None => self.look_up_number(account, 0, now),
            },
            Service::SpeedDial(slot) => self.look_up_number(account, slot, now),
            Service::StoreSpeedDial(slot) => {
                self.outputs.push_back(Output::StoreSpeedDial {
                    account,
                    slot,
                    number: self.last_destination.clone(),
                });
                self.state = State::StoringSpeedDial {
                    slot,
                    deadline: self.request_deadline(now),
                };
            }
            Service::Voucher => self.ask_voucher(&[]),
            Service::ChangePin => self.ask_new_pin(&[]),
            Service::PortalCode => {
                self.outputs.push_back(Output::IssuePortalCode {
                    account,
                    caller_id: self.caller_id.clone(),
                });
                self.state = State::IssuingPortalCode {
                    deadline: self.request_deadline(now),
                };
            }
        }
        true
    }

    fn parse_service(&self, dialled: &str) -> Option<Service> {
        let key = |text: &str| match text.as_bytes() {
            [digit @ b'1'..=b'9'] => Some(digit - b'0'),
            _ => None,
        };
        let config = &self.config;
        let pin_caller = self.authenticated_by == Some(AuthMethod::Pin)
            && self
                .account
                .as_ref()
                .is_some_and(|account| account.card.is_some());
        match dialled {
            "#" if config.speed_dial => Some(Service::Redial),
            "*0" if config.voucher_recharge => Some(Service::Voucher),
            "*00" if config.pin_change && pin_caller => Some(Service::ChangePin),
            // The code is claimed for the caller's number: without one (withheld, anonymous)
            // there is nothing to issue it for, and `*01` is a wrong number, not a failure.
            "*01" if config.portal_code && self.caller_id.is_some() => Some(Service::PortalCode),
            _ if config.speed_dial => match dialled.strip_prefix('*') {
                Some(rest) => key(rest).map(Service::StoreSpeedDial),
                None => key(dialled).map(Service::SpeedDial),
            },
            _ => None,
        }
    }

    fn look_up_number(&mut self, account: crate::event::AccountId, slot: u8, now: Instant) {
        self.outputs
            .push_back(Output::LookupStoredNumber { account, slot });
        self.state = State::LookingUpNumber {
            deadline: self.request_deadline(now),
        };
    }

    pub(super) fn stored_number(&mut self, number: Option<Pii<String>>, now: Instant) {
        if !matches!(self.state, State::LookingUpNumber { .. }) {
            return;
        }
        let normalized = number.and_then(|number| normalize_destination(number.expose()).ok());
        match normalized {
            Some(destination) => self.open_attempt(Pii::new(destination), now),
            None => self.destination_refused(
                "no_number_stored",
                DisconnectCause::UnknownDestination,
                now,
            ),
        }
    }

    pub(super) fn speed_dial_stored(&mut self, stored: bool) {
        let State::StoringSpeedDial { slot, .. } = self.state else {
            return;
        };
        if !stored {
            self.ask_destination(&["no_number_stored"]);
            return;
        }
        let mut words = vec!["speed_dial_stored"];
        words.extend(
            self.speak(|grammar| speech::cardinal(grammar, u64::from(slot)))
                .unwrap_or_default(),
        );
        self.destination_failures = 0;
        self.ask_destination(&words);
    }

    /// The code is said twice, digit by digit, then the destination prompt comes back.
    pub(super) fn portal_code_issued(&mut self, code: Option<Pii<String>>) {
        if !matches!(self.state, State::IssuingPortalCode { .. }) {
            return;
        }
        let digits: Option<Vec<&'static str>> = code
            .as_ref()
            .and_then(|code| code.expose().chars().map(speech::digit_prompt).collect());
        let Some(digits) = digits.filter(|digits| !digits.is_empty()) else {
            self.ask_destination(&["call_failed"]);
            return;
        };
        let mut words = vec!["portal_code"];
        words.extend(&digits);
        words.push("portal_code_again");
        words.extend(&digits);
        self.ask_destination(&words);
    }

    /// A lookup, a redemption or a PIN change the ledger did not answer in time.
    pub(super) fn service_timed_out(&mut self, now: Instant) {
        self.after_service(&["call_failed"], DisconnectCause::SystemError, now);
    }

    /// Back to the destination prompt, or goodbye on a recharge line.
    fn after_service(&mut self, before: &[&'static str], cause: DisconnectCause, now: Instant) {
        if self.config.recharge_only {
            self.farewell(before, cause, now);
        } else {
            self.ask_destination(before);
        }
    }

    // ----- vouchers -----

    pub(super) fn ask_voucher(&mut self, before: &[&'static str]) {
        let mut names = self.owed_welcome();
        names.extend_from_slice(before);
        names.push("enter_voucher");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::EnteringVoucher(Entry::new(playback, MAX_VOUCHER_DIGITS));
    }

    pub(super) fn voucher_entered(&mut self, code: String, now: Instant) {
        let Some(account) = self.account.as_ref().map(|account| account.account) else {
            return;
        };
        self.outputs.push_back(Output::RedeemVoucher {
            account,
            code: Pii::new(code),
        });
        self.state = State::RedeemingVoucher {
            deadline: self.request_deadline(now),
        };
    }

    pub(super) fn voucher_redeemed(&mut self, outcome: VoucherOutcome, now: Instant) {
        if !matches!(self.state, State::RedeemingVoucher { .. }) {
            return;
        }
        match outcome {
            VoucherOutcome::Credited { balance_micros, .. } => {
                self.voucher_failures = 0;
                let mut words = vec!["voucher_accepted"];
                if let Some(account) = self.account.as_mut() {
                    account.balance_micros = balance_micros;
                }
                let currency = self
                    .account
                    .as_ref()
                    .map(|account| account.currency.clone());
                if let Some(amount) = currency.and_then(|currency| {
                    self.speak(|grammar| speech::amount(grammar, balance_micros, &currency))
                }) {
                    words.push("you_have");
                    words.extend(amount);
                }
                self.after_service(&words, DisconnectCause::Normal, now);
            }
            VoucherOutcome::Unknown => {
                self.voucher_failures += 1;
                // A wrong code is a guess like a wrong PIN: it counts towards the lock-out.
                self.outputs.push_back(Output::PinFailed {
                    caller_id: self.caller_id.clone(),
                    failures: self.voucher_failures,
                });
                if self.voucher_failures >= self.config.max_pin_tries {
                    self.farewell(
                        &["invalid_voucher"],
                        DisconnectCause::AuthenticationFailed,
                        now,
                    );
                } else {
                    self.ask_voucher(&["invalid_voucher"]);
                }
            }
            VoucherOutcome::AlreadyUsed => self.voucher_refused("voucher_used", now),
            VoucherOutcome::NotUsable => self.voucher_refused("voucher_not_usable", now),
            VoucherOutcome::NotRefillable => {
                self.after_service(&["card_not_refillable"], DisconnectCause::Normal, now)
            }
            VoucherOutcome::Unavailable => {
                self.after_service(&["call_failed"], DisconnectCause::SystemError, now)
            }
        }
    }

    fn voucher_refused(&mut self, prompt: &'static str, now: Instant) {
        self.voucher_failures += 1;
        if self.voucher_failures >= self.config.max_pin_tries {
            self.after_service(&[prompt], DisconnectCause::Normal, now);
        } else {
            self.ask_voucher(&[prompt]);
        }
    }

    // ----- PIN change -----

    pub(super) fn ask_new_pin(&mut self, before: &[&'static str]) {
        let mut names = before.to_vec();
        names.push("enter_new_pin");
        let prompts = self.prompts(&names);
        let playback = self.play(prompts, true);
        self.state = State::EnteringNewPin(Entry::new(playback, self.config.pin_max_length));
    }

    pub(super) fn new_pin_entered(&mut self, pin: String, now: Instant) {
        let length = pin.chars().count();
        let one_key = pin.chars().all(|key| pin.starts_with(key));
        if length < self.config.pin_min_length || length > self.config.pin_max_length || one_key {
            self.new_pin_refused("invalid_new_pin", now);
            return;
        }
        let prompts = self.prompts(&["confirm_new_pin"]);
        let playback = self.play(prompts, true);
        self.state = State::ConfirmingNewPin {
            entry: Entry::new(playback, self.config.pin_max_length),
            first: Pii::new(pin),
        };
    }

    pub(super) fn new_pin_confirmed(&mut self, again: String, now: Instant) {
        let State::ConfirmingNewPin { first, .. } = &self.state else {
            return;
        };
        if first.expose() != &again {
            self.new_pin_refused("pins_do_not_match", now);
            return;
        }
        let new_pin = first.clone();
        let Some(card) = self.account.as_ref().and_then(|account| account.card) else {
            return;
        };
        self.outputs.push_back(Output::ChangePin { card, new_pin });
        self.state = State::ChangingPin {
            deadline: self.request_deadline(now),
        };
    }

    pub(super) fn pin_changed(&mut self, outcome: PinChangeOutcome, now: Instant) {
        if !matches!(self.state, State::ChangingPin { .. }) {
            return;
        }
        match outcome {
            PinChangeOutcome::Changed => {
                self.pin_change_failures = 0;
                self.after_service(&["pin_changed"], DisconnectCause::Normal, now);
            }
            PinChangeOutcome::Taken => {
                self.outputs.push_back(Output::PinFailed {
                    caller_id: self.caller_id.clone(),
                    failures: self.pin_change_failures + 1,
                });
                self.new_pin_refused("invalid_new_pin", now);
            }
            PinChangeOutcome::NotRefillable => {
                self.after_service(&["card_not_refillable"], DisconnectCause::Normal, now)
            }
            PinChangeOutcome::Unavailable => {
                self.after_service(&["call_failed"], DisconnectCause::SystemError, now)
            }
        }
    }

    fn new_pin_refused(&mut self, prompt: &'static str, now: Instant) {
        self.pin_change_failures += 1;
        if self.pin_change_failures >= self.config.max_pin_tries {
            self.pin_change_failures = 0;
            self.after_service(&[prompt], DisconnectCause::Normal, now);
        } else {
            self.ask_new_pin(&[prompt]);
        }
    }

    // ----- language -----

    /// After authentication: a language picked in the menu is remembered for next time.
    pub(super) fn remember_language(&mut self) {
        if !self.config.remember_language || !self.language_from_menu {
            return;
        }
        self.outputs.push_back(Output::RememberLanguage {
            account: self.account.as_ref().map(|account| account.account),
            caller_id: self.caller_id.clone(),
            language: self.language,
        });
    }
}
