//! Configuration checks, run before a [`crate::Router`] is built so that a bad file is refused
//! at start-up (or reload) rather than on a call.

use std::collections::HashSet;
use std::fmt;

use crate::config::{CarrierConfig, DialPlanConfig, RouteConfig, RouteMode};
use crate::number::NumberRules;

/// One thing wrong with the routing configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a carrier has an empty name")]
    EmptyCarrierName,
    #[error("carrier {0:?} is defined twice")]
    DuplicateCarrier(String),
    #[error("carrier {0:?} has no host")]
    EmptyHost(String),
    #[error("carrier {0:?}: port 0 is not usable")]
    ZeroPort(String),
    #[error("carrier {0:?}: username and password must be given together")]
    IncompleteCredentials(String),
    #[error("carrier {0:?}: registration needs a username and password")]
    RegistrationWithoutCredentials(String),
    #[error("carrier {carrier:?}: {field} must be at least 1 (disable the carrier instead)")]
    ZeroLimit {
        carrier: String,
        field: &'static str,
    },
    #[error("carrier {carrier:?}: {code} is not a final SIP failure code (300-699)")]
    InvalidFailoverCode { carrier: String, code: u16 },
    #[error("carrier {carrier:?}: add_prefix {prefix:?} must be digits")]
    InvalidAddPrefix { carrier: String, prefix: String },
    #[error("carrier {0:?}: a fixed caller ID must be digits, optionally after +")]
    InvalidFixedCallerId(String),
    #[error("carrier {0:?}: tls_pin_sha256 must be 64 hex digits (a SHA-256)")]
    InvalidTlsPin(String),
    #[error("a dial plan has an empty name")]
    EmptyDialPlanName,
    #[error("dial plan {0:?} is defined twice")]
    DuplicateDialPlan(String),
    #[error("dial plan {plan:?}: route prefix {prefix:?} must be digits")]
    InvalidRoutePrefix { plan: String, prefix: String },
    #[error("dial plan {plan:?}: route prefix {prefix:?} appears twice")]
    DuplicateRoutePrefix { plan: String, prefix: String },
    #[error("dial plan {plan:?}: route {prefix:?} lists no carriers and is not blocked")]
    EmptyRoute { plan: String, prefix: String },
    #[error("dial plan {plan:?}: route {prefix:?} names unknown carrier {carrier:?}")]
    UnknownCarrier {
        plan: String,
        prefix: String,
        carrier: String,
    },
    #[error("dial plan {plan:?}: route {prefix:?} lists carrier {carrier:?} twice")]
    DuplicateRouteCarrier {
        plan: String,
        prefix: String,
        carrier: String,
    },
    #[error("dial plan {plan:?}: route {prefix:?} gives carrier {carrier:?} weight 0")]
    ZeroWeight {
        plan: String,
        prefix: String,
        carrier: String,
    },
    #[error("number rules: {field} value {value:?} must be digits")]
    InvalidNumberRule { field: &'static str, value: String },
}

