//! Amounts and durations as sequences of prompt names, with each language's grammar.
//!
//! Every name returned here is a file `prompts/<language>/<name>.wav` (a test checks it).
//! Numbers are spoken as they precede a noun ("dollars", "minutes", "mil"), which in
//! Spanish means the short forms that agree with it: "un dólar", "veintiún minutos",
//! "cien dólares", "ciento un dólares", and for a feminine noun "una libra", "veintiuna
//! rupias", "doscientas libras" (millions stay masculine: "doscientos millones de libras").
//! A currency without prompts of its own is spoken as its amount and its code spelled out:
//! "twelve point five zero, J P Y".

use crate::config::Language;

/// Largest number either language can say with the shipped prompts.
pub const MAX_NUMBER: u64 = 999_999_999;

/// Why an amount or duration cannot be spoken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    #[error("{0} is too large to speak (the largest is {MAX_NUMBER})")]
    TooLarge(u64),
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnsupportedCurrency(String),
}

const ENGLISH_UNITS: [&str; 21] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
    "num_10", "num_11", "num_12", "num_13", "num_14", "num_15", "num_16", "num_17", "num_18",
    "num_19", "num_20",
];

/// Spanish has single words up to 29 ("veintinueve").
const SPANISH_UNITS: [&str; 30] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
    "num_10", "num_11", "num_12", "num_13", "num_14", "num_15", "num_16", "num_17", "num_18",
    "num_19", "num_20", "num_21", "num_22", "num_23", "num_24", "num_25", "num_26", "num_27",
    "num_28", "num_29",
];

const TENS: [&str; 10] = [
    "", "", "num_20", "num_30", "num_40", "num_50", "num_60", "num_70", "num_80", "num_90",
];

const SPANISH_HUNDREDS: [&str; 10] = [
    "", "num_100", "num_200", "num_300", "num_400", "num_500", "num_600", "num_700", "num_800",
    "num_900",
];

/// The grammatical gender of a noun, which Spanish numbers agree with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Masculine,
    Feminine,
}

/// The prompt names of a currency's units and, for Spanish, their genders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CurrencyNames {
    major: &'static str,
    majors: &'static str,
    major_gender: Gender,
    minor: &'static str,
    minors: &'static str,
    minor_gender: Gender,
}

const fn names(
    major: (&'static str, &'static str, Gender),
    minor: (&'static str, &'static str, Gender),
) -> CurrencyNames {
    CurrencyNames {
        major: major.0,
        majors: major.1,
        major_gender: major.2,
        minor: minor.0,
        minors: minor.1,
        minor_gender: minor.2,
    }
}

fn currency_names(code: &str) -> Option<CurrencyNames> {
    use Gender::{Feminine, Masculine};
    const DOLLAR_CURRENCIES: [&str; 6] = ["USD", "CAD", "AUD", "NZD", "SGD", "HKD"];
    let code = code.to_ascii_uppercase();
    if DOLLAR_CURRENCIES.contains(&code.as_str()) {
        return Some(names(
            ("dollar", "dollars", Masculine),
            ("cent", "cents", Masculine),
        ));
    }
    match code.as_str() {
        // Spanish says "céntimo" for the euro cent but "centavo" for the dollar cent.
        "EUR" => Some(names(
            ("euro", "euros", Masculine),
            ("euro_cent", "euro_cents", Masculine),
        )),
        "GBP" => Some(names(
            ("pound", "pounds", Feminine),
            ("penny", "pence", Masculine),
        )),
        "MXN" => Some(names(
            ("peso", "pesos", Masculine),
            ("centavo", "centavos", Masculine),
        )),
        "INR" => Some(names(
            ("rupee", "rupees", Feminine),
            ("paisa", "paise", Feminine),
        )),
        _ => None,
    }
}

/// Whether [`amount`] has the currency's own words (otherwise it spells the code).
pub fn supports_currency(code: &str) -> bool {
    currency_names(code).is_some()
}

/// A cardinal number as it precedes a (masculine) noun.
pub fn cardinal(language: Language, number: u64) -> Result<Vec<&'static str>, SpeechError> {
    cardinal_agreeing(language, number, Gender::Masculine)
}

