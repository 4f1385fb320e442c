//! Property tests of the rule engine against a naive model that keeps every raw event
//! with its exact timestamp.
//!
//! The model answers `Some(truth)` or `None` where RULES.md's precision lets a bucketed
//! window count go either way (an event within G of the window's edge: 1 h for windows
//! up to 48 h, 1 day beyond). Presence forms (`count(a, w) == 0`, `>= 1`, …) are exact
//! in the model too, so the engine must match them exactly.

use proptest::prelude::*;
use uss::domain::{Event, Timestamp, TraitValue, DAY_MS, HOUR_MS, MINUTE_MS};
use uss::rules::{
    compile, next_change, parse, ArithOp, Attribute, CmpOp, Expr, ExprKind, Limits, Literal,
    UserState,
};

const BASE_NOW: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

/// One generated event with the instant the server received it.
#[derive(Clone, Debug)]
struct Arrival {
    received: i64,
    event: Event,
}

/// A naive value: numbers are intervals because window counts may be imprecise.
#[derive(Clone, Debug, PartialEq)]
enum Naive {
    Null,
    Num(f64, f64),
    Str(String),
    Bool(bool),
    Time(i64),
    Dur(i64),
}

struct Model<'a> {
    arrivals: &'a [Arrival],
    now: i64,
}

