//! Amounts and durations as sequences of prompt names, by each language's grammar.
//!
//! A language is data (issue 21): `prompts/<code>/language.toml` says how its numbers are
//! built, which nouns follow them in which plural form, and which key picks it in the language
//! menu; [`Grammar::from_toml`] reads it and this module speaks by it. The format is in
//! `prompts/LANGUAGES.md`. Numbers are spoken as they precede a noun ("dollars", "minutes"),
//! so they agree with it where the language wants that (Spanish "una libra", "veintiún
//! minutos"; French "vingt et une minutes"). A currency without nouns in the language is said
//! as its amount and its code spelled out: "twelve point five zero, J P Y".
//!
//! Prompt names are `&'static str`: a grammar is loaded once per process and lives as long.

use std::collections::HashMap;

use serde::Deserialize;

use crate::config::Language;

/// Largest number any language says.
pub const MAX_NUMBER: u64 = 999_999_999;

/// Why an amount or duration cannot be spoken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    #[error("{0} is too large to speak (the largest is {MAX_NUMBER})")]
    TooLarge(u64),
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnsupportedCurrency(String),
    #[error("the grammar has no noun {0:?}")]
    MissingNoun(&'static str),
}

/// Why a `language.toml` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    #[error("{language}: {message}")]
    Toml { language: Language, message: String },
    #[error("{language}: {problem}")]
    Invalid { language: Language, problem: String },
}

/// The grammatical gender of a noun, which numbers agree with in some languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    #[default]
    Masculine,
    Feminine,
}

/// The plural categories a grammar may use (CLDR's names).
const CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