/// A cardinal number as it precedes a noun of `gender`.
pub fn cardinal_agreeing(
    language: Language,
    number: u64,
    gender: Gender,
) -> Result<Vec<&'static str>, SpeechError> {
    if number > MAX_NUMBER {
        return Err(SpeechError::TooLarge(number));
    }
    let mut out = Vec::new();
    match language {
        Language::English => english_cardinal(number, &mut out),
        Language::Spanish => spanish_cardinal(number, gender, &mut out),
    }
    Ok(out)
}

/// A count followed by its noun, singular for exactly one: "one minute", "veintiún minutos",
/// "un millón de dólares".
pub fn quantity(
    language: Language,
    number: u64,
    singular: &'static str,
    plural: &'static str,
) -> Result<Vec<&'static str>, SpeechError> {
    quantity_agreeing(language, number, (singular, plural, Gender::Masculine))
}

/// [`quantity`] for a noun of a given gender: (singular, plural, gender).
fn quantity_agreeing(
    language: Language,
    number: u64,
    (singular, plural, gender): (&'static str, &'static str, Gender),
) -> Result<Vec<&'static str>, SpeechError> {
    let mut out = cardinal_agreeing(language, number, gender)?;
    // Spanish puts "de" between a round million and its noun.
    if language == Language::Spanish && number >= 1_000_000 && number.is_multiple_of(1_000_000) {
        out.push("de");
    }
    out.push(if number == 1 { singular } else { plural });
    Ok(out)
}

/// A length to the second: "two minutes and five seconds", "forty seconds" (a call's length;
/// [`duration`] rounds to what a caller can still talk).
pub fn length(language: Language, milliseconds: u64) -> Result<Vec<&'static str>, SpeechError> {
    let seconds = milliseconds / 1_000;
    let (minutes, rest) = (seconds / 60, seconds % 60);
    if minutes == 0 {
        return quantity(language, rest, "second", "seconds");
    }
    let mut words = quantity(language, minutes, "minute", "minutes")?;
    if rest > 0 {
        words.push("and");
        words.extend(quantity(language, rest, "second", "seconds")?);
    }
    Ok(words)
}

/// An amount of money in micro-units (1 unit = 1,000,000): "twelve dollars and fifty cents".
/// Fractions of a cent are dropped and a negative balance is spoken as zero, so the caller
/// never hears more than they have.
pub fn amount(
    language: Language,
    micros: i64,
    currency: &str,
) -> Result<Vec<&'static str>, SpeechError> {
    let cents = u64::try_from(micros.max(0)).unwrap_or(0) / 10_000;
    let (major, minor) = (cents / 100, cents % 100);
    let Some(names) = currency_names(currency) else {
        return amount_with_code(language, major, minor, currency);
    };
    let majors = (names.major, names.majors, names.major_gender);
    let minors = (names.minor, names.minors, names.minor_gender);
    if major == 0 && minor > 0 {
        return quantity_agreeing(language, minor, minors);
    }
    let mut out = quantity_agreeing(language, major, majors)?;
    if minor > 0 {
        out.push("and");
        out.extend(quantity_agreeing(language, minor, minors)?);
    }
    Ok(out)
}

/// "twelve point five zero, J P Y": the amount with two decimals, then the code's letters.
fn amount_with_code(
    language: Language,
    major: u64,
    minor: u64,
    currency: &str,
) -> Result<Vec<&'static str>, SpeechError> {
    let letters: Option<Vec<&'static str>> = currency.chars().map(letter_prompt).collect();
    let letters = letters
        .filter(|letters| letters.len() == 3)
        .ok_or_else(|| SpeechError::UnsupportedCurrency(currency.to_owned()))?;
    let mut out = cardinal(language, major)?;
    if minor > 0 {
        out.push("point");
        out.push(ENGLISH_UNITS[(minor / 10) as usize]);
        out.push(ENGLISH_UNITS[(minor % 10) as usize]);
    }
    out.extend(letters);
    Ok(out)
}

