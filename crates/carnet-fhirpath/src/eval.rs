//! Streaming evaluation: every operator pushes its results into a callback, so a path
//! walks the resource without building intermediate collections.

use serde_json::Value;

use crate::ast::{BinaryOp, Expr, Function, Literal, TypeSpec};
use crate::types;

/// One item of a result: a borrowed JSON value and its FHIR type when known.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    /// Known from a choice suffix (`valueQuantity`), an `as`/`ofType`, a resource's
    /// `resourceType`, or (after `resolve()`) the type in the reference string.
    pub type_name: Option<&'static str>,
}

impl<'a> Node<'a> {
    pub fn new(value: &'a Value) -> Self {
        Node { value, type_name: None }
    }

    /// Same JSON value and same type: FHIRPath's identity, used to de-duplicate unions.
    fn same(&self, other: &Node<'_>) -> bool {
        std::ptr::eq(self.value, other.value) && self.type_name == other.type_name
    }
}

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

fn boolean<'a>(b: bool) -> Node<'a> {
    Node {
        value: if b { &TRUE } else { &FALSE },
        type_name: Some("boolean"),
    }
}

/// The root resource, typed by its `resourceType`.
fn root(resource: &Value) -> Node<'_> {
    let type_name = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .and_then(types::resource_type);
    Node {
        value: resource,
        type_name,
    }
}

type Sink<'s, 'a> = &'s mut dyn FnMut(Node<'a>);

impl Expr {
    /// Evaluates against a resource; union results are de-duplicated.
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Vec<Node<'a>> {
        self.evaluate_at(resource, root(resource))
    }

    /// Evaluates with `focus` as the context (e.g. a composite's component expression
    /// relative to the element the composite selected); `%resource` is `resource`.
    pub fn evaluate_at<'a>(&self, resource: &'a Value, focus: Node<'a>) -> Vec<Node<'a>> {
        let mut out: Vec<Node<'a>> = Vec::new();
        self.for_each_at(resource, focus, &mut |n| {
            if !out.iter().any(|o| o.same(&n)) {
                out.push(n);
            }
        });
        out
    }

    /// Streams the results without de-duplicating or allocating.
    pub fn for_each<'a>(&self, resource: &'a Value, f: &mut dyn FnMut(Node<'a>)) {
        self.for_each_at(resource, root(resource), f);
    }

    pub fn for_each_at<'a>(&self, resource: &'a Value, focus: Node<'a>, f: &mut dyn FnMut(Node<'a>)) {
        self.each(resource, focus, f);
    }

    fn each<'a>(&self, res: &'a Value, focus: Node<'a>, f: Sink<'_, 'a>) {
        match self {
            Expr::This => f(focus),
            Expr::Resource => f(root(res)),
            Expr::Literal(Literal::Boolean(b)) => f(boolean(*b)),
            // Other literals have no JSON value to borrow; they only matter as operands
            // of comparisons, which read them directly.
            Expr::Literal(_) => {}
            Expr::Member(inner, name) => inner.each(res, focus, &mut |n| member(n, name, f)),
            Expr::Index(inner, i) => {
                let mut seen = 0;
                inner.each(res, focus, &mut |n| {
                    if seen == *i {
                        f(n);
                    }
                    seen += 1;
                });
            }
            Expr::As(inner, t) => inner.each(res, focus, &mut |n| {
                if is_type(&n, t) {
                    f(Node {
                        value: n.value,
                        type_name: t.known.or(n.type_name),
                    });
                }
            }),
            Expr::Is(inner, t) => {
                if let Some(n) = singleton(inner, res, focus) {
                    f(boolean(is_type(&n, t)));
                }
            }
            Expr::Call(inner, func) => call(inner, func, res, focus, f),
            Expr::Binary(op, a, b) => binary(*op, a, b, res, focus, f),
        }
    }

    /// The expression in a boolean context: empty is `None`; a single non-boolean item
    /// counts as true (FHIRPath singleton evaluation).
    fn truth<'a>(&self, res: &'a Value, focus: Node<'a>) -> Option<bool> {
        singleton(self, res, focus).map(|n| n.value.as_bool().unwrap_or(true))
    }
}

/// The first item, if any (callers only need a singleton).
fn singleton<'a>(e: &Expr, res: &'a Value, focus: Node<'a>) -> Option<Node<'a>> {
    let mut first = None;
    e.each(res, focus, &mut |n| {
        if first.is_none() {
            first = Some(n);
        }
    });
    first
}

fn emit_flat<'a>(v: &'a Value, type_name: Option<&'static str>, f: Sink<'_, 'a>) {
    match v {
        Value::Array(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .for_each(|value| f(Node { value, type_name })),
        Value::Null => {}
        value => f(Node { value, type_name }),
    }
}

fn member<'a>(n: Node<'a>, name: &str, f: Sink<'_, 'a>) {
    let Value::Object(obj) = n.value else { return };
    if name.starts_with(|c: char| c.is_ascii_uppercase())
        && let Some(rt) = obj.get("resourceType").and_then(Value::as_str)
    {
        // A leading type name (`Observation.code`) filters the focus by resource type.
        if rt == name || ((name == "Resource" || name == "DomainResource") && types::is_a(rt, name)) {
            f(Node {
                value: n.value,
                type_name: n.type_name.or_else(|| types::resource_type(rt)),
            });
        }
        return;
    }
    if let Some(v) = obj.get(name) {
        return emit_flat(v, None, f);
    }
    // Choice element: `value` selects `valueQuantity` etc. and learns the type from the
    // suffix; requiring a known type name stops `class` matching `classHistory`.
    for (key, v) in obj {
        if let Some(suffix) = key.strip_prefix(name)
            && let Some(t) = types::choice_suffix_type(suffix)
        {
            emit_flat(v, Some(t), f);
        }
    }
}

