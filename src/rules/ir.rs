//! The checked, lowered form of a rule that `eval`, `next_change` and `reads` walk.
//!
//! Every type question was settled by `compile`: time arithmetic is folded into one
//! base plus a constant offset, constant durations are folded, and the exact
//! "any event in the window" forms of `count` are recognised.

use super::ast::{ArithOp, CmpOp};

/// A boolean condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    /// `true` / `false`.
    Const(bool),
    /// All must hold.
    And(Vec<Cond>),
    /// One must hold.
    Or(Vec<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// A comparison of two instants.
    Time {
        op: CmpOp,
        lhs: TimeTerm,
        rhs: TimeTerm,
    },
    /// A comparison of numbers, strings, booleans or durations.
    Compare { op: CmpOp, lhs: Value, rhs: Value },
    /// Membership of a value in a literal list.
    In { lhs: Value, set: Vec<Lit> },
    /// A value used as a condition: holds only when it is boolean `true`.
    Truthy(Value),
    /// `count(activity, window) >= 1` (`present`) or `== 0` (not `present`), kept exact.
    Active {
        activity: Box<str>,
        window: i64,
        present: bool,
    },
}

/// An instant: `base + offset` milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TimeTerm {
    pub base: TimeBase,
    pub offset: i64,
}

/// Where an instant comes from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TimeBase {
    Now,
    LastSeen(Option<Box<str>>),
    FirstSeen(Option<Box<str>>),
}

/// A non-time value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Lit(Lit),
    Attr(Attr),
    Trait(Box<str>),
    Count {
        activity: Box<str>,
        window: Option<i64>,
    },
    Sum(Box<Value>, Vec<(ArithOp, Value)>),
}

/// A literal.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    Dur(i64),
}

/// A built-in user attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    /// `country`
    Country,
    /// `region`
    Region,
    /// `device_type`
    DeviceType,
}
