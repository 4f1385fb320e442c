//! Prints a syntax tree back as canonical rule text that parses to the same tree.
//!
//! The canonical text never nests deeper nor has more nodes than the source, but it
//! spaces operators (`a==b` prints `a == b`), so it may be longer than the source and,
//! for a source near the 4,096-character limit, longer than the limit.

use std::fmt::{self, Display, Formatter, Write};

use crate::domain::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};

use super::ast::{ArithOp, Attribute, Expr, ExprKind, Literal};

/// Binding strength; a child binding no tighter than its parent is parenthesized.
fn precedence(expr: &Expr) -> u8 {
    match expr.kind {
        ExprKind::Or(_) => 1,
        ExprKind::And(_) => 2,
        ExprKind::Not(_) => 3,
        ExprKind::Compare { .. } | ExprKind::In { .. } => 4,
        ExprKind::Sum { .. } => 5,
        _ => 6,
    }
}

fn child(f: &mut Formatter<'_>, parent: u8, expr: &Expr) -> fmt::Result {
    if precedence(expr) <= parent {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

fn joined(f: &mut Formatter<'_>, parent: u8, items: &[Expr], separator: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        child(f, parent, item)?;
    }
    Ok(())
}

/// Writes an activity as a bare name when it reads back as one, else as a string.
fn activity(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    let bare = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if bare {
        f.write_str(name)
    } else {
        string(f, name)
    }
}

fn string(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// Formats milliseconds as a duration literal in the largest exact unit up to days.
pub(crate) fn duration(millis: i64) -> String {
    let units = [(DAY_MS, 'd'), (HOUR_MS, 'h'), (MINUTE_MS, 'm')];
    for (scale, unit) in units {
        if millis % scale == 0 {
            return format!("{}{unit}", millis / scale);
        }
    }
    format!("{}s", millis / SECOND_MS)
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => string(f, s),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Duration(ms) => f.write_str(&duration(*ms)),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let own = precedence(self);
        match &self.kind {
            ExprKind::Or(items) => joined(f, own, items, " or "),
            ExprKind::And(items) => joined(f, own, items, " and "),
            ExprKind::Not(inner) => {
                // `not not x` needs no parentheses, and adding them would deepen the
                // nesting past what the parser allows for 32 `not`s.
                f.write_str("not ")?;
                if matches!(inner.kind, ExprKind::Not(_)) {
                    write!(f, "{inner}")
                } else {
                    child(f, own, inner)
                }
            }
            ExprKind::Compare { op, lhs, rhs } => {
                child(f, own, lhs)?;
                write!(f, " {} ", op.value.symbol())?;
                child(f, own, rhs)
            }
            ExprKind::In { lhs, list } => {
                child(f, own, lhs)?;
                f.write_str(" in [")?;
                joined(f, own, list, ", ")?;
                f.write_char(']')
            }
            ExprKind::Sum { first, rest } => {
                child(f, own, first)?;
                for (op, term) in rest {
                    f.write_str(if *op == ArithOp::Add { " + " } else { " - " })?;
                    child(f, own, term)?;
                }
                Ok(())
            }
            ExprKind::Literal(literal) => literal.fmt(f),
            ExprKind::Now => f.write_str("now"),
            ExprKind::Attribute(Attribute::Country) => f.write_str("country"),
            ExprKind::Attribute(Attribute::Region) => f.write_str("region"),
            ExprKind::Attribute(Attribute::DeviceType) => f.write_str("device_type"),
            ExprKind::Attribute(Attribute::Trait(name)) => write!(f, "traits.{name}"),
            ExprKind::Count {
                activity: a,
                window,
            } => {
                f.write_str("count(")?;
                activity(f, &a.value)?;
                if let Some(w) = window {
                    write!(f, ", {}", duration(w.value))?;
                }
                f.write_char(')')
            }
            ExprKind::LastSeen(a) | ExprKind::FirstSeen(a) => {
                let name = if matches!(self.kind, ExprKind::LastSeen(_)) {
                    "last_seen("
                } else {
                    "first_seen("
                };
                f.write_str(name)?;
                if let Some(a) = a {
                    activity(f, &a.value)?;
                }
                f.write_char(')')
            }
        }
    }
}
