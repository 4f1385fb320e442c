//! Evaluates a lowered rule against one user's state at `now`, with RULES.md's null
//! semantics: any comparison with null (or a trait of the wrong type) is false,
//! `!=` included, and `not` of a false comparison is true.
//!
//! Evaluation never allocates and never panics.

use std::cmp::Ordering;

use crate::domain::{Timestamp, TraitValue};

use super::ast::{ArithOp, CmpOp};
use super::ir::{Cond, Lit, TimeBase, TimeTerm, Value};
use super::state::UserState;

/// A run-time value; `Null` stands for a missing value or a type mismatch.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Val<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Dur(i64),
}

/// Returns whether `cond` holds for `state` at `now`.
pub(crate) fn holds(cond: &Cond, state: &UserState, now: Timestamp) -> bool {
    match cond {
        Cond::Const(b) => *b,
        Cond::And(items) => items.iter().all(|c| holds(c, state, now)),
        Cond::Or(items) => items.iter().any(|c| holds(c, state, now)),
        Cond::Not(inner) => !holds(inner, state, now),
        Cond::Time { op, lhs, rhs } => match (instant(lhs, state, now), instant(rhs, state, now)) {
            (Some(a), Some(b)) => test(*op, a.cmp(&b)),
            _ => false,
        },
        Cond::Compare { op, lhs, rhs } => {
            compare(*op, value(lhs, state, now), value(rhs, state, now))
        }
        Cond::In { lhs, set } => {
            let needle = value(lhs, state, now);
            needle != Val::Null
                && set
                    .iter()
                    .any(|lit| compare(CmpOp::Eq, needle, literal(lit)))
        }
        Cond::Truthy(v) => value(v, state, now) == Val::Bool(true),
        Cond::Active {
            activity,
            window,
            present,
        } => {
            let last = state.last_seen(Some(activity), now);
            let active = last.is_some_and(|t| t > now.add_millis(-window));
            active == *present
        }
    }
}

/// Returns the instant a time term denotes, or `None` when it is null.
pub(crate) fn instant(term: &TimeTerm, state: &UserState, now: Timestamp) -> Option<Timestamp> {
    let base = match &term.base {
        TimeBase::Now => Some(now),
        TimeBase::LastSeen(activity) => state.last_seen(activity.as_deref(), now),
        TimeBase::FirstSeen(activity) => state.first_seen(activity.as_deref(), now),
    };
    base.map(|t| t.add_millis(term.offset))
}

fn test(op: CmpOp, ordering: Ordering) -> bool {
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

fn compare(op: CmpOp, a: Val<'_>, b: Val<'_>) -> bool {
    let ordering = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(&y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Dur(x), Val::Dur(y)) => Some(x.cmp(&y)),
        (Val::Bool(x), Val::Bool(y)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(x.cmp(&y)),
        _ => None,
    };
    ordering.is_some_and(|o| test(op, o))
}

fn literal(lit: &Lit) -> Val<'_> {
    match lit {
        Lit::Str(s) => Val::Str(s),
        Lit::Num(n) => Val::Num(*n),
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Dur(ms) => Val::Dur(*ms),
    }
}

fn value<'a>(v: &'a Value, state: &'a UserState, now: Timestamp) -> Val<'a> {
    match v {
        Value::Lit(lit) => literal(lit),
        Value::Attr(attr) => state.attribute(*attr, now).map_or(Val::Null, Val::Str),
        Value::Trait(name) => match state.trait_value(name, now) {
            None => Val::Null,
            Some(TraitValue::Bool(b)) => Val::Bool(*b),
            Some(TraitValue::Number(n)) => Val::Num(*n),
            Some(TraitValue::String(s)) => Val::Str(s),
        },
        Value::Count { activity, window } => Val::Num(state.count(activity, *window, now) as f64),
        Value::Sum(first, rest) => {
            let Val::Num(mut total) = value(first, state, now) else {
                return Val::Null;
            };
            for (op, term) in rest {
                let Val::Num(n) = value(term, state, now) else {
                    return Val::Null;
                };
                match op {
                    ArithOp::Add => total += n,
                    ArithOp::Sub => total -= n,
                }
            }
            Val::Num(total)
        }
    }
}