fn is_type(n: &Node<'_>, t: &TypeSpec) -> bool {
    match (n.type_name, t.known) {
        (Some(actual), Some(wanted)) => types::is_a(actual, wanted),
        (Some(actual), None) => actual == t.name,
        // Untyped nodes: the JSON kind still identifies FHIRPath's primitive types.
        (None, Some(wanted)) => match n.value {
            Value::Bool(_) => wanted == "boolean",
            Value::String(_) => wanted == "string",
            _ => false,
        },
        (None, None) => false,
    }
}

fn call<'a>(inner: &Expr, func: &Function, res: &'a Value, focus: Node<'a>, f: Sink<'_, 'a>) {
    match func {
        Function::Where(crit) => inner.each(res, focus, &mut |n| {
            if crit.truth(res, n) == Some(true) {
                f(n);
            }
        }),
        Function::Exists(crit) => {
            let mut any = false;
            inner.each(res, focus, &mut |n| {
                any = any || crit.as_ref().is_none_or(|c| c.truth(res, n) == Some(true));
            });
            f(boolean(any));
        }
        Function::Empty => f(boolean(singleton(inner, res, focus).is_none())),
        Function::Not => {
            if let Some(b) = inner.truth(res, focus) {
                f(boolean(!b));
            }
        }
        Function::First => {
            if let Some(n) = singleton(inner, res, focus) {
                f(n);
            }
        }
        Function::Last => {
            let mut last = None;
            inner.each(res, focus, &mut |n| last = Some(n));
            if let Some(n) = last {
                f(n);
            }
        }
        Function::Resolve => inner.each(res, focus, &mut |n| {
            let target = n
                .value
                .get("reference")
                .and_then(Value::as_str)
                .and_then(reference_type);
            f(Node {
                value: n.value,
                type_name: target,
            });
        }),
        Function::Extension(url) => inner.each(res, focus, &mut |n| {
            member(n, "extension", &mut |e| {
                if e.value.get("url").and_then(Value::as_str) == Some(url.as_str()) {
                    f(Node {
                        value: e.value,
                        type_name: Some("Extension"),
                    });
                }
            })
        }),
        Function::HasValue => {
            let has =
                singleton(inner, res, focus).is_some_and(|n| !matches!(n.value, Value::Object(_) | Value::Array(_)));
            f(boolean(has));
        }
    }
}

/// The resource type named by a reference string: `Patient/1`, `Patient/1/_history/2`,
/// or an absolute URL ending in `Patient/1`.
pub fn reference_type(reference: &str) -> Option<&'static str> {
    let path = reference.find("/_history/").map_or(reference, |i| &reference[..i]);
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let type_name = parts.next()?;
    if id.is_empty() {
        return None;
    }
    types::resource_type(type_name)
}

fn binary<'a>(op: BinaryOp, a: &Expr, b: &Expr, res: &'a Value, focus: Node<'a>, f: Sink<'_, 'a>) {
    let logic = |x: Option<bool>, y: Option<bool>| -> Option<bool> {
        match op {
            BinaryOp::And => match (x, y) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            BinaryOp::Or => match (x, y) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            BinaryOp::Xor => Some(x? != y?),
            BinaryOp::Implies => match (x, y) {
                (Some(false), _) | (_, Some(true)) => Some(true),
                (Some(true), Some(false)) => Some(false),
                _ => None,
            },
            _ => None,
        }
    };
    match op {
        BinaryOp::Union => {
            a.each(res, focus, f);
            b.each(res, focus, f);
        }
        BinaryOp::Equals | BinaryOp::NotEquals => {
            if let Some(eq) = equals(a, b, res, focus) {
                f(boolean(eq == (op == BinaryOp::Equals)));
            }
        }
        _ => {
            if let Some(r) = logic(a.truth(res, focus), b.truth(res, focus)) {
                f(boolean(r));
            }
        }
    }
}

/// Collection equality; `None` (empty result) when either side is empty.
fn equals<'a>(a: &Expr, b: &Expr, res: &'a Value, focus: Node<'a>) -> Option<bool> {
    // The common shape is `path = 'literal'`: compare while streaming, no collection.
    if let Expr::Literal(lit) = b {
        return equals_literal(a, lit, res, focus);
    }
    if let Expr::Literal(lit) = a {
        return equals_literal(b, lit, res, focus);
    }
    let left = a.evaluate_at(res, focus);
    let right = b.evaluate_at(res, focus);
    if left.is_empty() || right.is_empty() {
        return None;
    }
    Some(left.len() == right.len() && left.iter().zip(&right).all(|(l, r)| values_equal(l.value, r.value)))
}

fn equals_literal<'a>(e: &Expr, lit: &Literal, res: &'a Value, focus: Node<'a>) -> Option<bool> {
    let mut count = 0usize;
    let mut eq = false;
    e.each(res, focus, &mut |n| {
        count += 1;
        eq = literal_equal(n.value, lit);
    });
    match count {
        0 => None,
        1 => Some(eq),
        _ => Some(false),
    }
}

fn literal_equal(v: &Value, lit: &Literal) -> bool {
    match (v, lit) {
        (Value::String(s), Literal::String(l)) => s == l,
        (Value::Bool(b), Literal::Boolean(l)) => b == l,
        (Value::Number(n), Literal::Number(l)) => decimal_equal(&n.to_string(), l),
        _ => false,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => decimal_equal(&x.to_string(), &y.to_string()),
        _ => a == b,
    }
}

fn decimal_equal(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}
