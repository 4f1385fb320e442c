//! Type-checks a syntax tree against RULES.md and lowers it to the evaluable form.
//!
//! Types: number (integer and decimal mix), string, boolean, time, duration, and the
//! dynamic type of a trait (string, number or boolean, known only at run time). A
//! mismatch visible in the text is an error; a trait of the wrong type at run time is
//! treated like null (every comparison with it is false).

use super::ast::{ArithOp, Attribute, CmpOp, Expr, ExprKind, Literal, Spanned};
use super::error::{RuleError, Span};
use super::ir::{Attr, Cond, Lit, TimeBase, TimeTerm, Value};
use super::print::duration;
use super::Limits;

/// The static type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Number,
    String,
    Bool,
    Duration,
    Dynamic,
}

/// A lowered expression of any type.
enum Operand {
    Cond(Cond),
    Time(TimeTerm),
    Value(Value, Ty),
}

/// Lowers a parsed rule; `source` is only used to place errors.
pub(crate) fn lower(expr: &Expr, source: &str, limits: &Limits) -> Result<Cond, RuleError> {
    let lowering = Lowering { source, limits };
    lowering.condition(expr)
}

struct Lowering<'s, 'l> {
    source: &'s str,
    limits: &'l Limits,
}

/// Names what an expression is, for error messages.
fn what(expr: &Expr, operand: &Operand) -> &'static str {
    match (&expr.kind, operand) {
        (ExprKind::Count { .. }, _) => "a count",
        (_, Operand::Cond(_)) => "a condition",
        (_, Operand::Time(_)) => "a time",
        (_, Operand::Value(_, ty)) => match ty {
            Ty::Number => "a number",
            Ty::String => "a string",
            Ty::Bool => "true/false",
            Ty::Duration => "a duration",
            Ty::Dynamic => "a trait",
        },
    }
}

fn literal_ty(literal: &Lit) -> Ty {
    match literal {
        Lit::Str(_) => Ty::String,
        Lit::Num(_) => Ty::Number,
        Lit::Bool(_) => Ty::Bool,
        Lit::Dur(_) => Ty::Duration,
    }
}

fn lower_literal(literal: &Literal) -> Lit {
    match literal {
        Literal::String(s) => Lit::Str(s.as_str().into()),
        Literal::Number(n) => Lit::Num(*n),
        Literal::Bool(b) => Lit::Bool(*b),
        Literal::Duration(ms) => Lit::Dur(*ms),
    }
}

fn name(activity: &Option<Spanned<String>>) -> Option<Box<str>> {
    activity.as_ref().map(|a| a.value.as_str().into())
}

impl Lowering<'_, '_> {
    fn error(&self, span: Span, message: impl Into<String>) -> RuleError {
        RuleError::at(self.source, span, message)
    }

    fn condition(&self, expr: &Expr) -> Result<Cond, RuleError> {
        let operand = self.operand(expr)?;
        match operand {
            Operand::Cond(cond) => Ok(cond),
            Operand::Value(Value::Lit(Lit::Bool(b)), _) => Ok(Cond::Const(b)),
            Operand::Value(value, Ty::Bool | Ty::Dynamic) => Ok(Cond::Truthy(value)),
            other => {
                let found = what(expr, &other);
                let hint = match found {
                    "a count" => " — compare it, like count(page_viewed) >= 1",
                    "a time" => " — compare it, like last_seen() < now - 7d",
                    _ => " — compare it with == or another operator",
                };
                Err(self.error(
                    expr.span,
                    format!("expected a condition, found {found}{hint}"),
                ))
            }
        }
    }

