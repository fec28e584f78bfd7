//! Numbers, money and durations by each shipped language's grammar file
//! (`prompts/<code>/language.toml`), against written expectations.

#![allow(clippy::unwrap_used)]

mod common;

use common::grammar;
use talktime_engine::speech::{
    SpeechError, amount, cardinal, duration, length, quantity, supports_currency,
};

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
            cardinal(grammar("en"), *number).unwrap(),
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
            cardinal(grammar("es"), *number).unwrap(),
            words(expected),
            "{number}"
        );
    }
}

#[test]
fn too_large_is_an_error() {
    assert_eq!(
        cardinal(grammar("en"), 1_000_000_000),
        Err(SpeechError::TooLarge(1_000_000_000))
    );
    assert!(duration(grammar("es"), u64::MAX).is_err());
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
            amount(grammar("en"), *micros, currency).unwrap(),
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
            amount(grammar("en"), *micros, currency).unwrap(),
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
            amount(grammar("es"), *micros, currency).unwrap(),
            words(expected),
            "{micros} {currency}"
        );
    }
}

#[test]
fn another_currency_is_its_amount_and_its_code_spelled() {
    assert_eq!(
        amount(grammar("en"), 12_500_000, "JPY").unwrap(),
        words(&[
            "num_12", "point", "num_5", "num_0", "letter_j", "letter_p", "letter_y"
        ])
    );
    assert_eq!(
        amount(grammar("es"), 3_000_000, "chf").unwrap(),
        words(&["num_3", "letter_c", "letter_h", "letter_f"])
    );
    assert!(amount(grammar("en"), 1_000_000, "U$").is_err());
    assert!(amount(grammar("en"), 1_000_000, "EURO").is_err());
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
            amount(grammar("es"), *micros, currency).unwrap(),
            words(expected),
            "{micros} {currency}"
        );
    }
}

#[test]
fn which_currencies_have_words_of_their_own() {
    assert_eq!(
        amount(grammar("en"), 1_000_000, "XA1"),
        Err(SpeechError::UnsupportedCurrency("XA1".into()))
    );
    for code in ["USD", "eur", "GBP", "CAD", "MXN", "INR"] {
        assert!(supports_currency(code), "{code}");
    }
    assert!(!supports_currency("XAU"));
}

#[test]
fn durations() {
    let table: &[(&str, u64, &[&str])] = &[
        ("en", 60_000, &["num_1", "minute"]),
        ("en", 119_999, &["num_1", "minute"]),
        ("en", 34 * 60_000 + 59_000, &["num_30", "num_4", "minutes"]),
        ("en", 59_999, &["num_50", "num_9", "seconds"]),
        ("en", 1_000, &["num_1", "second"]),
        ("en", 0, &["num_0", "seconds"]),
        ("en", 120 * 60_000, &["num_2", "hours"]),
        (
            "en",
            125 * 60_000 + 59_000,
            &["num_2", "hours", "and", "num_5", "minutes"],
        ),
        ("es", 60_000, &["num_1_apocope", "minute"]),
        ("es", 21 * 60_000, &["num_21_apocope", "minutes"]),
        (
            "es",
            31 * 60_000,
            &["num_30", "and", "num_1_apocope", "minutes"],
        ),
        (
            "es",
            100 * 60_000,
            &["num_1_feminine", "hour", "and", "num_40", "minutes"],
        ),
        ("es", 21 * 3_600_000, &["num_21_feminine", "hours"]),
        ("es", 45_000, &["num_40", "and", "num_5", "seconds"]),
    ];
    for (language, milliseconds, expected) in table {
        assert_eq!(
            duration(grammar(language), *milliseconds).unwrap(),
            words(expected),
            "{language:?} {milliseconds}"
        );
    }
}

fn check(code: &str, said: Vec<&'static str>, expected: &str, what: &str) {
    assert_eq!(said.join(" "), expected, "{code}: {what}");
}