// ----- the file -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrammarFile {
    name: String,
    /// espeak-ng voice of prompts/make-prompts.sh (not used by the switch).
    #[allow(dead_code)]
    voice: String,
    menu_digit: char,
    and: String,
    point: String,
    #[serde(default)]
    plural: Vec<PluralFile>,
    numbers: NumbersFile,
    #[serde(default)]
    scales: Vec<ScaleFile>,
    nouns: HashMap<String, NounFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluralFile {
    category: String,
    #[serde(default)]
    values: Vec<u64>,
    /// Inclusive range of the last two digits.
    #[serde(default)]
    last_two_digits: Option<[u64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumbersFile {
    /// Numbers said as the one prompt `num_<n>`: "0-20", "30", ...
    words: Vec<String>,
    /// Numbers said otherwise: n -> prompt names separated by spaces.
    #[serde(default)]
    named: HashMap<String, String>,
    /// Before a feminine noun: n -> prompt names.
    #[serde(default)]
    feminine: HashMap<String, String>,
    /// Below 100, a number without a word is its tens, this joiner, then its unit.
    #[serde(default)]
    tens_joiner: Option<String>,
    /// Say the unit before the tens ("one and twenty").
    #[serde(default)]
    unit_first: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleFile {
    value: u64,
    /// The noun counted (a key of `nouns`), e.g. "thousand".
    noun: String,
    /// The count agrees with this gender whatever noun follows ("doscientos millones").
    #[serde(default)]
    count_gender: Option<Gender>,
    /// Said between the scale and the rest.
    #[serde(default)]
    joiner: Option<String>,
    /// Only before a rest under 100 or a round hundred ("mil e cem", "mil duzentos").
    #[serde(default)]
    joiner_small_or_round_only: bool,
    /// Multiples said as words of their own: count -> prompt names ("2" = "num_200").
    #[serde(default)]
    multiples: HashMap<String, String>,
    #[serde(default)]
    feminine_multiples: HashMap<String, String>,
    /// A round multiple with nothing after it, when it differs ("1" = "hundred_exact").
    #[serde(default)]
    alone: HashMap<String, String>,
    /// Said between a round multiple of this scale and the noun counted ("un millón de").
    #[serde(default)]
    before_noun: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NounFile {
    /// Plural category -> prompt; `other` is required.
    forms: HashMap<String, String>,
    /// Forms when nothing follows (French "deux cents" but "deux cent un").
    #[serde(default)]
    alone_forms: HashMap<String, String>,
    /// Categories said by the noun alone, without its count (Arabic dual).
    #[serde(default)]
    without_count: Vec<String>,
    #[serde(default)]
    gender: Gender,
}

// ----- the loaded grammar -----

type Words = Vec<&'static str>;

#[derive(Debug)]
struct PluralRule {
    category: &'static str,
    values: Vec<u64>,
    last_two_digits: Option<[u64; 2]>,
}

#[derive(Debug)]
struct Noun {
    forms: HashMap<&'static str, &'static str>,
    alone_forms: HashMap<&'static str, &'static str>,
    without_count: Vec<&'static str>,
    gender: Gender,
}

#[derive(Debug)]
struct Scale {
    value: u64,
    noun: Noun,
    count_gender: Option<Gender>,
    joiner: Option<&'static str>,
    joiner_small_or_round_only: bool,
    multiples: HashMap<u64, Words>,
    feminine_multiples: HashMap<u64, Words>,
    alone: HashMap<u64, Words>,
    before_noun: Option<&'static str>,
}

/// How one language says numbers, money and durations.
#[derive(Debug)]
pub struct Grammar {
    language: Language,
    name: &'static str,
    menu_digit: char,
    and: &'static str,
    point: &'static str,
    plural: Vec<PluralRule>,
    words: HashMap<u64, Words>,
    feminine: HashMap<u64, Words>,
    tens_joiner: Option<&'static str>,
    unit_first: bool,
    /// Largest first.
    scales: Vec<Scale>,
    nouns: HashMap<&'static str, Noun>,
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn sequence(text: String) -> Words {
    text.split_whitespace()
        .map(|word| leak(word.to_owned()))
        .collect()
}

impl Grammar {
    /// Reads a grammar (the text of `prompts/<code>/language.toml`).
    pub fn from_toml(language: Language, text: &str) -> Result<Grammar, GrammarError> {
        let file: GrammarFile = toml::from_str(text).map_err(|error| GrammarError::Toml {
            language,
            message: error.to_string(),
        })?;
        let invalid = |problem: String| GrammarError::Invalid { language, problem };
        let number = |key: &str| {
            key.trim()
                .parse::<u64>()
                .map_err(|_| invalid(format!("{key:?} is not a number")))
        };
        let table = |map: HashMap<String, String>| -> Result<HashMap<u64, Words>, GrammarError> {
            map.into_iter()
                .map(|(key, value)| Ok((number(&key)?, sequence(value))))
                .collect()
        };
        // Named forms first: a word they replace is never made (it would be leaked for nothing).
        let mut words = table(file.numbers.named)?;
        for item in &file.numbers.words {
            let (low, high) = match item.split_once('-') {
                Some((low, high)) => (number(low)?, number(high)?),
                None => (number(item)?, number(item)?),
            };
            if high < low || high - low > 1_000 {
                return Err(invalid(format!(
                    "numbers.words {item:?}: a range goes up, by at most 1000 numbers"
                )));
            }
            for value in low..=high {
                words
                    .entry(value)
                    .or_insert_with(|| vec![leak(format!("num_{value}"))]);
            }
        }
        if !(0..=9).all(|digit| words.contains_key(&digit)) {
            return Err(invalid("numbers.words must say 0 to 9".into()));
        }
        let noun = |name: &str, noun: NounFile| -> Result<Noun, GrammarError> {
            let known = |category: &String| CATEGORIES.contains(&category.as_str());
            let categories = noun
                .forms
                .keys()
                .chain(noun.alone_forms.keys())
                .chain(&noun.without_count);
            if let Some(unknown) = categories.clone().find(|category| !known(category)) {
                return Err(invalid(format!(
                    "noun {name}: {unknown:?} is not one of {CATEGORIES:?}"
                )));
            }
            if !noun.forms.contains_key("other") {
                return Err(invalid(format!("noun {name} has no `other` form")));
            }
            let forms = |map: HashMap<String, String>| {
                map.into_iter()
                    .map(|(category, prompt)| (category_name(&category), leak(prompt)))
                    .collect()
            };
            Ok(Noun {
                forms: forms(noun.forms),
                alone_forms: forms(noun.alone_forms),
                without_count: noun
                    .without_count
                    .iter()
                    .map(|c| category_name(c))
                    .collect(),
                gender: noun.gender,
            })
        };
        let mut nouns = HashMap::new();
        let mut scale_nouns = HashMap::new();
        let scale_names: Vec<&str> = file
            .scales
            .iter()
            .map(|scale| scale.noun.as_str())
            .collect();
        for (name, file_noun) in file.nouns {
            let loaded = noun(&name, file_noun)?;
            if scale_names.contains(&name.as_str()) {
                scale_nouns.insert(name, loaded);
            } else {
                nouns.insert(leak(name), loaded);
            }
        }
        let mut scales = Vec::new();
        for scale in file.scales {
            let noun = scale_nouns.remove(&scale.noun).ok_or_else(|| {
                invalid(format!("scale {}: no noun {:?}", scale.value, scale.noun))
            })?;
            if scale.value < 100 {
                return Err(invalid(format!("scale {} is below 100", scale.value)));
            }
            scales.push(Scale {
                value: scale.value,
                noun,
                count_gender: scale.count_gender,
                joiner: scale.joiner.map(leak),
                joiner_small_or_round_only: scale.joiner_small_or_round_only,
                multiples: table(scale.multiples)?,
                feminine_multiples: table(scale.feminine_multiples)?,
                alone: table(scale.alone)?,
                before_noun: scale.before_noun.map(leak),
            });
        }
        scales.sort_by_key(|scale| std::cmp::Reverse(scale.value));
        let plural = file
            .plural
            .into_iter()
            .map(|rule| {
                if !CATEGORIES.contains(&rule.category.as_str()) {
                    return Err(invalid(format!(
                        "plural: unknown category {:?}",
                        rule.category
                    )));
                }
                Ok(PluralRule {
                    category: category_name(&rule.category),
                    values: rule.values,
                    last_two_digits: rule.last_two_digits,
                })
            })
            .collect::<Result<_, _>>()?;
        if !file.menu_digit.is_ascii_digit() {
            return Err(invalid("menu_digit must be a key 0-9".into()));
        }
        let grammar = Grammar {
            language,
            name: leak(file.name),
            menu_digit: file.menu_digit,
            and: leak(file.and),
            point: leak(file.point),
            plural,
            words,
            feminine: table(file.numbers.feminine)?,
            tens_joiner: file.numbers.tens_joiner.map(leak),
            unit_first: file.numbers.unit_first,
            scales,
            nouns,
        };
        // Every number must be sayable: try the ones every branch meets.
        for number in (0..=1_100).chain([MAX_NUMBER]) {
            grammar
                .try_cardinal(number, Gender::Masculine)
                .ok_or_else(|| invalid(format!("cannot say {number}")))?;
        }
        Ok(grammar)
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The language's own name ("Français").
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The key that picks this language in the menu (its `choose_language` prompt says it).
    pub fn menu_digit(&self) -> char {
        self.menu_digit
    }

    fn category(&self, count: u64) -> &'static str {
        self.plural
            .iter()
            .find(|rule| {
                rule.values.contains(&count)
                    || rule
                        .last_two_digits
                        .is_some_and(|[low, high]| (low..=high).contains(&(count % 100)))
            })
            .map_or("other", |rule| rule.category)
    }

    /// A number before a noun of `gender`; `None` when the rules cannot build it.
    fn try_cardinal(&self, number: u64, gender: Gender) -> Option<Words> {
        self.say(number, gender, false)
    }

    /// `counting`: the number counts a scale ("deux cent mille"), so it does not end the
    /// numeral and a scale noun's `alone_forms` ("deux cents") do not apply.
    fn say(&self, number: u64, gender: Gender, counting: bool) -> Option<Words> {
        if gender == Gender::Feminine
            && let Some(words) = self.feminine.get(&number)
        {
            return Some(words.clone());
        }
        if let Some(words) = self.words.get(&number) {
            return Some(words.clone());
        }
        if let Some(scale) = self.scales.iter().find(|scale| scale.value <= number) {
            return self.scaled(scale, number, gender, counting);
        }
        let (tens, unit) = (number - number % 10, number % 10);
        // A round ten or a unit without a word of its own cannot be built from smaller ones.
        if number >= 100 || tens == 0 || unit == 0 {
            return None;
        }
        let (first, second) = if self.unit_first {
            (
                self.say(unit, gender, counting)?,
                self.say(tens, gender, counting)?,
            )
        } else {
            (
                self.say(tens, gender, counting)?,
                self.say(unit, gender, counting)?,
            )
        };
        let mut out = first;
        out.extend(self.tens_joiner);
        out.extend(second);
        Some(out)
    }

    fn scaled(&self, scale: &Scale, number: u64, gender: Gender, counting: bool) -> Option<Words> {
        let (count, rest) = (number / scale.value, number % scale.value);
        let feminine = gender == Gender::Feminine;
        let mut out = match (
            rest == 0,
            scale.alone.get(&count),
            feminine
                .then(|| scale.feminine_multiples.get(&count))
                .flatten(),
            scale.multiples.get(&count),
        ) {
            (true, Some(alone), _, _) => alone.clone(),
            (_, _, Some(words), _) | (_, _, None, Some(words)) => words.clone(),
            _ => {
                let category = self.category(count);
                let mut words = Vec::new();
                if !scale.noun.without_count.contains(&category) {
                    let count_gender = scale.count_gender.unwrap_or(gender);
                    words.extend(self.say(count, count_gender, true)?);
                }
                words.push(scale.noun.form(category, rest == 0 && !counting));
                words
            }
        };
        if rest > 0 {
            let small_or_round = rest < 100 || rest % 100 == 0;
            if !scale.joiner_small_or_round_only || small_or_round {
                out.extend(scale.joiner);
            }
            out.extend(self.say(rest, gender, counting)?);
        }
        Some(out)
    }

    fn noun(&self, name: &'static str) -> Result<&Noun, SpeechError> {
        self.nouns.get(name).ok_or(SpeechError::MissingNoun(name))
    }
}

fn category_name(category: &str) -> &'static str {
    CATEGORIES
        .iter()
        .find(|known| **known == category)
        .copied()
        .unwrap_or("other")
}

impl Noun {
    fn form(&self, category: &'static str, alone: bool) -> &'static str {
        let alone_form = alone.then(|| self.alone_forms.get(category)).flatten();
        alone_form
            .or_else(|| self.forms.get(category))
            .or_else(|| alone.then(|| self.alone_forms.get("other")).flatten())
            .or_else(|| self.forms.get("other"))
            .copied()
            .unwrap_or("")
    }
}

/// Every language's grammar, by code; shared by all calls.
#[derive(Default)]
pub struct LanguageBook {
    grammars: HashMap<Language, Grammar>,
}

impl std::fmt::Debug for LanguageBook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.languages()).finish()
    }
}

impl LanguageBook {
    pub fn new(grammars: impl IntoIterator<Item = Grammar>) -> LanguageBook {
        LanguageBook {
            grammars: grammars
                .into_iter()
                .map(|grammar| (grammar.language, grammar))
                .collect(),
        }
    }

    /// English and Spanish, the languages of the shipped configuration, built in (the
    /// switch loads every `prompts/<code>/language.toml` in their place). Built once per
    /// process: a grammar's words live as long as the process.
    pub fn builtin() -> std::sync::Arc<LanguageBook> {
        static BUILTIN: std::sync::OnceLock<std::sync::Arc<LanguageBook>> =
            std::sync::OnceLock::new();
        let build = || {
            let shipped = [
                (
                    Language::ENGLISH,
                    include_str!("../../../prompts/en/language.toml"),
                ),
                (
                    Language::SPANISH,
                    include_str!("../../../prompts/es/language.toml"),
                ),
            ];
            std::sync::Arc::new(LanguageBook::new(
                shipped
                    .into_iter()
                    .filter_map(|(language, text)| Grammar::from_toml(language, text).ok()),
            ))
        };
        BUILTIN.get_or_init(build).clone()
    }

    pub fn grammar(&self, language: Language) -> Option<&Grammar> {
        self.grammars.get(&language)
    }

    /// The languages, by code.
    pub fn languages(&self) -> Vec<Language> {
        let mut languages: Vec<Language> = self.grammars.keys().copied().collect();
        languages.sort();
        languages
    }
}

// ----- speaking -----

/// The nouns of a currency's units: (major, minor); language-independent names that each
/// grammar gives its words.
fn currency_nouns(code: &str) -> Option<(&'static str, &'static str)> {
    const DOLLAR_CURRENCIES: [&str; 6] = ["USD", "CAD", "AUD", "NZD", "SGD", "HKD"];
    let code = code.to_ascii_uppercase();
    if DOLLAR_CURRENCIES.contains(&code.as_str()) {
        return Some(("dollar", "cent"));
    }
    match code.as_str() {
        "EUR" => Some(("euro", "euro_cent")),
        "GBP" => Some(("pound", "penny")),
        "MXN" => Some(("peso", "centavo")),
        "INR" => Some(("rupee", "paisa")),
        _ => None,
    }
}

/// Whether [`amount`] has the currency's own words (otherwise it spells the code).
pub fn supports_currency(code: &str) -> bool {
    currency_nouns(code).is_some()
}

/// A cardinal number as it precedes a (masculine) noun.
pub fn cardinal(grammar: &Grammar, number: u64) -> Result<Vec<&'static str>, SpeechError> {
    cardinal_agreeing(grammar, number, Gender::Masculine)
}

/// A cardinal number as it precedes a noun of `gender`.
pub fn cardinal_agreeing(
    grammar: &Grammar,
    number: u64,
    gender: Gender,
) -> Result<Vec<&'static str>, SpeechError> {
    if number > MAX_NUMBER {
        return Err(SpeechError::TooLarge(number));
    }
    // Checked for every number at load; a gap here is a grammar bug, said as too large.
    grammar
        .try_cardinal(number, gender)
        .ok_or(SpeechError::TooLarge(number))
}