/// The prompt of a letter of the alphabet ("letter_j").
fn letter_prompt(letter: char) -> Option<&'static str> {
    const LETTERS: [&str; 26] = [
        "letter_a", "letter_b", "letter_c", "letter_d", "letter_e", "letter_f", "letter_g",
        "letter_h", "letter_i", "letter_j", "letter_k", "letter_l", "letter_m", "letter_n",
        "letter_o", "letter_p", "letter_q", "letter_r", "letter_s", "letter_t", "letter_u",
        "letter_v", "letter_w", "letter_x", "letter_y", "letter_z",
    ];
    let index = u32::from(letter.to_ascii_lowercase()).checked_sub(u32::from('a'))?;
    LETTERS.get(usize::try_from(index).ok()?).copied()
}

/// A talk time: whole minutes ("thirty-four minutes"), or seconds under one minute.
pub fn duration(language: Language, milliseconds: u64) -> Result<Vec<&'static str>, SpeechError> {
    if milliseconds >= 60_000 {
        quantity(language, milliseconds / 60_000, "minute", "minutes")
    } else {
        quantity(language, milliseconds / 1_000, "second", "seconds")
    }
}

fn english_cardinal(number: u64, out: &mut Vec<&'static str>) {
    if number == 0 {
        out.push(ENGLISH_UNITS[0]);
        return;
    }
    let (millions, thousands, rest) = split_groups(number);
    for (group, scale) in [(millions, Some("million")), (thousands, Some("thousand"))] {
        if group > 0 {
            english_below_thousand(group, out);
            out.extend(scale);
        }
    }
    if rest > 0 {
        english_below_thousand(rest, out);
    }
}

/// 1..=999, US style without "and": "one hundred twenty-three".
fn english_below_thousand(number: u64, out: &mut Vec<&'static str>) {
    let (hundreds, rest) = (number / 100, number % 100);
    if hundreds > 0 {
        out.push(ENGLISH_UNITS[hundreds as usize]);
        out.push("hundred");
    }
    if rest == 0 {
        return;
    }
    if rest <= 20 {
        out.push(ENGLISH_UNITS[rest as usize]);
    } else {
        out.push(TENS[(rest / 10) as usize]);
        if rest % 10 > 0 {
            out.push(ENGLISH_UNITS[(rest % 10) as usize]);
        }
    }
}

fn spanish_cardinal(number: u64, gender: Gender, out: &mut Vec<&'static str>) {
    if number == 0 {
        out.push(SPANISH_UNITS[0]);
        return;
    }
    let (millions, thousands, rest) = split_groups(number);
    // "millón" is a masculine noun: its count is masculine whatever the currency.
    match millions {
        0 => {}
        1 => out.extend(["num_1_apocope", "million"]),
        _ => {
            spanish_below_thousand(millions, Gender::Masculine, out);
            out.push("millions");
        }
    }
    // The thousands agree with the noun after "mil": "doscientas mil libras".
    match thousands {
        0 => {}
        // "mil", never "un mil".
        1 => out.push("mil"),
        _ => {
            spanish_below_thousand(thousands, gender, out);
            out.push("mil");
        }
    }
    if rest > 0 {
        spanish_below_thousand(rest, gender, out);
    }
}

/// 1..=999 in the short form that agrees with the noun: "cien", "ciento un",
/// "doscientos treinta y un"; feminine "una", "veintiuna", "doscientas treinta y una".
fn spanish_below_thousand(number: u64, gender: Gender, out: &mut Vec<&'static str>) {
    const FEMININE_HUNDREDS: [&str; 10] = [
        "",
        "num_100",
        "num_200_feminine",
        "num_300_feminine",
        "num_400_feminine",
        "num_500_feminine",
        "num_600_feminine",
        "num_700_feminine",
        "num_800_feminine",
        "num_900_feminine",
    ];
    let feminine = gender == Gender::Feminine;
    let (one, twenty_one) = if feminine {
        ("num_1_feminine", "num_21_feminine")
    } else {
        ("num_1_apocope", "num_21_apocope")
    };
    let (hundreds, rest) = (number / 100, number % 100);
    match (hundreds, rest) {
        (0, _) => {}
        (1, 0) => out.push("hundred_exact"),
        _ if feminine => out.push(FEMININE_HUNDREDS[hundreds as usize]),
        _ => out.push(SPANISH_HUNDREDS[hundreds as usize]),
    }
    match rest {
        0 => {}
        1 => out.push(one),
        21 => out.push(twenty_one),
        2..=29 => out.push(SPANISH_UNITS[rest as usize]),
        _ => {
            out.push(TENS[(rest / 10) as usize]);
            match rest % 10 {
                0 => {}
                1 => out.extend(["and", one]),
                unit => out.extend(["and", SPANISH_UNITS[unit as usize]]),
            }
        }
    }
}

