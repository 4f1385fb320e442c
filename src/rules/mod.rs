//! The rule language: parse, check, evaluate, and predict when a rule flips.
//!
//! Pure code: no I/O, no actix, no sled, no clock reads — `now` is always a parameter.
//!
//! # Grammar
//!
//! ```text
//! rule     = or
//! or       = and { "or" and }
//! and      = unary { "and" unary }
//! unary    = "not" unary | compare
//! compare  = sum [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) sum ]
//!          | sum "in" "[" literal { "," literal } "]"
//! sum      = primary { ( "+" | "-" ) primary }
//! primary  = literal | "now" | attribute | call | "(" or ")"
//! attribute= "country" | "region" | "device_type" | "traits." NAME
//! call     = "count" "(" activity [ "," duration ] ")"
//!          | "last_seen" "(" [ activity ] ")"
//!          | "first_seen" "(" [ activity ] ")"
//! activity = NAME | STRING
//! literal  = STRING | NUMBER | "true" | "false" | duration
//! duration = INTEGER ( "s" | "m" | "h" | "d" | "w" )
//! NAME     = [A-Za-z_][A-Za-z0-9_.:-]*      STRING = "…" with \" and \\ escapes
//! ```
//!
//! Keywords are lower case; `#` starts a comment to the end of the line. A NUMBER is
//! `digits[.digits]`, and `-` directly before a number literal makes it negative. In an
//! expression `-` is always the minus operator (`now-7d` is `now - 7d`); names with `-`
//! are written as activities (`count(sign-up)`). Comparisons do not chain.
//!
//! # Meaning
//!
//! As RULES.md: a comparison with null (a missing attribute, trait or time, or a trait
//! of another type) is false, `!=` included; `not` of it is true. Types: number
//! (integers and decimals mix), string, boolean (only `==`/`!=`), time (`now`,
//! `last_seen`, `first_seen`, moved by durations), duration. A mismatch visible in the
//! text is refused with line and column. Strings order by bytes.
//!
//! # Precision
//!
//! `count(a)`, `last_seen`, `first_seen`, attributes and traits are exact.
//! `count(a, w)` is kept in buckets (see `state`): an event within 1 h of the window's
//! edge (`now - w`) may be counted either way for windows up to 48 h, within 1 day for
//! longer windows. `count(a, w) == 0`, `<= 0`, `< 1` and `!= 0`, `> 0`, `>= 1` (either
//! operand order) are exact: they are answered from `last_seen(a)`. Events dated after
//! `now` count from the moment they are due.
//!
//! # Next change
//!
//! [`next_change`] returns an instant at or before the first one at which any rule's
//! value changes without a new event; see its module for the bound on early wake-ups.
//!
//! # Example
//!
//! ```
//! use uss::domain::{Event, Timestamp};
//! use uss::rules::{compile, next_change, Limits, UserState};
//!
//! let limits = Limits::default();
//! let rule = compile("count(page_viewed) >= 1 and last_seen() < now - 7d", &limits)?;
//! let now = Timestamp::parse("2026-11-01T00:00:00Z")?;
//! let mut state = UserState::default();
//! state.apply(&Event::new("page_viewed", now), now, limits.max_window_ms);
//! assert!(!rule.eval(&state, now));
//! let flip = next_change([&rule], &state, now).expect("time alone flips it");
//! assert_eq!(flip, Timestamp::parse("2026-11-08T00:00:00.001Z")?);
//! assert!(rule.eval(&state, flip));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
mod compile;
mod error;
mod eval;
mod ir;
mod lexer;
mod next_change;
mod parser;
mod print;
mod reads;
mod state;

use std::fmt;

use crate::domain::{Timestamp, DAY_MS};

pub use ast::{ArithOp, Attribute, CmpOp, Expr, ExprKind, Literal, Spanned};
pub use error::{RuleError, Span};
pub use ir::Attr;
pub use next_change::next_change;
pub use parser::parse;
pub use reads::Reads;
pub use state::{ActivityStats, Stamped, UserState, SHORT_WINDOW_MS};

/// The limits a rule is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest rule text, in characters.
    pub max_chars: usize,
    /// Most syntax-tree nodes.
    pub max_nodes: usize,
    /// Deepest nesting of parentheses and `not`.
    pub max_depth: usize,
    /// Longest window of `count(a, w)`, in milliseconds; also how long state keeps buckets.
    pub max_window_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_chars: 4096,
            max_nodes: 256,
            max_depth: 32,
            max_window_ms: 90 * DAY_MS,
        }
    }
}

/// A checked rule, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Rule {
    source: Box<str>,
    ast: Expr,
    cond: ir::Cond,
    reads: Reads,
}

/// Parses and checks `source`; the error names the first problem with line and column.
pub fn compile(source: &str, limits: &Limits) -> Result<Rule, RuleError> {
    let ast = parse(source, limits)?;
    let cond = compile::lower(&ast, source, limits)?;
    let reads = Reads::of(&cond);
    Ok(Rule {
        source: source.into(),
        ast,
        cond,
        reads,
    })
}

impl Rule {
    /// Returns whether the rule holds for `state` at `now`.
    pub fn eval(&self, state: &UserState, now: Timestamp) -> bool {
        eval::holds(&self.cond, state, now)
    }

    /// Returns what the rule reads.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }

    /// Returns the text the rule was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Returns the syntax tree.
    pub fn ast(&self) -> &Expr {
        &self.ast
    }
}

impl fmt::Display for Rule {
    /// Writes the canonical form of the rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ast.fmt(f)
    }
}

#[cfg(test)]
mod tests;