impl ConfigError {
    /// The field of a carrier or route form the problem is in (for a message at the field).
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::EmptyCarrierName
            | ConfigError::DuplicateCarrier(_)
            | ConfigError::EmptyDialPlanName
            | ConfigError::DuplicateDialPlan(_) => "name",
            ConfigError::EmptyHost(_) => "host",
            ConfigError::ZeroPort(_) => "port",
            ConfigError::IncompleteCredentials(_)
            | ConfigError::RegistrationWithoutCredentials(_) => "username",
            ConfigError::ZeroLimit { field, .. } => field,
            ConfigError::InvalidFailoverCode { .. } => "failover_codes",
            ConfigError::InvalidAddPrefix { .. } => "add_prefix",
            ConfigError::InvalidFixedCallerId(_) => "caller_id",
            ConfigError::InvalidTlsPin(_) => "tls_pin_sha256",
            ConfigError::InvalidRoutePrefix { .. } | ConfigError::DuplicateRoutePrefix { .. } => {
                "prefix"
            }
            ConfigError::EmptyRoute { .. }
            | ConfigError::UnknownCarrier { .. }
            | ConfigError::DuplicateRouteCarrier { .. }
            | ConfigError::ZeroWeight { .. } => "carriers",
            ConfigError::InvalidNumberRule { field, .. } => field,
        }
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.0.iter().enumerate() {
            if position > 0 {
                formatter.write_str("; ")?;
            }
            write!(formatter, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn into_result(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

fn is_digits(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Checks carriers and dial plans together (a plan may only name defined carriers).
pub fn validate(
    carriers: &[CarrierConfig],
    dial_plans: &[DialPlanConfig],
) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    for carrier in carriers {
        if !names.insert(carrier.name.as_str()) {
            errors.push(ConfigError::DuplicateCarrier(carrier.name.clone()));
        }
        check_carrier(carrier, &mut errors);
    }
    let mut plan_names = HashSet::new();
    for plan in dial_plans {
        if plan.name.is_empty() {
            errors.push(ConfigError::EmptyDialPlanName);
        }
        if !plan_names.insert(plan.name.as_str()) {
            errors.push(ConfigError::DuplicateDialPlan(plan.name.clone()));
        }
        let mut prefixes = HashSet::new();
        for route in &plan.routes {
            if !prefixes.insert(route.prefix.as_str()) {
                errors.push(ConfigError::DuplicateRoutePrefix {
                    plan: plan.name.clone(),
                    prefix: route.prefix.clone(),
                });
            }
            check_route(&plan.name, route, &names, &mut errors);
        }
    }
    ConfigErrors(errors).into_result()
}

fn check_carrier(carrier: &CarrierConfig, errors: &mut Vec<ConfigError>) {
    let name = || carrier.name.clone();
    if carrier.name.is_empty() {
        errors.push(ConfigError::EmptyCarrierName);
    }
    if carrier.host.trim().is_empty() {
        errors.push(ConfigError::EmptyHost(name()));
    }
    if carrier.port == 0 {
        errors.push(ConfigError::ZeroPort(name()));
    }
    if carrier.username.is_some() != carrier.password.is_some() {
        errors.push(ConfigError::IncompleteCredentials(name()));
    }
    if carrier.register_expires_s > 0 && carrier.username.is_none() {
        errors.push(ConfigError::RegistrationWithoutCredentials(name()));
    }
    let limits = [
        ("max_calls", carrier.max_calls.map(u64::from)),
        ("calls_per_second", carrier.calls_per_second.map(u64::from)),
        ("invite_timeout_ms", Some(carrier.invite_timeout_ms)),
    ];
    for (field, value) in limits {
        if value == Some(0) {
            errors.push(ConfigError::ZeroLimit {
                carrier: name(),
                field,
            });
        }
    }
    for &code in carrier.failover_codes.iter().flatten() {
        if !(300..=699).contains(&code) {
            errors.push(ConfigError::InvalidFailoverCode {
                carrier: name(),
                code,
            });
        }
    }
    if !is_digits(&carrier.add_prefix) {
        errors.push(ConfigError::InvalidAddPrefix {
            carrier: name(),
            prefix: carrier.add_prefix.clone(),
        });
    }
    if let Some(pin) = &carrier.tls_pin_sha256 {
        let hex = pin.trim().replace(':', "");
        if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            errors.push(ConfigError::InvalidTlsPin(name()));
        }
    }
    if let crate::CallerIdRule::Fixed(number) = &carrier.caller_id {
        let digits = number.strip_prefix('+').unwrap_or(number);
        if digits.is_empty() || !is_digits(digits) {
            errors.push(ConfigError::InvalidFixedCallerId(name()));
        }
    }
}

fn check_route(
    plan: &str,
    route: &RouteConfig,
    carriers: &HashSet<&str>,
    errors: &mut Vec<ConfigError>,
) {
    let plan = || plan.to_owned();
    let prefix = || route.prefix.clone();
    if !is_digits(&route.prefix) {
        errors.push(ConfigError::InvalidRoutePrefix {
            plan: plan(),
            prefix: prefix(),
        });
    }
    if route.carriers.is_empty() && !route.blocked {
        errors.push(ConfigError::EmptyRoute {
            plan: plan(),
            prefix: prefix(),
        });
    }
    let mut listed = HashSet::new();
    for carrier in &route.carriers {
        let carrier_name = || carrier.name.clone();
        if !carriers.contains(carrier.name.as_str()) {
            errors.push(ConfigError::UnknownCarrier {
                plan: plan(),
                prefix: prefix(),
                carrier: carrier_name(),
            });
        }
        if !listed.insert(carrier.name.as_str()) {
            errors.push(ConfigError::DuplicateRouteCarrier {
                plan: plan(),
                prefix: prefix(),
                carrier: carrier_name(),
            });
        }
        if route.mode == RouteMode::Weighted && carrier.weight == 0 {
            errors.push(ConfigError::ZeroWeight {
                plan: plan(),
                prefix: prefix(),
                carrier: carrier_name(),
            });
        }
    }
}

impl NumberRules {
    /// Checks that every prefix is digits (an international prefix may also be `+`).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, value: &str, plus_allowed: bool| {
            let ok = !value.is_empty() && (is_digits(value) || (plus_allowed && value == "+"));
            if !ok {
                errors.push(ConfigError::InvalidNumberRule {
                    field,
                    value: value.to_owned(),
                });
            }
        };
        for prefix in &self.international_prefixes {
            check("international_prefixes", prefix, true);
        }
        if let Some(prefix) = &self.national_prefix {
            check("national_prefix", prefix, false);
        }
        if let Some(code) = &self.country_code {
            check("country_code", code, false);
        }
        for prefix in &self.blocked_prefixes {
            check("blocked_prefixes", prefix, false);
        }
        ConfigErrors(errors).into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteCarrier;

    fn plan(mode: RouteMode, carriers: &[&str]) -> DialPlanConfig {
        DialPlanConfig {
            name: "regular".into(),
            routes: vec![RouteConfig {
                prefix: "44".into(),
                mode,
                carriers: carriers
                    .iter()
                    .map(|name| RouteCarrier::new(*name))
                    .collect(),
                blocked: false,
            }],
        }
    }

    fn errors(carriers: &[CarrierConfig], plans: &[DialPlanConfig]) -> Vec<ConfigError> {
        validate(carriers, plans)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    #[test]
    fn a_good_configuration_passes() {
        let carriers = [CarrierConfig::new("a", "192.0.2.1")];
        assert_eq!(
            validate(&carriers, &[plan(RouteMode::LeastCost, &["a"])]),
            Ok(())
        );
    }

    #[test]
    fn unknown_carrier_in_a_dial_plan_is_refused() {
        let carriers = [CarrierConfig::new("a", "192.0.2.1")];
        let found = errors(&carriers, &[plan(RouteMode::Priority, &["a", "ghost"])]);
        assert_eq!(
            found,
            vec![ConfigError::UnknownCarrier {
                plan: "regular".into(),
                prefix: "44".into(),
                carrier: "ghost".into()
            }]
        );
    }

    #[test]
    fn registration_needs_credentials() {
        let mut carrier = CarrierConfig::new("a", "192.0.2.1");
        carrier.register_expires_s = 3600;
        let plans = [plan(RouteMode::Priority, &["a"])];
        assert_eq!(
            errors(std::slice::from_ref(&carrier), &plans),
            vec![ConfigError::RegistrationWithoutCredentials("a".into())]
        );
        carrier.username = Some("talktime".into());
        carrier.password = Some("secret".into());
        assert_eq!(validate(&[carrier], &plans), Ok(()));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let carriers = [
            CarrierConfig::new("a", "192.0.2.1"),
            CarrierConfig::new("a", "192.0.2.2"),
        ];
        let plans = [
            plan(RouteMode::Priority, &["a"]),
            plan(RouteMode::Priority, &["a", "a"]),
        ];
        let found = errors(&carriers, &plans);
        assert!(found.contains(&ConfigError::DuplicateCarrier("a".into())));
        assert!(found.contains(&ConfigError::DuplicateDialPlan("regular".into())));
        assert!(
            found
                .iter()
                .any(|e| matches!(e, ConfigError::DuplicateRouteCarrier { .. }))
        );
    }

    #[test]
    fn zero_weight_is_refused_only_in_weighted_mode() {
        let carriers = [CarrierConfig::new("a", "192.0.2.1")];
        let mut weighted = plan(RouteMode::Weighted, &["a"]);
        weighted.routes[0].carriers[0].weight = 0;
        assert!(matches!(
            errors(&carriers, &[weighted.clone()])[..],
            [ConfigError::ZeroWeight { .. }]
        ));
        weighted.routes[0].mode = RouteMode::Priority;
        assert!(errors(&carriers, &[weighted]).is_empty());
    }

    #[test]
    fn carrier_settings_are_checked() {
        let mut carrier = CarrierConfig::new("a", " ");
        carrier.port = 0;
        carrier.username = Some("user".into());
        carrier.max_calls = Some(0);
        carrier.failover_codes = Some(vec![503, 200]);
        carrier.add_prefix = "9x".into();
        carrier.caller_id = crate::CallerIdRule::Fixed("unknown".into());
        let found = errors(&[carrier], &[]);
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn empty_and_bad_routes_are_refused() {
        let carriers = [CarrierConfig::new("a", "192.0.2.1")];
        let mut bad = plan(RouteMode::Priority, &[]);
        bad.routes[0].prefix = "+44".into();
        let found = errors(&carriers, &[bad.clone()]);
        assert_eq!(found.len(), 2, "{found:?}");
        bad.routes[0].prefix = "44".into();
        bad.routes[0].blocked = true;
        assert!(errors(&carriers, &[bad]).is_empty());
    }

    #[test]
    fn number_rules_prefixes_must_be_digits() {
        assert_eq!(NumberRules::default().validate(), Ok(()));
        let rules = NumberRules {
            country_code: Some("+44".into()),
            blocked_prefixes: vec![String::new()],
            ..NumberRules::default()
        };
        assert_eq!(rules.validate().err().map(|e| e.0.len()), Some(2));
    }
}