    fn operand(&self, expr: &Expr) -> Result<Operand, RuleError> {
        let conditions = |items: &[Expr]| -> Result<Vec<Cond>, RuleError> {
            items.iter().map(|item| self.condition(item)).collect()
        };
        Ok(match &expr.kind {
            ExprKind::Or(items) => Operand::Cond(Cond::Or(conditions(items)?)),
            ExprKind::And(items) => Operand::Cond(Cond::And(conditions(items)?)),
            ExprKind::Not(inner) => Operand::Cond(Cond::Not(Box::new(self.condition(inner)?))),
            ExprKind::Compare { op, lhs, rhs } => Operand::Cond(self.compare(op, lhs, rhs)?),
            ExprKind::In { lhs, list } => Operand::Cond(self.member(lhs, list)?),
            ExprKind::Sum { first, rest } => self.sum(first, rest)?,
            ExprKind::Literal(literal) => {
                let lit = lower_literal(literal);
                let ty = literal_ty(&lit);
                Operand::Value(Value::Lit(lit), ty)
            }
            ExprKind::Now => Operand::Time(TimeTerm {
                base: TimeBase::Now,
                offset: 0,
            }),
            ExprKind::Attribute(attribute) => match attribute {
                Attribute::Country => Operand::Value(Value::Attr(Attr::Country), Ty::String),
                Attribute::Region => Operand::Value(Value::Attr(Attr::Region), Ty::String),
                Attribute::DeviceType => Operand::Value(Value::Attr(Attr::DeviceType), Ty::String),
                Attribute::Trait(t) => Operand::Value(Value::Trait(t.as_str().into()), Ty::Dynamic),
            },
            ExprKind::Count { activity, window } => {
                let window = window.as_ref().map(|w| self.window(w)).transpose()?;
                let activity = activity.value.as_str().into();
                Operand::Value(Value::Count { activity, window }, Ty::Number)
            }
            ExprKind::LastSeen(activity) => Operand::Time(TimeTerm {
                base: TimeBase::LastSeen(name(activity)),
                offset: 0,
            }),
            ExprKind::FirstSeen(activity) => Operand::Time(TimeTerm {
                base: TimeBase::FirstSeen(name(activity)),
                offset: 0,
            }),
        })
    }

    fn window(&self, window: &Spanned<i64>) -> Result<i64, RuleError> {
        if window.value <= 0 {
            return Err(self.error(window.span, "a window must be longer than 0s"));
        }
        if window.value > self.limits.max_window_ms {
            return Err(self.error(
                window.span,
                format!(
                    "window {} is longer than the longest allowed window, {}",
                    duration(window.value),
                    duration(self.limits.max_window_ms)
                ),
            ));
        }
        Ok(window.value)
    }

    fn sum(&self, first: &Expr, rest: &[(ArithOp, Expr)]) -> Result<Operand, RuleError> {
        let mut acc = self.operand(first)?;
        let mut acc_expr = first;
        for (op, term_expr) in rest {
            let term = self.operand(term_expr)?;
            acc = self.add(acc, acc_expr, *op, term, term_expr)?;
            acc_expr = term_expr;
        }
        Ok(acc)
    }

    fn add(
        &self,
        acc: Operand,
        acc_expr: &Expr,
        op: ArithOp,
        term: Operand,
        term_expr: &Expr,
    ) -> Result<Operand, RuleError> {
        let signed = |ms: i64| {
            if op == ArithOp::Add {
                Some(ms)
            } else {
                ms.checked_neg()
            }
        };
        let too_long = || self.error(term_expr.span, "duration is too long");
        match (acc, term) {
            (Operand::Time(mut t), Operand::Value(Value::Lit(Lit::Dur(ms)), _)) => {
                t.offset = signed(ms)
                    .and_then(|d| t.offset.checked_add(d))
                    .ok_or_else(too_long)?;
                Ok(Operand::Time(t))
            }
            (Operand::Value(Value::Lit(Lit::Dur(ms)), _), Operand::Time(mut t))
                if op == ArithOp::Add =>
            {
                t.offset = t.offset.checked_add(ms).ok_or_else(too_long)?;
                Ok(Operand::Time(t))
            }
            (
                Operand::Value(Value::Lit(Lit::Dur(a)), _),
                Operand::Value(Value::Lit(Lit::Dur(b)), _),
            ) => {
                let total = signed(b)
                    .and_then(|b| a.checked_add(b))
                    .ok_or_else(too_long)?;
                Ok(Operand::Value(Value::Lit(Lit::Dur(total)), Ty::Duration))
            }
            (
                Operand::Value(a, Ty::Number | Ty::Dynamic),
                Operand::Value(b, Ty::Number | Ty::Dynamic),
            ) => {
                let sum = match a {
                    Value::Sum(first, mut rest) => {
                        rest.push((op, b));
                        Value::Sum(first, rest)
                    }
                    a => Value::Sum(Box::new(a), vec![(op, b)]),
                };
                Ok(Operand::Value(sum, Ty::Number))
            }
            (acc, term) => {
                let (left, right) = (what(acc_expr, &acc), what(term_expr, &term));
                let time_involved =
                    matches!(acc, Operand::Time(_)) || matches!(term, Operand::Time(_));
                let hint = if time_involved {
                    " — a time can only be moved by a duration, like now - 7d"
                } else {
                    ""
                };
                let message = match op {
                    ArithOp::Add => format!("cannot add {right} to {left}{hint}"),
                    ArithOp::Sub => format!("cannot subtract {right} from {left}{hint}"),
                };
                Err(self.error(term_expr.span, message))
            }
        }
    }