impl Model<'_> {
    fn due(&self) -> impl Iterator<Item = (usize, &Event)> {
        let now = self.now;
        self.arrivals
            .iter()
            .enumerate()
            .filter(move |(_, a)| a.event.created_at.as_millis() <= now)
            .map(|(i, a)| (i, &a.event))
    }

    fn of_type<'s>(&'s self, activity: &'s Option<String>) -> impl Iterator<Item = i64> + 's {
        self.due()
            .filter(move |(_, e)| activity.as_deref().is_none_or(|a| *e.activity_type == *a))
            .map(|(_, e)| e.created_at.as_millis())
    }

    fn exact_count(&self, activity: &str, window: Option<i64>) -> usize {
        let edge = window.map_or(i64::MIN, |w| self.now - w);
        self.of_type(&Some(activity.to_owned()))
            .filter(|t| *t > edge)
            .count()
    }

    fn latest<T>(&self, pick: impl Fn(&Event) -> Option<T>) -> Option<T> {
        self.due()
            .filter_map(|(i, e)| pick(e).map(|v| (e.created_at, i, v)))
            .max_by_key(|(t, i, _)| (*t, *i))
            .map(|(_, _, v)| v)
    }

    fn value(&self, expr: &Expr) -> Naive {
        match &expr.kind {
            ExprKind::Literal(Literal::String(s)) => Naive::Str(s.clone()),
            ExprKind::Literal(Literal::Number(n)) => Naive::Num(*n, *n),
            ExprKind::Literal(Literal::Bool(b)) => Naive::Bool(*b),
            ExprKind::Literal(Literal::Duration(d)) => Naive::Dur(*d),
            ExprKind::Now => Naive::Time(self.now),
            ExprKind::Attribute(attribute) => {
                let found = match attribute {
                    Attribute::Country => self.latest(|e| e.country.as_deref().map(str::to_owned)),
                    Attribute::Region => self.latest(|e| e.region.as_deref().map(str::to_owned)),
                    Attribute::DeviceType => {
                        self.latest(|e| e.device_type.as_deref().map(str::to_owned))
                    }
                    Attribute::Trait(name) => {
                        let value = self.latest(|e| {
                            e.traits
                                .iter()
                                .rev()
                                .find(|(n, _)| **n == **name)
                                .map(|(_, v)| v.clone())
                        });
                        return match value {
                            None => Naive::Null,
                            Some(TraitValue::Bool(b)) => Naive::Bool(b),
                            Some(TraitValue::Number(n)) => Naive::Num(n, n),
                            Some(TraitValue::String(s)) => Naive::Str(s.to_string()),
                        };
                    }
                };
                found.map_or(Naive::Null, Naive::Str)
            }
            ExprKind::Count { activity, window } => {
                let activity = Some(activity.value.clone());
                match window {
                    None => {
                        let n = self.of_type(&activity).count() as f64;
                        Naive::Num(n, n)
                    }
                    Some(w) => {
                        let edge = self.now - w.value;
                        let g = if w.value <= 48 * HOUR_MS {
                            HOUR_MS
                        } else {
                            DAY_MS
                        };
                        let sure = self.of_type(&activity).filter(|t| *t > edge + g).count();
                        let maybe = self.of_type(&activity).filter(|t| *t >= edge - g).count();
                        Naive::Num(sure as f64, maybe as f64)
                    }
                }
            }
            ExprKind::LastSeen(a) => {
                let a = a.as_ref().map(|a| a.value.clone());
                self.of_type(&a).max().map_or(Naive::Null, Naive::Time)
            }
            ExprKind::FirstSeen(a) => {
                let a = a.as_ref().map(|a| a.value.clone());
                self.of_type(&a).min().map_or(Naive::Null, Naive::Time)
            }
            ExprKind::Sum { first, rest } => {
                let mut acc = self.value(first);
                for (op, term) in rest {
                    let sign = if *op == ArithOp::Add { 1 } else { -1 };
                    acc = match (acc, self.value(term)) {
                        (Naive::Num(a, b), Naive::Num(c, d)) if sign > 0 => {
                            Naive::Num(a + c, b + d)
                        }
                        (Naive::Num(a, b), Naive::Num(c, d)) => Naive::Num(a - d, b - c),
                        (Naive::Time(t), Naive::Dur(d)) | (Naive::Dur(d), Naive::Time(t)) => {
                            Naive::Time(t + sign * d)
                        }
                        (Naive::Dur(a), Naive::Dur(b)) => Naive::Dur(a + sign * b),
                        _ => Naive::Null,
                    };
                }
                acc
            }
            _ => match self.truth(expr) {
                Some(b) => Naive::Bool(b),
                None => Naive::Null,
            },
        }
    }

    /// Returns the exact answer of a presence form, if `expr` is one.
    fn presence(&self, op: CmpOp, count: &Expr, other: &Expr) -> Option<bool> {
        let ExprKind::Count {
            activity,
            window: Some(w),
        } = &count.kind
        else {
            return None;
        };
        let ExprKind::Literal(Literal::Number(k)) = other.kind else {
            return None;
        };
        let zero_or_one = k == 0.0 || k == 1.0;
        let form = matches!(
            (op, k),
            (CmpOp::Eq | CmpOp::Le | CmpOp::Ne | CmpOp::Gt, 0.0)
        ) || matches!((op, k), (CmpOp::Lt | CmpOp::Ge, 1.0));
        if !(zero_or_one && form) {
            return None;
        }
        let n = self.exact_count(&activity.value, Some(w.value)) as f64;
        Some(compare_exact(op, n, k))
    }

    fn truth(&self, expr: &Expr) -> Option<bool> {
        match &expr.kind {
            ExprKind::Or(items) => items
                .iter()
                .map(|i| self.truth(i))
                .fold(Some(false), kleene_or),
            ExprKind::And(items) => items
                .iter()
                .map(|i| self.truth(i))
                .fold(Some(true), kleene_and),
            ExprKind::Not(inner) => self.truth(inner).map(|b| !b),
            ExprKind::Compare { op, lhs, rhs } => {
                if let Some(exact) = self
                    .presence(op.value, lhs, rhs)
                    .or_else(|| self.presence(op.value.mirrored(), rhs, lhs))
                {
                    return Some(exact);
                }
                compare(op.value, &self.value(lhs), &self.value(rhs))
            }
            ExprKind::In { lhs, list } => {
                let needle = self.value(lhs);
                let mut answer = Some(false);
                for item in list {
                    answer = kleene_or(answer, compare(CmpOp::Eq, &needle, &self.value(item)));
                }
                answer
            }
            _ => Some(self.value(expr) == Naive::Bool(true)),
        }
    }
}

fn kleene_or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn kleene_and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    kleene_or(a.map(|x| !x), b.map(|x| !x)).map(|x| !x)
}

fn compare_exact<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