/// A count followed by its noun in the form the count wants: "one minute", "veintiún
/// minutos", "un millón de dólares"; `noun` is a key of the grammar's `[nouns]`.
pub fn quantity(
    grammar: &Grammar,
    number: u64,
    noun: &'static str,
) -> Result<Vec<&'static str>, SpeechError> {
    let noun = grammar.noun(noun)?;
    let category = grammar.category(number);
    let mut out = Vec::new();
    if !noun.without_count.contains(&category) {
        out = cardinal_agreeing(grammar, number, noun.gender)?;
    } else if number > MAX_NUMBER {
        return Err(SpeechError::TooLarge(number));
    }
    let round = grammar
        .scales
        .iter()
        .find(|scale| number >= scale.value && number.is_multiple_of(scale.value));
    if let Some(word) = round.and_then(|scale| scale.before_noun) {
        out.push(word);
    }
    out.push(noun.form(category, false));
    Ok(out)
}

/// A length to the second: "two minutes and five seconds", "forty seconds", and with an
/// `hour` noun in the grammar "one hour, two minutes and five seconds" (a call's length;
/// [`duration`] rounds to what a caller can still talk).
pub fn length(grammar: &Grammar, milliseconds: u64) -> Result<Vec<&'static str>, SpeechError> {
    let seconds = milliseconds / 1_000;
    let (hours, minutes, rest) = split_time(grammar, seconds / 60, seconds % 60);
    let parts = [(hours, "hour"), (minutes, "minute"), (rest, "second")];
    let mut said: Vec<Vec<&'static str>> = Vec::new();
    for (count, noun) in parts {
        if count > 0 {
            said.push(quantity(grammar, count, noun)?);
        }
    }
    if said.is_empty() {
        return quantity(grammar, 0, "second");
    }
    Ok(joined(grammar, said))
}