    fn compare(&self, op: &Spanned<CmpOp>, lhs: &Expr, rhs: &Expr) -> Result<Cond, RuleError> {
        let (left, right) = (self.operand(lhs)?, self.operand(rhs)?);
        let mismatch = |left: &Operand, right: &Operand| {
            self.error(
                op.span,
                format!(
                    "cannot compare {} with {}",
                    what(lhs, left),
                    what(rhs, right)
                ),
            )
        };
        match (left, right) {
            (Operand::Time(a), Operand::Time(b)) => Ok(Cond::Time {
                op: op.value,
                lhs: a,
                rhs: b,
            }),
            (Operand::Value(a, ta), Operand::Value(b, tb)) => {
                let compatible = ta == tb
                    || (ta == Ty::Dynamic && tb != Ty::Duration)
                    || (tb == Ty::Dynamic && ta != Ty::Duration);
                if !compatible {
                    return Err(mismatch(&Operand::Value(a, ta), &Operand::Value(b, tb)));
                }
                let ordered = !matches!(op.value, CmpOp::Eq | CmpOp::Ne);
                if ordered && (ta == Ty::Bool || tb == Ty::Bool) {
                    return Err(
                        self.error(op.span, "true/false can only be compared with == or !=")
                    );
                }
                Ok(exact_presence(op.value, &a, &b)
                    .or_else(|| exact_presence(op.value.mirrored(), &b, &a))
                    .unwrap_or(Cond::Compare {
                        op: op.value,
                        lhs: a,
                        rhs: b,
                    }))
            }
            (a, b) => Err(mismatch(&a, &b)),
        }
    }

    fn member(&self, lhs: &Expr, list: &[Expr]) -> Result<Cond, RuleError> {
        let (value, ty) = match self.operand(lhs)? {
            Operand::Value(value, ty) if ty != Ty::Duration => (value, ty),
            other => {
                return Err(self.error(
                    lhs.span,
                    format!(
                        "cannot look up {} in a list — use a string, number or true/false",
                        what(lhs, &other)
                    ),
                ))
            }
        };
        let mut set = Vec::with_capacity(list.len());
        for item in list {
            let ExprKind::Literal(literal) = &item.kind else {
                return Err(self.error(item.span, "a list holds only literal values"));
            };
            let lit = lower_literal(literal);
            let item_ty = literal_ty(&lit);
            if item_ty == Ty::Duration || (ty != Ty::Dynamic && item_ty != ty) {
                let item_what = what(item, &Operand::Value(Value::Lit(lit), item_ty));
                let lhs_what = what(lhs, &Operand::Value(value, ty));
                return Err(self.error(
                    item.span,
                    format!("cannot look for {lhs_what} among values like {item_what}"),
                ));
            }
            set.push(lit);
        }
        Ok(Cond::In { lhs: value, set })
    }
}

/// Recognises `count(a, w) OP k` forms that only ask whether any event is in the window.
fn exact_presence(op: CmpOp, count: &Value, other: &Value) -> Option<Cond> {
    let Value::Count {
        activity,
        window: Some(window),
    } = count
    else {
        return None;
    };
    let Value::Lit(Lit::Num(k)) = other else {
        return None;
    };
    let present = match (op, *k) {
        (CmpOp::Eq | CmpOp::Le, 0.0) | (CmpOp::Lt, 1.0) => false,
        (CmpOp::Ne | CmpOp::Gt, 0.0) | (CmpOp::Ge, 1.0) => true,
        _ => return None,
    };
    Some(Cond::Active {
        activity: activity.clone(),
        window: *window,
        present,
    })
}