fn compare(op: CmpOp, a: &Naive, b: &Naive) -> Option<bool> {
    match (a, b) {
        (Naive::Num(alo, ahi), Naive::Num(blo, bhi)) => {
            let (dlo, dhi) = (alo - bhi, ahi - blo);
            if dlo == dhi {
                return Some(compare_exact(op, dlo, 0.0));
            }
            let (all, none) = match op {
                CmpOp::Lt => (dhi < 0.0, dlo >= 0.0),
                CmpOp::Le => (dhi <= 0.0, dlo > 0.0),
                CmpOp::Gt => (dlo > 0.0, dhi <= 0.0),
                CmpOp::Ge => (dlo >= 0.0, dhi < 0.0),
                CmpOp::Eq => (false, dlo > 0.0 || dhi < 0.0),
                CmpOp::Ne => (dlo > 0.0 || dhi < 0.0, false),
            };
            if all {
                Some(true)
            } else if none {
                Some(false)
            } else {
                None
            }
        }
        (Naive::Str(x), Naive::Str(y)) => Some(compare_exact(op, x, y)),
        (Naive::Time(x), Naive::Time(y)) => Some(compare_exact(op, x, y)),
        (Naive::Dur(x), Naive::Dur(y)) => Some(compare_exact(op, x, y)),
        (Naive::Bool(x), Naive::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            Some(compare_exact(op, x, y))
        }
        _ => Some(false),
    }
}

// ---- generators ----

fn activity() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("a"), Just("b"), Just("c")]
}

fn window() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("30m"),
        Just("1h"),
        Just("90m"),
        Just("6h"),
        Just("24h"),
        Just("48h"),
        Just("49h"),
        Just("3d"),
        Just("7d"),
        Just("2w"),
        Just("30d"),
        Just("90d")
    ]
}

fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        activity().prop_map(|a| format!("count({a})")),
        (activity(), window()).prop_map(|(a, w)| format!("count({a}, {w})")),
    ]
}

fn number() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => count(),
        2 => (0..6u8).prop_map(|n| n.to_string()),
        1 => Just("1.5".to_owned()),
        1 => Just("-1".to_owned()),
        1 => Just("traits.n".to_owned()),
    ];
    prop_oneof![
        4 => leaf.clone(),
        1 => (leaf.clone(), prop_oneof![Just("+"), Just("-")], leaf)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
    ]
}

fn time() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("now".to_owned()),
        Just("last_seen()".to_owned()),
        Just("first_seen()".to_owned()),
        activity().prop_map(|a| format!("last_seen({a})")),
        activity().prop_map(|a| format!("first_seen({a})")),
    ];
    let shift = prop_oneof![
        Just(""),
        Just(" - 7d"),
        Just(" - 1d"),
        Just(" + 2h"),
        Just(" - 36h")
    ];
    (base, shift).prop_map(|(b, s)| format!("{b}{s}"))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("country".to_owned()),
        Just("region".to_owned()),
        Just("device_type".to_owned()),
        Just("traits.s".to_owned()),
        Just("\"US\"".to_owned()),
        Just("\"mobile\"".to_owned()),
    ]
}

fn op() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">=")
    ]
}

fn leaf_condition() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (number(), op(), number()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        3 => (time(), op(), time()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        3 => (activity(), window(), prop_oneof![
            Just("== 0"), Just(">= 1"), Just("> 0"), Just("!= 0"), Just("< 1"), Just("<= 0"),
            Just(">= 2"), Just("< 3")
        ]).prop_map(|(a, w, tail)| format!("count({a}, {w}) {tail}")),
        2 => (text(), op(), text()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
        1 => text().prop_map(|a| format!("{a} in [\"US\", \"mobile\", \"DE\"]")),
        1 => number().prop_map(|a| format!("{a} in [0, 1, 2.5]")),
        1 => Just("traits.vip".to_owned()),
        1 => Just("traits.vip == true".to_owned()),
        1 => Just("true".to_owned()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    leaf_condition().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("not ({c})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) or ({b})")),
        ]
    })
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => 0..100 * DAY_MS,
        2 => (0..100 * 24i64).prop_map(|h| h * HOUR_MS),
        1 => 0..3 * DAY_MS,
    ]
}

fn trait_value() -> impl Strategy<Value = Option<(&'static str, TraitValue)>> {
    prop_oneof![
        3 => Just(None),
        1 => (0..4u8).prop_map(|n| Some(("n", TraitValue::Number(f64::from(n))))),
        1 => any::<bool>().prop_map(|b| Some(("vip", TraitValue::Bool(b)))),
        1 => prop_oneof![Just("US"), Just("pro")].prop_map(|s| Some(("s", TraitValue::String(s.into())))),
        1 => Just(Some(("vip", TraitValue::String("yes".into())))),
    ]
}