#[test]
fn lengths_with_hours_minutes_and_seconds() {
    let en = grammar("en");
    check(
        "en",
        length(en, 3_725_000).unwrap(),
        "num_1 hour num_2 minutes and num_5 seconds",
        "1:02:05",
    );
    check(
        "en",
        length(en, 125_000).unwrap(),
        "num_2 minutes and num_5 seconds",
        "2:05",
    );
    check(
        "en",
        length(en, 7_200_000).unwrap(),
        "num_2 hours",
        "2:00:00",
    );
    check("en", length(en, 400).unwrap(), "num_0 seconds", "0.4 s");
}

#[test]
fn french() {
    let fr = grammar("fr");
    let table: &[(u64, &str)] = &[
        (1, "num_1"),
        (17, "num_10 num_7"),
        (21, "num_20 and num_1"),
        (22, "num_20 num_2"),
        (70, "num_60 num_10"),
        (71, "num_60 and num_11"),
        (77, "num_60 num_10 num_7"),
        (80, "num_80"),
        (81, "num_80_base num_1"),
        (91, "num_80_base num_11"),
        (99, "num_80_base num_10 num_9"),
        (100, "num_100"),
        (101, "num_100 num_1"),
        (200, "num_2 hundred_alone"),
        (201, "num_2 num_100 num_1"),
        (1_000, "mille"),
        (2_000, "num_2 mille"),
        (1_000_000, "num_1 million"),
        (1_200, "mille num_2 hundred_alone"),
        // "cents" only ends a numeral: "cinq cent mille".
        (2_500_000, "num_2 millions num_5 num_100 mille"),
    ];
    for (number, expected) in table {
        check(
            "fr",
            cardinal(fr, *number).unwrap(),
            expected,
            &number.to_string(),
        );
    }
    check(
        "fr",
        amount(fr, 1_234_560_000, "EUR").unwrap(),
        "mille num_2 num_100 num_30 num_4 euros and num_50 num_6 euro_cents",
        "1,234.56 EUR",
    );
    check(
        "fr",
        amount(fr, 1_000_000, "EUR").unwrap(),
        "num_1 euro",
        "1 EUR",
    );
    check(
        "fr",
        amount(fr, 2_000_000_000_000, "USD").unwrap(),
        "num_2 millions de dollars",
        "2,000,000 USD",
    );
    // Minutes and hours are feminine: "une", "vingt et une".
    check(
        "fr",
        quantity(fr, 21, "minute").unwrap(),
        "num_20 and num_1_feminine minutes",
        "21 minutes",
    );
    check(
        "fr",
        duration(fr, 7_500_000).unwrap(),
        "num_2 hours and num_5 minutes",
        "2 h 5 min",
    );
    check(
        "fr",
        duration(fr, 3_660_000).unwrap(),
        "num_1_feminine hour and num_1_feminine minute",
        "1 h 1 min",
    );
    // 0 and 1 take the singular.
    check("fr", amount(fr, 0, "EUR").unwrap(), "num_0 euro", "0 EUR");
}