/// A talk time: hours and minutes (with an `hour` noun in the grammar), whole minutes
/// ("thirty-four minutes"), or seconds under one minute.
pub fn duration(grammar: &Grammar, milliseconds: u64) -> Result<Vec<&'static str>, SpeechError> {
    if milliseconds < 60_000 {
        return quantity(grammar, milliseconds / 1_000, "second");
    }
    let (hours, minutes, _) = split_time(grammar, milliseconds / 60_000, 0);
    let mut said = Vec::new();
    if hours > 0 {
        said.push(quantity(grammar, hours, "hour")?);
    }
    if minutes > 0 || hours == 0 {
        said.push(quantity(grammar, minutes, "minute")?);
    }
    Ok(joined(grammar, said))
}

/// (hours, minutes, seconds): hours only when the grammar says them.
fn split_time(grammar: &Grammar, minutes: u64, seconds: u64) -> (u64, u64, u64) {
    if grammar.nouns.contains_key("hour") {
        (minutes / 60, minutes % 60, seconds)
    } else {
        (0, minutes, seconds)
    }
}

/// Parts said one after another, "and" before the last.
fn joined(grammar: &Grammar, parts: Vec<Vec<&'static str>>) -> Vec<&'static str> {
    let count = parts.len();
    let mut out = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        if index > 0 && index + 1 == count {
            out.push(grammar.and);
        }
        out.extend(part);
    }
    out
}

