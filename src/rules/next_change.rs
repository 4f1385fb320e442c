//! Computes the earliest instant after `now` at which any rule could change value
//! with no new event.
//!
//! Guarantee: for every `t` in `(now, next)`, every rule has the value it has at `now`
//! (given no new event), so waking at `next` never misses a flip. `next` may be a
//! spurious wake-up, but each one is one of these bounded causes:
//! - an event kept aside (dated in the future) becomes due: once per such event;
//! - a time comparison between a state time and `now` reaches its boundary: exact for
//!   `<`, `<=`, `>`, `>=`; `==` and `!=` wake at the instant they become true and the
//!   next millisecond, when they become false again;
//! - a windowed count loses its oldest bucket: at most once per hour per (activity,
//!   window) for windows up to 48 h, once per day for longer ones;
//! - an exact "any event in the window" test expires: once per latest event.
//!
//! Every candidate is strictly after `now`, so a caller that re-evaluates at `next` and
//! asks again always makes progress: there is no busy loop.

use crate::domain::Timestamp;

use super::ast::CmpOp;
use super::eval::instant;
use super::ir::{Cond, TimeBase, Value};
use super::state::UserState;
use super::Rule;

/// Returns the earliest instant after `now` at which any of `rules` could change value
/// for `state` without a new event, or `None` if none ever can.
pub fn next_change<'a>(
    rules: impl IntoIterator<Item = &'a Rule>,
    state: &UserState,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut earliest = Earliest { now, best: None };
    earliest.offer(state.next_pending(now));
    for rule in rules {
        earliest.cond(&rule.cond, state);
    }
    earliest.best
}

struct Earliest {
    now: Timestamp,
    best: Option<Timestamp>,
}

impl Earliest {
    fn offer(&mut self, candidate: Option<Timestamp>) {
        if let Some(t) = candidate.filter(|t| *t > self.now) {
            self.best = Some(self.best.map_or(t, |b| b.min(t)));
        }
    }

    fn cond(&mut self, cond: &Cond, state: &UserState) {
        match cond {
            Cond::Const(_) => {}
            Cond::And(items) | Cond::Or(items) => {
                for item in items {
                    self.cond(item, state);
                }
            }
            Cond::Not(inner) => self.cond(inner, state),
            Cond::Time { op, lhs, rhs } => {
                // Normalised to `now OP y`, with `y` the fixed side minus now's offset.
                let (op, moving, fixed) = match (&lhs.base, &rhs.base) {
                    (TimeBase::Now, TimeBase::Now) => return,
                    (TimeBase::Now, _) => (*op, lhs, rhs),
                    (_, TimeBase::Now) => (op.mirrored(), rhs, lhs),
                    _ => return,
                };
                if let Some(fixed_at) = instant(fixed, state, self.now) {
                    let y = fixed_at.add_millis(moving.offset.saturating_neg());
                    let after = y.add_millis(1);
                    match op {
                        CmpOp::Lt | CmpOp::Ge => self.offer(Some(y)),
                        CmpOp::Le | CmpOp::Gt => self.offer(Some(after)),
                        CmpOp::Eq | CmpOp::Ne => {
                            self.offer(Some(y));
                            self.offer(Some(after));
                        }
                    }
                }
            }
            Cond::Compare { lhs, rhs, .. } => {
                self.value(lhs, state);
                self.value(rhs, state);
            }
            Cond::In { lhs, .. } | Cond::Truthy(lhs) => self.value(lhs, state),
            Cond::Active {
                activity, window, ..
            } => {
                let last = state.last_seen(Some(activity), self.now);
                self.offer(last.map(|t| t.add_millis(*window)));
            }
        }
    }

    fn value(&mut self, value: &Value, state: &UserState) {
        match value {
            Value::Count {
                activity,
                window: Some(window),
            } => self.offer(state.next_departure(activity, *window, self.now)),
            Value::Sum(first, rest) => {
                self.value(first, state);
                for (_, term) in rest {
                    self.value(term, state);
                }
            }
            Value::Count { window: None, .. }
            | Value::Lit(_)
            | Value::Attr(_)
            | Value::Trait(_) => {}
        }
    }
}
