//! Every prompt name the speech module can produce is a shipped WAV.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

mod common;

use talktime_engine::{Language, speech};

fn prompt_path(language: Language, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../prompts")
        .join(language.code())
        .join(format!("{name}.wav"))
}

/// Numbers that reach every branch: all of 0..=2100, then each group boundary.
fn sample_numbers() -> Vec<u64> {
    let mut numbers: Vec<u64> = (0..=2_100).collect();
    for scale in [1_000, 1_000_000] {
        for group in [1, 2, 21, 31, 99, 100, 101, 121, 200, 999] {
            for rest in [0, 1, 21, 100, 999] {
                numbers.push(group * scale + rest);
            }
        }
    }
    numbers.push(speech::MAX_NUMBER);
    numbers
}

#[test]
fn every_spoken_name_exists_as_a_file() {
    let book = common::book();
    assert!(book.languages().len() >= 6, "{:?}", book.languages());
    for language in book.languages() {
        let grammar = book.grammar(language).unwrap();
        let mut names = BTreeSet::new();
        for number in sample_numbers() {
            names.extend(speech::cardinal(grammar, number).unwrap());
            names.extend(speech::quantity(grammar, number, "minute").unwrap());
            names.extend(speech::duration(grammar, number * 1_000).unwrap());
            names.extend(speech::duration(grammar, number * 60_000).unwrap());
            names.extend(speech::length(grammar, number * 1_000).unwrap());
            for currency in ["USD", "EUR", "CAD", "GBP", "MXN", "INR", "JPY"] {
                let micros = i64::try_from(number).unwrap() * 10_000;
                names.extend(speech::amount(grammar, micros, currency).unwrap());
                names.extend(speech::amount(grammar, micros * 100, currency).unwrap());
            }
        }
        assert!(names.len() > 40, "{language:?}: only {} names", names.len());
        for name in names {
            assert!(
                prompt_path(language, name).is_file(),
                "{language:?}: no file for {name}"
            );
        }
    }
}

#[test]
fn every_manifest_line_has_its_wav() {
    for language in common::book().languages() {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../prompts")
            .join(language.code())
            .join("prompts.txt");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split('|').next())
            .collect();
        assert!(names.contains(&"goodbye"));
        for name in names {
            assert!(prompt_path(language, name).is_file(), "{language:?} {name}");
        }
    }
}
