//! Longest-prefix look-ups on a generated 100k-prefix deck, and rate_call + max_talk_time.
//! Run: `cargo bench -p talktime-billing --bench rating`.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use talktime_billing::*;

/// A deterministic pseudo-random generator (xorshift), so the deck is the same every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn digits(&mut self, length: usize) -> String {
        (0..length)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

fn deck_of(size: usize) -> RateDeck {
    let mut generator = Generator(0x9E37_79B9_7F4A_7C15);
    let mut seen = std::collections::HashSet::new();
    let mut rates = Vec::with_capacity(size);
    while rates.len() < size {
        let length = 2 + (generator.next() % 8) as usize;
        let prefix = generator.digits(length);
        if seen.insert(prefix.clone()) {
            let sell = Decimal::new((generator.next() % 50_000) as i64, 5);
            rates.push(Rate::new(&prefix, sell, 30, 6));
        }
    }
    RateDeck::build(TariffSettings::default(), rates).unwrap()
}

fn numbers(count: usize) -> Vec<String> {
    let mut generator = Generator(0xD1B5_4A32_D192_ED03);
    (0..count).map(|_| generator.digits(12)).collect()
}

fn lookups(criterion: &mut Criterion) {
    let deck = deck_of(100_000);
    let numbers = numbers(1024);
    let matched = numbers.iter().filter(|n| deck.lookup(n).is_some()).count();
    println!(
        "deck: {} prefixes, {matched}/1024 sample numbers matched",
        deck.len()
    );
    let mut group = criterion.benchmark_group("deck");
    group.throughput(Throughput::Elements(numbers.len() as u64));
    group.bench_function("longest_prefix_100k_x1024", |bencher| {
        bencher.iter(|| {
            let mut found = 0usize;
            for number in &numbers {
                if deck.lookup(black_box(number)).is_some() {
                    found += 1;
                }
            }
            black_box(found)
        })
    });
    group.finish();
}

fn rating(criterion: &mut Criterion) {
    let mut rate = Rate::new("91", Decimal::new(8, 2), 30, 6);
    rate.connection_fee = Decimal::new(39, 2);
    rate.steps.push(RateStep {
        after_seconds: 600,
        rate: StepRate::PercentOfBase(Decimal::from(120)),
    });
    let mut call = CallFacts::new(LocalStart::new(
        Date::new(2025, 5, 1).unwrap(),
        TimeOfDay::new(9, 0, 0).unwrap(),
    ));
    call.taxes.taxes.push(Tax {
        name: "VAT".to_owned(),
        kind: TaxKind::Percent(Decimal::from(20)),
        compound: false,
    });
    let settings = TariffSettings::default();
    let balance = Money::new(Decimal::new(1_000, 2), Currency::USD);
    let mut group = criterion.benchmark_group("rating");
    group.throughput(Throughput::Elements(1));
    group.bench_function("context_new", |bencher| {
        bencher.iter(|| RatingContext::new(black_box(&settings), &rate, &call).unwrap())
    });
    let context = RatingContext::new(&settings, &rate, &call).unwrap();
    group.bench_function("rate_call", |bencher| {
        bencher.iter(|| rate_call(black_box(&context), black_box(1_234_567)))
    });
    group.bench_function("max_talk_time", |bencher| {
        bencher.iter(|| max_talk_time(black_box(&context), black_box(balance)).unwrap())
    });
    group.bench_function("context_rate_call_max_talk_time", |bencher| {
        bencher.iter(|| {
            let context = RatingContext::new(&settings, &rate, &call).unwrap();
            let limit = max_talk_time(&context, black_box(balance)).unwrap();
            rate_call(&context, black_box(limit.limit_ms))
        })
    });
    group.finish();
}

criterion_group!(benches, lookups, rating);
criterion_main!(benches);