fn arrivals() -> impl Strategy<Value = Vec<Arrival>> {
    let one = (
        0..2 * DAY_MS,
        offset(),
        prop_oneof![4 => Just(0i64), 1 => 1..10 * MINUTE_MS],
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
        proptest::option::of(prop_oneof![Just("US"), Just("DE")]),
        proptest::option::of(prop_oneof![Just("Area X"), Just("Texas")]),
        proptest::option::of(prop_oneof![Just("mobile"), Just("desktop")]),
        trait_value(),
    );
    proptest::collection::vec(one, 0..14).prop_map(|raw| {
        let mut out: Vec<Arrival> = raw
            .into_iter()
            .map(
                |(recv_back, age, ahead, activity, country, region, device, tr)| {
                    let received = BASE_NOW - recv_back;
                    let at = if ahead > 0 {
                        received + ahead
                    } else {
                        received - age
                    };
                    let mut event = Event::new(activity, Timestamp::from_millis(at));
                    event.country = country.map(Into::into);
                    event.region = region.map(Into::into);
                    event.device_type = device.map(Into::into);
                    event.traits = tr.map(|(n, v)| (n.into(), v)).into_iter().collect();
                    Arrival { received, event }
                },
            )
            .collect();
        out.sort_by_key(|a| a.received);
        out
    })
}

fn build_state(arrivals: &[Arrival]) -> UserState {
    let retention = Limits::default().max_window_ms;
    let mut state = UserState::default();
    for a in arrivals {
        state.apply(&a.event, Timestamp::from_millis(a.received), retention);
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn printing_a_parsed_rule_parses_back_to_the_same_tree(src in condition()) {
        let limits = Limits::default();
        let ast = parse(&src, &limits).unwrap();
        let printed = ast.to_string();
        let again = parse(&printed, &limits).unwrap();
        prop_assert_eq!(again.without_spans(), ast.without_spans());
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn eval_agrees_with_the_naive_model_within_the_precision_bound(
        src in condition(),
        history in arrivals(),
        later in 0..5 * DAY_MS,
    ) {
        let rule = compile(&src, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let state = build_state(&history);
        let now = BASE_NOW + later;
        let model = Model { arrivals: &history, now };
        if let Some(truth) = model.truth(rule.ast()) {
            prop_assert_eq!(rule.eval(&state, Timestamp::from_millis(now)), truth, "at {}", now);
        }
    }

    #[test]
    fn no_rule_flips_before_the_reported_next_change(
        sources in proptest::collection::vec(condition(), 1..4),
        history in arrivals(),
        probes in proptest::collection::vec(1..120 * DAY_MS, 12),
        fractions in proptest::collection::vec(0.0..1.0f64, 6),
    ) {
        let rules: Vec<_> = sources
            .iter()
            .map(|s| compile(s, &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string())))
            .collect::<Result<_, _>>()?;
        let state = build_state(&history);
        let now = BASE_NOW;
        let at_base = Timestamp::from_millis(now);
        let combined = next_change(&rules, &state, at_base);
        let each: Vec<_> = rules.iter().map(|r| next_change([r], &state, at_base)).collect();
        prop_assert_eq!(combined, each.iter().flatten().min().copied());
        for (rule, next) in rules.iter().zip(each) {
            prop_assert!(next.is_none_or(|n| n.as_millis() > now));
            let horizon = next.map_or(now + 120 * DAY_MS, |n| n.as_millis());
            let at_now = rule.eval(&state, at_base);
            // The engine's own answer is constant until the reported instant.
            let mut quiet: Vec<i64> = fractions
                .iter()
                .map(|f| now + 1 + ((horizon - now - 1) as f64 * f) as i64)
                .collect();
            quiet.push(horizon - 1);
            for t in quiet.into_iter().filter(|t| *t > now && *t < horizon) {
                prop_assert_eq!(rule.eval(&state, Timestamp::from_millis(t)), at_now, "engine flipped at {} before {:?}", t, next);
            }
            // Where the naive truth is certain and differs from now's, the reported
            // instant is at or before it.
            let model_now = Model { arrivals: &history, now }.truth(rule.ast());
            for probe in &probes {
                let t = now + probe;
                let model_then = Model { arrivals: &history, now: t }.truth(rule.ast());
                if let (Some(a), Some(b)) = (model_now, model_then) {
                    if a != b {
                        prop_assert!(next.is_some_and(|n| n.as_millis() <= t), "model flips by {} but next is {:?}", t, next);
                    }
                }
            }
        }
    }
}
