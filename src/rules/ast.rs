//! The syntax tree of a rule, exactly as written, with the source span of every node.

use super::error::Span;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// Returns the operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Returns the operator that gives the same answer with its operands swapped.
    pub fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }
}

/// `+` or `-` in a sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
}

/// A user attribute a rule can read.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// `country`
    Country,
    /// `region`
    Region,
    /// `device_type`
    DeviceType,
    /// `traits.NAME`
    Trait(String),
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `"text"`
    String(String),
    /// `12`, `2.5`, `-3`
    Number(f64),
    /// `true` / `false`
    Bool(bool),
    /// `30d`, in milliseconds.
    Duration(i64),
}

/// A value with the span it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// The source it was parsed from.
    pub span: Span,
}

/// The kinds of node.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `a or b or …` (two or more).
    Or(Vec<Expr>),
    /// `a and b and …` (two or more).
    And(Vec<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `lhs OP rhs`
    Compare {
        /// The operator and where it stands.
        op: Spanned<CmpOp>,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `lhs in [literal, …]`
    In {
        /// The value looked up.
        lhs: Box<Expr>,
        /// The literals (each an `Expr` of kind `Literal`).
        list: Vec<Expr>,
    },
    /// `first (+|-) term …`, left-associative.
    Sum {
        /// The first term.
        first: Box<Expr>,
        /// The following terms with their operators.
        rest: Vec<(ArithOp, Expr)>,
    },
    /// A literal.
    Literal(Literal),
    /// `now`
    Now,
    /// An attribute or trait.
    Attribute(Attribute),
    /// `count(activity[, window])`
    Count {
        /// The activity type.
        activity: Spanned<String>,
        /// The window in milliseconds, when given.
        window: Option<Spanned<i64>>,
    },
    /// `last_seen([activity])`
    LastSeen(Option<Spanned<String>>),
    /// `first_seen([activity])`
    FirstSeen(Option<Spanned<String>>),
}

impl Expr {
    /// Returns a copy with every span zeroed, for comparing trees by meaning only.
    pub fn without_spans(&self) -> Expr {
        let bare = |s: &Spanned<String>| Spanned {
            value: s.value.clone(),
            span: Span::default(),
        };
        let kind = match &self.kind {
            ExprKind::Or(items) => ExprKind::Or(items.iter().map(Expr::without_spans).collect()),
            ExprKind::And(items) => ExprKind::And(items.iter().map(Expr::without_spans).collect()),
            ExprKind::Not(inner) => ExprKind::Not(Box::new(inner.without_spans())),
            ExprKind::Compare { op, lhs, rhs } => ExprKind::Compare {
                op: Spanned {
                    value: op.value,
                    span: Span::default(),
                },
                lhs: Box::new(lhs.without_spans()),
                rhs: Box::new(rhs.without_spans()),
            },
            ExprKind::In { lhs, list } => ExprKind::In {
                lhs: Box::new(lhs.without_spans()),
                list: list.iter().map(Expr::without_spans).collect(),
            },
            ExprKind::Sum { first, rest } => ExprKind::Sum {
                first: Box::new(first.without_spans()),
                rest: rest
                    .iter()
                    .map(|(op, e)| (*op, e.without_spans()))
                    .collect(),
            },
            ExprKind::Count { activity, window } => ExprKind::Count {
                activity: bare(activity),
                window: window.as_ref().map(|w| Spanned {
                    value: w.value,
                    span: Span::default(),
                }),
            },
            ExprKind::LastSeen(a) => ExprKind::LastSeen(a.as_ref().map(bare)),
            ExprKind::FirstSeen(a) => ExprKind::FirstSeen(a.as_ref().map(bare)),
            other => other.clone(),
        };
        Expr {
            kind,
            span: Span::default(),
        }
    }
}