/// An amount of money in micro-units (1 unit = 1,000,000): "twelve dollars and fifty cents".
/// Fractions of a cent are dropped and a negative balance is spoken as zero, so the caller
/// never hears more than they have.
pub fn amount(
    grammar: &Grammar,
    micros: i64,
    currency: &str,
) -> Result<Vec<&'static str>, SpeechError> {
    let cents = u64::try_from(micros.max(0)).unwrap_or(0) / 10_000;
    let (major, minor) = (cents / 100, cents % 100);
    let nouns = currency_nouns(currency).filter(|(major, minor)| {
        grammar.nouns.contains_key(major) && grammar.nouns.contains_key(minor)
    });
    let Some((major_noun, minor_noun)) = nouns else {
        return amount_with_code(grammar, major, minor, currency);
    };
    if major == 0 && minor > 0 {
        return quantity(grammar, minor, minor_noun);
    }
    let mut out = quantity(grammar, major, major_noun)?;
    if minor > 0 {
        out.push(grammar.and);
        out.extend(quantity(grammar, minor, minor_noun)?);
    }
    Ok(out)
}

/// "twelve point five zero, J P Y": the amount with two decimals, then the code's letters.
fn amount_with_code(
    grammar: &Grammar,
    major: u64,
    minor: u64,
    currency: &str,
) -> Result<Vec<&'static str>, SpeechError> {
    let letters: Option<Vec<&'static str>> = currency.chars().map(letter_prompt).collect();
    let letters = letters
        .filter(|letters| letters.len() == 3)
        .ok_or_else(|| SpeechError::UnsupportedCurrency(currency.to_owned()))?;
    let mut out = cardinal(grammar, major)?;
    if minor > 0 {
        out.push(grammar.point);
        out.push(DIGITS[(minor / 10) as usize]);
        out.push(DIGITS[(minor % 10) as usize]);
    }
    out.extend(letters);
    Ok(out)
}

/// Single digits after "point": every language has `num_0` to `num_9`.
const DIGITS: [&str; 10] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
];

/// The prompt of one digit said alone ("num_7"): codes are read digit by digit.
pub(crate) fn digit_prompt(key: char) -> Option<&'static str> {
    let digit = key.to_digit(10)?;
    DIGITS.get(usize::try_from(digit).ok()?).copied()
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