#[test]
fn portuguese() {
    let pt = grammar("pt");
    let table: &[(u64, &str)] = &[
        (21, "num_20 and num_1"),
        (100, "num_100"),
        (101, "num_100_rest and num_1"),
        (120, "num_100_rest and num_20"),
        (231, "num_200 and num_30 and num_1"),
        (1_000, "mil"),
        (1_100, "mil and num_100"),
        (1_230, "mil num_200 and num_30"),
        (2_000_000, "num_2 millions"),
    ];
    for (number, expected) in table {
        check(
            "pt",
            cardinal(pt, *number).unwrap(),
            expected,
            &number.to_string(),
        );
    }
    check(
        "pt",
        amount(pt, 1_234_560_000, "EUR").unwrap(),
        "mil num_200 and num_30 and num_4 euros and num_50 and num_6 euro_cents",
        "1,234.56 EUR",
    );
    // Feminine nouns: "uma libra", "duas libras", "duzentas libras"; millions stay masculine.
    check(
        "pt",
        amount(pt, 1_000_000, "GBP").unwrap(),
        "num_1_feminine pound",
        "1 GBP",
    );
    check(
        "pt",
        amount(pt, 2_000_000, "GBP").unwrap(),
        "num_2_feminine pounds",
        "2 GBP",
    );
    check(
        "pt",
        amount(pt, 200_000_000, "GBP").unwrap(),
        "num_200_feminine pounds",
        "200 GBP",
    );
    check(
        "pt",
        amount(pt, 1_000_000_000_000, "GBP").unwrap(),
        "num_1 million de pounds",
        "1,000,000 GBP",
    );
    check(
        "pt",
        duration(pt, 7_500_000).unwrap(),
        "num_2_feminine hours and num_5 minutes",
        "2 h 5 min",
    );
}

#[test]
fn hindi() {
    let hi = grammar("hi");
    let table: &[(u64, &str)] = &[
        (45, "num_45"),
        (99, "num_99"),
        (100, "num_1 hundred"),
        (1_234, "num_1 thousand num_2 hundred num_34"),
        (1_250_000, "num_12 lakh num_50 thousand"),
        (
            23_456_789,
            "num_2 crore num_34 lakh num_56 thousand num_7 hundred num_89",
        ),
    ];
    for (number, expected) in table {
        check(
            "hi",
            cardinal(hi, *number).unwrap(),
            expected,
            &number.to_string(),
        );
    }
    check(
        "hi",
        amount(hi, 1_000_000, "INR").unwrap(),
        "num_1 rupee",
        "1 INR",
    );
    check(
        "hi",
        amount(hi, 2_500_000, "INR").unwrap(),
        "num_2 rupees and num_50 paise",
        "2.50 INR",
    );
    check(
        "hi",
        amount(hi, 1_234_560_000, "EUR").unwrap(),
        "num_1 thousand num_2 hundred num_34 euros and num_56 euro_cents",
        "1,234.56 EUR",
    );
    check(
        "hi",
        duration(hi, 7_500_000).unwrap(),
        "num_2 hours and num_5 minutes",
        "2 h 5 min",
    );
}

#[test]
fn arabic() {
    let ar = grammar("ar");
    let table: &[(u64, &str)] = &[
        (21, "num_1 and num_20"),
        (100, "num_100"),
        (105, "num_100 and num_5"),
        (1_000, "thousand"),
        (2_000, "thousand_two"),
        (3_000, "num_3 thousands"),
        (11_000, "num_11 thousand"),
        (1_234, "thousand and num_200 and num_4 and num_30"),
    ];
    for (number, expected) in table {
        check(
            "ar",
            cardinal(ar, *number).unwrap(),
            expected,
            &number.to_string(),
        );
    }
    // One and two by the noun alone (two in the dual), 3-10 plural, 11-99 singular.
    check(
        "ar",
        amount(ar, 1_000_000, "USD").unwrap(),
        "dollar",
        "1 USD",
    );
    check(
        "ar",
        amount(ar, 2_000_000, "USD").unwrap(),
        "dollar_two",
        "2 USD",
    );
    check(
        "ar",
        amount(ar, 5_000_000, "USD").unwrap(),
        "num_5 dollars",
        "5 USD",
    );
    check(
        "ar",
        amount(ar, 20_000_000, "USD").unwrap(),
        "num_20 dollar",
        "20 USD",
    );
    check(
        "ar",
        amount(ar, 103_000_000, "USD").unwrap(),
        "num_100 and num_3 dollars",
        "103 USD",
    );
    check(
        "ar",
        amount(ar, 1_234_560_000, "EUR").unwrap(),
        "thousand and num_200 and num_4 and num_30 euro and num_6 and num_50 euro_cent",
        "1,234.56 EUR",
    );
    // Minutes are feminine: 3-10 drop their ta marbuta, 21 is "one (f.) and twenty".
    check(
        "ar",
        quantity(ar, 5, "minute").unwrap(),
        "num_5_feminine minutes",
        "5 minutes",
    );
    check(
        "ar",
        quantity(ar, 21, "minute").unwrap(),
        "num_1_feminine and num_20 minute",
        "21 minutes",
    );
    check(
        "ar",
        duration(ar, 7_500_000).unwrap(),
        "hour_two and num_5_feminine minutes",
        "2 h 5 min",
    );
}