/// Millions, thousands and the rest below a thousand.
fn split_groups(number: u64) -> (u64, u64, u64) {
    (number / 1_000_000, (number / 1_000) % 1_000, number % 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Language::{English, Spanish};

    fn words(list: &[&'static str]) -> Vec<&'static str> {
        list.to_vec()
    }

    #[test]
    fn english_numbers() {
        let table: &[(u64, &[&str])] = &[
            (0, &["num_0"]),
            (1, &["num_1"]),
            (7, &["num_7"]),
            (13, &["num_13"]),
            (20, &["num_20"]),
            (21, &["num_20", "num_1"]),
            (34, &["num_30", "num_4"]),
            (40, &["num_40"]),
            (99, &["num_90", "num_9"]),
            (100, &["num_1", "hundred"]),
            (101, &["num_1", "hundred", "num_1"]),
            (115, &["num_1", "hundred", "num_15"]),
            (250, &["num_2", "hundred", "num_50"]),
            (999, &["num_9", "hundred", "num_90", "num_9"]),
            (1_000, &["num_1", "thousand"]),
            (1_001, &["num_1", "thousand", "num_1"]),
            (
                2_345,
                &["num_2", "thousand", "num_3", "hundred", "num_40", "num_5"],
            ),
            (120_000, &["num_1", "hundred", "num_20", "thousand"]),
            (1_000_000, &["num_1", "million"]),
            (3_000_016, &["num_3", "million", "num_16"]),
            (
                999_999_999,
                &[
                    "num_9", "hundred", "num_90", "num_9", "million", "num_9", "hundred", "num_90",
                    "num_9", "thousand", "num_9", "hundred", "num_90", "num_9",
                ],
            ),
        ];
        for (number, expected) in table {
            assert_eq!(
                cardinal(English, *number).unwrap(),
                words(expected),
                "{number}"
            );
        }
    }

    #[test]
    fn spanish_numbers_before_a_masculine_noun() {
        let table: &[(u64, &[&str])] = &[
            (0, &["num_0"]),
            (1, &["num_1_apocope"]),
            (2, &["num_2"]),
            (16, &["num_16"]),
            (21, &["num_21_apocope"]),
            (22, &["num_22"]),
            (29, &["num_29"]),
            (30, &["num_30"]),
            (31, &["num_30", "and", "num_1_apocope"]),
            (34, &["num_30", "and", "num_4"]),
            (99, &["num_90", "and", "num_9"]),
            (100, &["hundred_exact"]),
            (101, &["num_100", "num_1_apocope"]),
            (121, &["num_100", "num_21_apocope"]),
            (150, &["num_100", "num_50"]),
            (200, &["num_200"]),
            (231, &["num_200", "num_30", "and", "num_1_apocope"]),
            (500, &["num_500"]),
            (999, &["num_900", "num_90", "and", "num_9"]),
            (1_000, &["mil"]),
            (1_001, &["mil", "num_1_apocope"]),
            (2_000, &["num_2", "mil"]),
            (21_000, &["num_21_apocope", "mil"]),
            (31_000, &["num_30", "and", "num_1_apocope", "mil"]),
            (100_000, &["hundred_exact", "mil"]),
            (101_000, &["num_100", "num_1_apocope", "mil"]),
            (1_000_000, &["num_1_apocope", "million"]),
            (2_000_000, &["num_2", "millions"]),
            (21_000_000, &["num_21_apocope", "millions"]),
            (1_001_000, &["num_1_apocope", "million", "mil"]),
            (
                1_100_100,
                &[
                    "num_1_apocope",
                    "million",
                    "hundred_exact",
                    "mil",
                    "hundred_exact",
                ],
            ),
        ];
        for (number, expected) in table {
            assert_eq!(
                cardinal(Spanish, *number).unwrap(),
                words(expected),
                "{number}"
            );
        }
    }

    #[test]
    fn too_large_is_an_error() {
        assert_eq!(
            cardinal(English, 1_000_000_000),
            Err(SpeechError::TooLarge(1_000_000_000))
        );
        assert!(duration(Spanish, u64::MAX).is_err());
    }

    #[test]
    fn english_amounts() {
        let table: &[(i64, &str, &[&str])] = &[
            (
                12_500_000,
                "USD",
                &["num_12", "dollars", "and", "num_50", "cents"],
            ),
            (1_000_000, "USD", &["num_1", "dollar"]),
            (
                1_010_000,
                "usd",
                &["num_1", "dollar", "and", "num_1", "cent"],
            ),
            (500_000, "USD", &["num_50", "cents"]),
            (10_000, "USD", &["num_1", "cent"]),
            (0, "USD", &["num_0", "dollars"]),
            // Fractions of a cent are never rounded up; negative balances are zero.
            (9_999, "USD", &["num_0", "dollars"]),
            (-5_000_000, "USD", &["num_0", "dollars"]),
            (
                2_999_999,
                "USD",
                &["num_2", "dollars", "and", "num_90", "num_9", "cents"],
            ),
            (100_000_000, "EUR", &["num_1", "hundred", "euros"]),
            (1_000_000, "EUR", &["num_1", "euro"]),
            (
                5_050_000,
                "EUR",
                &["num_5", "euros", "and", "num_5", "euro_cents"],
            ),
        ];
        for (micros, currency, expected) in table {
            assert_eq!(
                amount(English, *micros, currency).unwrap(),
                words(expected),
                "{micros} {currency}"
            );
        }
    }

    #[test]
    fn more_currencies_in_english() {
        let table: &[(i64, &str, &[&str])] = &[
            (
                1_010_000,
                "GBP",
                &["num_1", "pound", "and", "num_1", "penny"],
            ),
            (
                2_500_000,
                "GBP",
                &["num_2", "pounds", "and", "num_50", "pence"],
            ),
            (150_000_000, "MXN", &["num_1", "hundred", "num_50", "pesos"]),
            (10_000, "MXN", &["num_1", "centavo"]),
            (7_000_000, "INR", &["num_7", "rupees"]),
            (20_000, "INR", &["num_2", "paise"]),
            (7_000_000, "CAD", &["num_7", "dollars"]),
        ];
        for (micros, currency, expected) in table {
            assert_eq!(
                amount(English, *micros, currency).unwrap(),
                words(expected),
                "{micros} {currency}"
            );
        }
    }

    #[test]
    fn feminine_currencies_in_spanish_agree_with_their_noun() {
        let table: &[(i64, &str, &[&str])] = &[
            (1_000_000, "GBP", &["num_1_feminine", "pound"]),
            (21_000_000, "GBP", &["num_21_feminine", "pounds"]),
            (
                31_000_000,
                "INR",
                &["num_30", "and", "num_1_feminine", "rupees"],
            ),
            (200_000_000, "GBP", &["num_200_feminine", "pounds"]),
            (101_000_000, "INR", &["num_100", "num_1_feminine", "rupees"]),
            (
                201_000_000_000,
                "GBP",
                &["num_200_feminine", "num_1_feminine", "mil", "pounds"],
            ),
            // "millón" is masculine: its count stays masculine.
            (
                200_000_000_000_000,
                "GBP",
                &["num_200", "millions", "de", "pounds"],
            ),
            // The penny is masculine, the paisa feminine.
            (10_000, "GBP", &["num_1_apocope", "penny"]),
            (10_000, "INR", &["num_1_feminine", "paisa"]),
            (1_000_000, "MXN", &["num_1_apocope", "peso"]),
        ];
        for (micros, currency, expected) in table {
            assert_eq!(
                amount(Spanish, *micros, currency).unwrap(),
                words(expected),
                "{micros} {currency}"
            );
        }
    }

    #[test]
    fn another_currency_is_its_amount_and_its_code_spelled() {
        assert_eq!(
            amount(English, 12_500_000, "JPY").unwrap(),
            words(&[
                "num_12", "point", "num_5", "num_0", "letter_j", "letter_p", "letter_y"
            ])
        );
        assert_eq!(
            amount(Spanish, 3_000_000, "chf").unwrap(),
            words(&["num_3", "letter_c", "letter_h", "letter_f"])
        );
        assert!(amount(English, 1_000_000, "U$").is_err());
        assert!(amount(English, 1_000_000, "EURO").is_err());
    }

    #[test]
    fn spanish_amounts() {
        let table: &[(i64, &str, &[&str])] = &[
            (1_000_000, "USD", &["num_1_apocope", "dollar"]),
            (21_000_000, "USD", &["num_21_apocope", "dollars"]),
            (
                31_000_000,
                "USD",
                &["num_30", "and", "num_1_apocope", "dollars"],
            ),
            (100_000_000, "USD", &["hundred_exact", "dollars"]),
            (101_000_000, "USD", &["num_100", "num_1_apocope", "dollars"]),
            (200_000_000, "EUR", &["num_200", "euros"]),
            (
                12_500_000,
                "USD",
                &["num_12", "dollars", "and", "num_50", "cents"],
            ),
            (10_000, "EUR", &["num_1_apocope", "euro_cent"]),
            (
                1_000_000_000_000,
                "USD",
                &["num_1_apocope", "million", "de", "dollars"],
            ),
            (
                2_000_000_000_000,
                "EUR",
                &["num_2", "millions", "de", "euros"],
            ),
            (
                1_000_001_000_000,
                "USD",
                &["num_1_apocope", "million", "num_1_apocope", "dollars"],
            ),
        ];
        for (micros, currency, expected) in table {
            assert_eq!(
                amount(Spanish, *micros, currency).unwrap(),
                words(expected),
                "{micros} {currency}"
            );
        }
    }

    #[test]
    fn which_currencies_have_words_of_their_own() {
        assert_eq!(
            amount(English, 1_000_000, "XA1"),
            Err(SpeechError::UnsupportedCurrency("XA1".into()))
        );
        for code in ["USD", "eur", "GBP", "CAD", "MXN", "INR"] {
            assert!(supports_currency(code), "{code}");
        }
        assert!(!supports_currency("XAU"));
    }

    #[test]
    fn durations() {
        let table: &[(Language, u64, &[&str])] = &[
            (English, 60_000, &["num_1", "minute"]),
            (English, 119_999, &["num_1", "minute"]),
            (
                English,
                34 * 60_000 + 59_000,
                &["num_30", "num_4", "minutes"],
            ),
            (English, 59_999, &["num_50", "num_9", "seconds"]),
            (English, 1_000, &["num_1", "second"]),
            (English, 0, &["num_0", "seconds"]),
            (
                English,
                120 * 60_000,
                &["num_1", "hundred", "num_20", "minutes"],
            ),
            (Spanish, 60_000, &["num_1_apocope", "minute"]),
            (Spanish, 21 * 60_000, &["num_21_apocope", "minutes"]),
            (
                Spanish,
                31 * 60_000,
                &["num_30", "and", "num_1_apocope", "minutes"],
            ),
            (Spanish, 100 * 60_000, &["hundred_exact", "minutes"]),
            (Spanish, 45_000, &["num_40", "and", "num_5", "seconds"]),
        ];
        for (language, milliseconds, expected) in table {
            assert_eq!(
                duration(*language, *milliseconds).unwrap(),
                words(expected),
                "{language:?} {milliseconds}"
            );
        }
    }
}