#[test]
fn a_broken_grammar_is_refused_with_its_reason() {
    use talktime_engine::{Grammar, Language};
    let german = Language::from_code("de").unwrap();
    let base = r#"
name = "Deutsch"
voice = "de"
menu_digit = "7"
and = "und"
point = "komma"
[numbers]
words = ["0-12"]
[nouns]
minute = { forms = { other = "minuten" } }
"#;
    let reason = |text: &str| Grammar::from_toml(german, text).unwrap_err().to_string();
    assert!(reason(base).contains("cannot say 20"), "{}", reason(base));
    let no_other = base.replace("other = \"minuten\"", "one = \"minute\"");
    assert!(
        reason(&no_other).contains("no `other` form"),
        "{}",
        reason(&no_other)
    );
    let bad_category = base.replace("other = \"minuten\"", "other = \"m\", lots = \"x\"");
    assert!(
        reason(&bad_category).contains("\"lots\""),
        "{}",
        reason(&bad_category)
    );
    let bad_key = base.replace("menu_digit = \"7\"", "menu_digit = \"x\"");
    assert!(
        reason(&bad_key).contains("menu_digit"),
        "{}",
        reason(&bad_key)
    );
    assert!(
        reason("name = 3").starts_with("de: "),
        "{}",
        reason("name = 3")
    );
    let complete = base.replace(
        "words = [\"0-12\"]",
        "words = [\"0-20\", \"30\", \"40\", \"50\", \"60\", \"70\", \"80\", \"90\"]\nunit_first = true\ntens_joiner = \"und\"",
    ) + "[[scales]]\nvalue = 1000000\nnoun = \"million\"\n[[scales]]\nvalue = 1000\nnoun = \"tausend\"\n[[scales]]\nvalue = 100\nnoun = \"hundert\"\n[nouns.million]\nforms = { other = \"millionen\" }\n[nouns.tausend]\nforms = { other = \"tausend\" }\n[nouns.hundert]\nforms = { other = \"hundert\" }\n";
    let grammar = Grammar::from_toml(german, &complete).unwrap();
    assert_eq!(
        cardinal(&grammar, 21).unwrap().join(" "),
        "num_1 und num_20",
        "einundzwanzig"
    );
}

#[test]
fn the_same_amount_and_talk_time_in_english_and_spanish() {
    let (en, es) = (grammar("en"), grammar("es"));
    check(
        "en",
        amount(en, 1_234_560_000, "EUR").unwrap(),
        "num_1 thousand num_2 hundred num_30 num_4 euros and num_50 num_6 euro_cents",
        "1,234.56 EUR",
    );
    check(
        "es",
        amount(es, 1_234_560_000, "EUR").unwrap(),
        "mil num_200 num_30 and num_4 euros and num_50 and num_6 euro_cents",
        "1,234.56 EUR",
    );
    check(
        "en",
        duration(en, 7_500_000).unwrap(),
        "num_2 hours and num_5 minutes",
        "2 h 5 min",
    );
    // "hora" is feminine: "dos horas", "una hora y un minuto".
    check(
        "es",
        duration(es, 3_660_000).unwrap(),
        "num_1_feminine hour and num_1_apocope minute",
        "1 h 1 min",
    );
}
