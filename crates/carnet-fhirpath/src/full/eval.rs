//! Collection-based evaluation of the full grammar.

use std::cmp::Ordering;

use serde_json::Value;

use super::EvalError;
use super::ast::{E, Func, Op, Var};
use super::html;
use super::value::{Dec, INTEGER_TYPES, Item, Node, Prim, TKind, Temporal};
use crate::types;

pub(crate) type R<T> = Result<T, EvalError>;
type Coll<'a> = Vec<Item<'a>>;

fn err<T>(msg: impl Into<String>) -> R<T> {
    Err(EvalError { message: msg.into() })
}

/// What `%resource`, `%rootResource` and `%context` are during one evaluation.
pub(crate) struct Ctx<'a> {
    pub(crate) root: &'a Value,
    pub(crate) resource: &'a Value,
    pub(crate) context: Item<'a>,
}

/// `$this`, `$index` and `$total` of the innermost iteration.
#[derive(Clone)]
struct Env<'a> {
    this: Item<'a>,
    index: Option<i64>,
    total: Option<Coll<'a>>,
}

pub(crate) fn evaluate<'a>(e: &'a E, ctx: &Ctx<'a>) -> R<Coll<'a>> {
    let env = Env {
        this: ctx.context.clone(),
        index: None,
        total: None,
    };
    ctx.eval(e, std::slice::from_ref(&ctx.context), &env)
}

fn resource_node(v: &Value) -> Item<'_> {
    Item::node(v, v.get("resourceType").and_then(Value::as_str))
}

/// Singleton evaluation as a boolean: empty is `None`; one non-boolean item is true.
pub(crate) fn truth(c: &[Item<'_>]) -> R<Option<bool>> {
    match c {
        [] => Ok(None),
        [one] => Ok(Some(match one {
            Item::Bool(b) => *b,
            Item::Node(Node {
                value: Value::Bool(b), ..
            }) => *b,
            _ => true,
        })),
        _ => err(format!("expected a single boolean, got {} items", c.len())),
    }
}

fn single<'c, 'a>(c: &'c [Item<'a>], what: &str) -> R<Option<&'c Item<'a>>> {
    match c {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => err(format!("{what}: expected a single item, got {}", c.len())),
    }
}

fn boolean<'a>(b: bool) -> Coll<'a> {
    vec![Item::Bool(b)]
}

fn opt_bool<'a>(b: Option<bool>) -> Coll<'a> {
    b.map(boolean).unwrap_or_default()
}

/// The string value of a singleton (`None` when empty; an error when not a string).
fn string_of<'c>(c: &'c [Item<'_>], what: &str) -> R<Option<&'c str>> {
    match single(c, what)? {
        None => Ok(None),
        Some(i) => match i.prim() {
            Some(Prim::Str(s)) => Ok(Some(s)),
            _ => err(format!("{what}: expected a string")),
        },
    }
}

fn int_of(c: &[Item<'_>], what: &str) -> R<Option<i64>> {
    match single(c, what)? {
        None => Ok(None),
        Some(i) => match i.prim() {
            Some(Prim::Int(n)) => Ok(Some(n)),
            _ => err(format!("{what}: expected an integer")),
        },
    }
}

// ---- navigation ----

/// Emits a JSON property (and its `_name` companion) as nodes.
fn emit_property<'a>(value: Option<&'a Value>, ext: Option<&'a Value>, ty: Option<&'a str>, out: &mut Coll<'a>) {
    static NULL: Value = Value::Null;
    match (value, ext) {
        (Some(Value::Array(items)), ext) => {
            let exts = ext.and_then(Value::as_array);
            for (i, v) in items.iter().enumerate() {
                let e = exts.and_then(|e| e.get(i)).filter(|e| !e.is_null());
                if v.is_null() && e.is_none() {
                    continue;
                }
                out.push(typed(v, e, ty));
            }
        }
        (Some(Value::Null) | None, Some(Value::Array(exts))) => {
            for e in exts.iter().filter(|e| !e.is_null()) {
                out.push(typed(&NULL, Some(e), ty));
            }
        }
        (Some(Value::Null) | None, Some(e)) => out.push(typed(&NULL, Some(e), ty)),
        (Some(v), e) => out.push(typed(v, e, ty)),
        (None, None) => {}
    }
}

fn typed<'a>(value: &'a Value, ext: Option<&'a Value>, ty: Option<&'a str>) -> Item<'a> {
    let ty = ty.or_else(|| value.get("resourceType").and_then(Value::as_str));
    Item::Node(Node { value, ext, ty })
}

/// The names of R4's choice elements (`value[x]`...), sorted: only these take a type
/// suffix, so `response` does not match TestScript's `responseCode`.
const CHOICE_NAMES: &[&str] = &[
    "abatement",
    "additive",
    "age",
    "allowed",
    "amount",
    "answer",
    "asNeeded",
    "author",
    "born",
    "bounds",
    "characteristic",
    "chargeItem",
    "code",
    "collected",
    "content",
    "created",
    "date",
    "deceased",
    "defaultValue",
    "definingSubstance",
    "definition",
    "detail",
    "diagnosis",
    "dose",
    "doseNumber",
    "due",
    "effective",
    "entity",
    "event",
    "example",
    "fastingStatus",
    "fixed",
    "identified",
    "indication",
    "item",
    "legallyBinding",
    "location",
    "manufacturer",
    "maxValue",
    "medication",
    "minValue",
    "minimumVolume",
    "module",
    "multipleBirth",
    "name",
    "occurred",
    "occurrence",
    "offset",
    "onset",
    "participantEffective",
    "pattern",
    "performed",
    "probability",
    "procedure",
    "product",
    "quantity",
    "rate",
    "reported",
    "scheduled",
    "seriesDoses",
    "serviced",
    "source",
    "start",
    "statusReason",
    "studyEffective",
    "subject",
    "substance",
    "target",
    "time",
    "timing",
    "topic",
    "used",
    "value",
    "when",
];

/// Real (non-choice) R4 elements that read like a choice name plus a type (`sourceId`,
/// `effectiveTime`) and never are one. Keys that are a choice in one type and a plain
/// element in another (`valueQuantity`, `effectivePeriod`...) stay ambiguous without
/// element definitions; they are read as choices.
const NOT_CHOICE_KEYS: &[&str] = &[
    "answerValueSet",
    "dateRange",
    "dateTime",
    "effectiveDate",
    "effectiveTime",
    "locationCode",
    "procedureCode",
    "productCode",
    "sourceId",
    "sourceSignature",
    "targetId",
    "targetLocation",
    "usedCode",
];

fn is_choice_key(name: &str, key: &str) -> bool {
    CHOICE_NAMES.binary_search(&name).is_ok() && NOT_CHOICE_KEYS.binary_search(&key).is_err()
}

fn member<'a>(item: &Item<'a>, name: &str, out: &mut Coll<'a>) {
    let Item::Node(n) = item else { return };
    let Value::Object(obj) = n.value else {
        // A primitive's `id` and `extension` live in its `_name` companion.
        if matches!(name, "extension" | "id")
            && let Some(ext) = n.ext
        {
            emit_property(ext.get(name), None, None, out);
        }
        return;
    };
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        if let Some(rt) = obj.get("resourceType").and_then(Value::as_str) {
            // A leading type name (`Appointment.status`) filters by resource type.
            if rt == name || ((name == "Resource" || name == "DomainResource") && types::is_a(rt, name)) {
                out.push(item.clone());
            }
            return;
        }
        if n.ty == Some(name) {
            out.push(item.clone());
            return;
        }
    }
    let direct = obj.get(name);
    let underscore = if direct.is_none_or(|v| !v.is_object()) {
        obj.get(&format!("_{name}"))
    } else {
        None
    };
    if direct.is_some() || underscore.is_some() {
        return emit_property(direct, underscore, None, out);
    }
    // Choice element: `value` selects `valueQuantity` and learns its type from the
    // suffix; requiring a known type name stops `class` matching `classHistory`.
    for (key, v) in obj {
        let (key, is_ext) = match key.strip_prefix('_') {
            Some(k) => (k, true),
            None => (key.as_str(), false),
        };
        if let Some(suffix) = key.strip_prefix(name)
            && let Some(t) = types::choice_suffix_type(suffix)
            && is_choice_key(name, key)
        {
            if is_ext {
                if !obj.contains_key(key) {
                    emit_property(None, Some(v), Some(t), out);
                }
            } else {
                emit_property(Some(v), obj.get(&format!("_{key}")), Some(t), out);
            }
        }
    }
}

fn children<'a>(item: &Item<'a>, out: &mut Coll<'a>) {
    let Item::Node(n) = item else { return };
    match n.value {
        Value::Object(obj) => {
            for (key, v) in obj {
                if key == "resourceType" {
                    continue;
                }
                if let Some(base) = key.strip_prefix('_') {
                    if !obj.contains_key(base) {
                        emit_property(None, Some(v), choice_type(base), out);
                    }
                    continue;
                }
                let ext = if v.is_object() {
                    None
                } else {
                    obj.get(&format!("_{key}"))
                };
                emit_property(Some(v), ext, choice_type(key), out);
            }
        }
        _ => {
            if let Some(Value::Object(ext)) = n.ext {
                for v in ext.values() {
                    emit_property(Some(v), None, None, out);
                }
            }
        }
    }
}

/// The type a key's choice suffix names, when it clearly is one (`valueQuantity`).
fn choice_type(key: &str) -> Option<&'static str> {
    // The longest choice name that prefixes the key (`multipleBirth` + `Boolean`).
    let name = CHOICE_NAMES
        .iter()
        .filter(|n| key.len() > n.len() && key.starts_with(*n))
        .max_by_key(|n| n.len())?;
    if !is_choice_key(name, key) {
        return None;
    }
    types::choice_suffix_type(&key[name.len()..])
}

fn descendants<'a>(input: &[Item<'a>], out: &mut Coll<'a>) {
    let mut frontier: Coll<'a> = Vec::new();
    for i in input {
        children(i, &mut frontier);
    }
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for i in &frontier {
            children(i, &mut next);
        }
        out.append(&mut frontier);
        frontier = next;
    }
}

// ---- types ----

const SYSTEM_TYPES: &[&str] = &[
    "Boolean", "Integer", "Decimal", "String", "Date", "DateTime", "Time", "Quantity",
];

/// Resolves a written type name to (namespace-free name, is System type).
fn split_type(name: &str) -> (&str, Option<bool>) {
    if let Some(n) = name.strip_prefix("System.") {
        (n, Some(true))
    } else if let Some(n) = name.strip_prefix("FHIR.") {
        (n, Some(false))
    } else {
        (name, None)
    }
}

const STRINGISH: &[&str] = &[
    "string",
    "code",
    "id",
    "uri",
    "url",
    "canonical",
    "markdown",
    "oid",
    "uuid",
    "base64Binary",
    "xhtml",
];

pub(crate) fn is_type(item: &Item<'_>, name: &str) -> bool {
    let (bare, ns) = split_type(name);
    match item {
        Item::Node(n) => {
            if ns == Some(true) {
                return match (bare, n.value) {
                    ("Boolean", Value::Bool(_)) => true,
                    ("String", Value::String(_)) => n.ty.is_none_or(|t| STRINGISH.contains(&t)),
                    _ => false,
                };
            }
            if let Some(actual) = n.ty {
                if actual == bare || types::is_a(actual, bare) {
                    return true;
                }
                // R4 definitions write `answer is Boolean`, `value.as(DateTime)`: a
                // FHIR primitive named with a capital first letter.
                return types::type_specifier(bare).is_some_and(|t| t == actual || types::is_a(actual, t));
            }
            let Some(wanted) = types::type_specifier(bare) else {
                return false;
            };
            // Untyped JSON: judged by the JSON kind, leniently for the string family
            // (the evaluator has no element definitions to tell a code from a uri).
            match n.value {
                Value::Bool(_) => wanted == "boolean",
                Value::Number(num) => {
                    let integral = !num.to_string().contains(['.', 'e', 'E']);
                    wanted == "decimal" || (integral && INTEGER_TYPES.contains(&wanted))
                }
                Value::String(s) => match wanted {
                    "date" | "dateTime" | "instant" => Temporal::parse_fhir(s).is_some(),
                    "time" => Temporal::parse_time(s).is_some(),
                    w => STRINGISH.contains(&w),
                },
                _ => false,
            }
        }
        other => {
            if ns == Some(false) {
                return false;
            }
            let Some(actual) = other.type_name() else { return false };
            actual.eq_ignore_ascii_case(bare) && SYSTEM_TYPES.iter().any(|s| s.eq_ignore_ascii_case(bare))
        }
    }
}

fn cast<'a>(item: &Item<'a>, name: &'a str) -> Item<'a> {
    match item {
        Item::Node(n) if n.ty.is_none() => {
            let (bare, _) = split_type(name);
            let ty = types::type_specifier(bare).unwrap_or(bare);
            Item::Node(Node { ty: Some(ty), ..*n })
        }
        other => other.clone(),
    }
}

// ---- equality and comparison ----

fn num_pair(a: &Prim<'_>, b: &Prim<'_>) -> Option<(Dec, Dec)> {
    let d = |p: &Prim<'_>| match p {
        Prim::Int(i) => Some(Dec::int(*i)),
        Prim::Dec(d) => Some(*d),
        _ => None,
    };
    Some((d(a)?, d(b)?))
}

/// A string read as a date/time to meet a date/time operand.
fn as_temporal(s: &str, like: &Temporal) -> Option<Temporal> {
    match like.kind {
        TKind::Time => Temporal::parse_time(s.strip_prefix('T').unwrap_or(s)),
        _ => Temporal::parse_fhir(s),
    }
}

/// FHIRPath `=` on two items: `None` when unknown (dates of different precisions,
/// quantities in different units).
pub(crate) fn item_eq(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && (x.value.is_object() || y.value.is_object())
    {
        return Some(json_eq(x.value, y.value));
    }
    let (Some(pa), Some(pb)) = (a.prim(), b.prim()) else {
        return Some(false);
    };
    prim_eq(&pa, &pb)
}

fn prim_eq(a: &Prim<'_>, b: &Prim<'_>) -> Option<bool> {
    if let Some((x, y)) = num_pair(a, b) {
        return Some(Dec::cmp(x, y) == Some(Ordering::Equal));
    }
    match (a, b) {
        (Prim::Bool(x), Prim::Bool(y)) => Some(x == y),
        (Prim::Str(x), Prim::Str(y)) => Some(x == y),
        (Prim::Temporal(x), Prim::Temporal(y)) => Temporal::compare(x, y).map(|o| o == Ordering::Equal),
        (Prim::Str(s), Prim::Temporal(t)) | (Prim::Temporal(t), Prim::Str(s)) => match as_temporal(s, t) {
            Some(st) => Temporal::compare(&st, t).map(|o| o == Ordering::Equal),
            None => Some(false),
        },
        (Prim::Quantity(x, u), Prim::Quantity(y, v)) => {
            if units_equal(u, v) {
                Some(Dec::cmp(*x, *y) == Some(Ordering::Equal))
            } else {
                None
            }
        }
        _ => Some(false),
    }
}

/// Calendar keywords and their UCUM codes are the same unit for seconds and below.
fn units_equal(a: &str, b: &str) -> bool {
    fn canon(u: &str) -> &str {
        match u {
            "second" | "seconds" => "s",
            "millisecond" | "milliseconds" => "ms",
            "minute" | "minutes" => "min",
            "hour" | "hours" => "h",
            "day" | "days" => "d",
            "week" | "weeks" => "wk",
            "month" | "months" => "mo",
            "year" | "years" => "a",
            "" => "1",
            other => other,
        }
    }
    canon(a) == canon(b)
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Dec::parse(&x.to_string()), Dec::parse(&y.to_string())) {
            (Some(x), Some(y)) => Dec::cmp(x, y) == Some(Ordering::Equal),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

pub(crate) fn item_equiv(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && (x.value.is_object() || y.value.is_object())
    {
        return json_eq(x.value, y.value);
    }
    let (Some(pa), Some(pb)) = (a.prim(), b.prim()) else {
        return false;
    };
    if let Some((x, y)) = num_pair(&pa, &pb) {
        return Dec::equivalent(x, y);
    }
    match (&pa, &pb) {
        (Prim::Str(x), Prim::Str(y)) => normalize_ws(x) == normalize_ws(y),
        (Prim::Temporal(_), _) | (_, Prim::Temporal(_)) => prim_eq(&pa, &pb) == Some(true),
        (Prim::Quantity(x, u), Prim::Quantity(y, v)) => units_equal(u, v) && Dec::equivalent(*x, *y),
        _ => prim_eq(&pa, &pb) == Some(true),
    }
}

fn coll_equiv(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b.iter().enumerate().find(|(i, y)| !used[*i] && item_equiv(x, y));
        match found {
            Some((i, _)) => {
                used[i] = true;
                true
            }
            None => false,
        }
    })
}

fn looks_temporal(s: &str) -> Option<Temporal> {
    Temporal::parse_fhir(s)
}

/// Ordering of two singletons; `None` when incomparable (precision, units).
pub(crate) fn compare(a: &Item<'_>, b: &Item<'_>) -> R<Option<Ordering>> {
    let (Some(pa), Some(pb)) = (a.prim(), b.prim()) else {
        return err("cannot compare these values");
    };
    if let Some((x, y)) = num_pair(&pa, &pb) {
        return Ok(Dec::cmp(x, y));
    }
    Ok(match (&pa, &pb) {
        // Untyped JSON strings that both read as dates (Period.start <= Period.end)
        // compare as dates; other strings compare by code point.
        (Prim::Str(x), Prim::Str(y)) => match (looks_temporal(x), looks_temporal(y)) {
            (Some(tx), Some(ty)) => Temporal::compare(&tx, &ty),
            _ => Some(x.cmp(y)),
        },
        (Prim::Temporal(x), Prim::Temporal(y)) => Temporal::compare(x, y),
        (Prim::Str(s), Prim::Temporal(t)) => match as_temporal(s, t) {
            Some(st) => Temporal::compare(&st, t),
            None => return err(format!("cannot compare '{s}' with a date")),
        },
        (Prim::Temporal(t), Prim::Str(s)) => match as_temporal(s, t) {
            Some(st) => Temporal::compare(t, &st),
            None => return err(format!("cannot compare a date with '{s}'")),
        },
        (Prim::Quantity(x, u), Prim::Quantity(y, v)) => {
            if units_equal(u, v) {
                Dec::cmp(*x, *y)
            } else {
                None
            }
        }
        _ => return err("cannot compare values of different types"),
    })
}

fn contains_item(c: &[Item<'_>], x: &Item<'_>) -> bool {
    c.iter().any(|y| item_eq(x, y) == Some(true))
}

fn distinct<'a>(c: Coll<'a>) -> Coll<'a> {
    let mut out: Coll<'a> = Vec::with_capacity(c.len());
    for x in c {
        if !contains_item(&out, &x) {
            out.push(x);
        }
    }
    out
}

// ---- conversions ----

fn to_string_prim(p: &Prim<'_>) -> String {
    match p {
        Prim::Bool(b) => b.to_string(),
        Prim::Int(i) => i.to_string(),
        Prim::Dec(d) => d.to_string(),
        Prim::Str(s) => (*s).to_owned(),
        Prim::Temporal(t) => t.to_string(),
        Prim::Quantity(v, u) => format!("{v} '{u}'"),
    }
}

fn to_string_item(i: &Item<'_>) -> Option<String> {
    // A JSON date keeps its own text (`toString()` must not reformat it).
    if let Item::Node(Node {
        value: Value::String(s),
        ..
    }) = i
    {
        return Some(s.clone());
    }
    i.prim().map(|p| to_string_prim(&p))
}

fn to_integer(p: &Prim<'_>) -> Option<i64> {
    match p {
        Prim::Int(i) => Some(*i),
        Prim::Bool(b) => Some(i64::from(*b)),
        Prim::Str(s) => {
            let t = s.strip_prefix('+').unwrap_or(s);
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok()
        }
        _ => None,
    }
}

fn to_decimal(p: &Prim<'_>) -> Option<Dec> {
    match p {
        Prim::Int(i) => Some(Dec::int(*i)),
        Prim::Dec(d) => Some(*d),
        Prim::Bool(b) => Some(Dec::int(i64::from(*b))),
        Prim::Str(s) if !s.contains(['e', 'E']) && !s.is_empty() => Dec::parse(s),
        _ => None,
    }
}

fn to_boolean(p: &Prim<'_>) -> Option<bool> {
    match p {
        Prim::Bool(b) => Some(*b),
        Prim::Int(1) => Some(true),
        Prim::Int(0) => Some(false),
        Prim::Dec(d) if Dec::cmp(*d, Dec::int(1)) == Some(Ordering::Equal) => Some(true),
        Prim::Dec(d) if d.m == 0 => Some(false),
        Prim::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_temporal(p: &Prim<'_>, kind: TKind) -> Option<Temporal> {
    let t = match p {
        Prim::Temporal(t) => *t,
        Prim::Str(s) => match kind {
            TKind::Time => Temporal::parse_time(s.strip_prefix('T').unwrap_or(s))?,
            _ => Temporal::parse_date_time(s)?,
        },
        _ => return None,
    };
    match (kind, t.kind) {
        (TKind::Time, TKind::Time) => Some(t),
        (TKind::Time, _) | (_, TKind::Time) => None,
        (TKind::Date, _) => Some(Temporal {
            kind: TKind::Date,
            prec: t.prec.min(3),
            tz: None,
            has_millis: false,
            ..t
        }),
        (TKind::DateTime, _) => Some(Temporal {
            kind: TKind::DateTime,
            ..t
        }),
    }
}

fn to_quantity(p: &Prim<'_>) -> Option<(Dec, String)> {
    match p {
        Prim::Quantity(v, u) => Some((*v, (*u).to_owned())),
        Prim::Int(i) => Some((Dec::int(*i), "1".to_owned())),
        Prim::Dec(d) => Some((*d, "1".to_owned())),
        Prim::Str(s) => {
            let s = s.trim();
            let (num, rest) = s.split_once(' ').unwrap_or((s, ""));
            let v = Dec::parse(num)?;
            let rest = rest.trim();
            let unit = if rest.is_empty() {
                "1".to_owned()
            } else if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                u.to_owned()
            } else {
                rest.to_owned()
            };
            Some((v, unit))
        }
        _ => None,
    }
}

fn now_parts() -> (Temporal, Temporal) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let millis = i64::try_from(secs).unwrap_or(0);
    let days = millis.div_euclid(86_400_000);
    let rem = millis.rem_euclid(86_400_000);
    let base = Temporal::parse_date_time("1970-01-01").unwrap_or(Temporal {
        kind: TKind::Date,
        parts: [1970, 1, 1, 0, 0, 0],
        millis: 0,
        has_millis: false,
        prec: 3,
        tz: None,
    });
    let date = add_days(&base, days);
    let rem = i32::try_from(rem).unwrap_or(0);
    let now = Temporal {
        kind: TKind::DateTime,
        parts: [
            date.parts[0],
            date.parts[1],
            date.parts[2],
            rem / 3_600_000,
            rem / 60_000 % 60,
            rem / 1000 % 60,
        ],
        millis: u32::try_from(rem % 1000).unwrap_or(0),
        has_millis: true,
        prec: 6,
        tz: Some(0),
    };
    (date, now)
}

fn add_days(t: &Temporal, days: i64) -> Temporal {
    let temp = Temporal {
        kind: TKind::DateTime,
        prec: 5,
        tz: Some(0),
        ..*t
    };
    // Reuse the UTC normalisation: shifting the offset by whole days moves the date.
    let minutes = days.saturating_mul(1440);
    let shifted = Temporal {
        tz: Some(i32::try_from(-minutes).unwrap_or(0)),
        ..temp
    };
    let mut out = shifted.utc();
    out.kind = t.kind;
    out.prec = t.prec;
    out.tz = t.tz;
    out
}

/// Date arithmetic with a calendar quantity (`@2020-01-31 + 1 month`).
fn temporal_add(t: &Temporal, q: Dec, unit: &str, sign: i64) -> R<Temporal> {
    let Some(n) = q.as_int() else {
        return err("date arithmetic needs a whole number of units");
    };
    let n = n * sign;
    let mut out = *t;
    match unit {
        "year" | "years" | "a" => out.parts[0] += i32::try_from(n).unwrap_or(0),
        "month" | "months" | "mo" => {
            let total = i64::from(out.parts[0]) * 12 + i64::from(out.parts[1] - 1) + n;
            out.parts[0] = i32::try_from(total.div_euclid(12)).unwrap_or(0);
            out.parts[1] = i32::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
        }
        "week" | "weeks" | "wk" => return Ok(add_days(t, n * 7)),
        "day" | "days" | "d" => return Ok(add_days(t, n)),
        "hour" | "hours" | "h" | "minute" | "minutes" | "min" | "second" | "seconds" | "s" => {
            let per = match unit {
                "hour" | "hours" | "h" => 3600,
                "minute" | "minutes" | "min" => 60,
                _ => 1,
            };
            let secs = i64::from(t.parts[3]) * 3600 + i64::from(t.parts[4]) * 60 + i64::from(t.parts[5]) + n * per;
            let days = secs.div_euclid(86_400);
            let rem = i32::try_from(secs.rem_euclid(86_400)).unwrap_or(0);
            let mut shifted = if t.kind == TKind::Time { *t } else { add_days(t, days) };
            shifted.parts[3] = rem / 3600;
            shifted.parts[4] = rem / 60 % 60;
            shifted.parts[5] = rem % 60;
            return Ok(shifted);
        }
        _ => return err(format!("cannot add '{unit}' to a date")),
    }
    // Clamp the day to the month's length (Jan 31 + 1 month = Feb 28/29).
    let dim = days_in_month(out.parts[0], out.parts[1]);
    if out.parts[2] > dim {
        out.parts[2] = dim;
    }
    Ok(out)
}

fn days_in_month(y: i32, m: i32) -> i32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// ---- evaluation ----

impl<'a> Ctx<'a> {
    fn eval(&self, e: &'a E, input: &[Item<'a>], env: &Env<'a>) -> R<Coll<'a>> {
        Ok(match e {
            E::Input => input.to_vec(),
            E::This => vec![env.this.clone()],
            E::Index => env.index.map(|i| vec![Item::Int(i)]).unwrap_or_default(),
            E::Total => env.total.clone().unwrap_or_default(),
            E::Var(v) => self.var(v)?,
            E::Empty => Vec::new(),
            E::Bool(b) => boolean(*b),
            E::Str(s) => vec![Item::Str(s.clone())],
            E::Int(i) => vec![Item::Int(*i)],
            E::Dec(d) => vec![Item::Dec(*d)],
            E::Temporal(t) => vec![Item::Temporal(*t)],
            E::Quantity(v, u) => vec![Item::Quantity(*v, u.clone())],
            E::Member(focus, name) => {
                let base = self.eval(focus, input, env)?;
                let mut out = Vec::new();
                for i in &base {
                    member(i, name, &mut out);
                }
                out
            }
            E::Indexer(focus, idx) => {
                let base = self.eval(focus, input, env)?;
                let i = self.eval(idx, std::slice::from_ref(&env.this), env)?;
                match int_of(&i, "[]")? {
                    Some(i) => usize::try_from(i)
                        .ok()
                        .and_then(|i| base.into_iter().nth(i))
                        .into_iter()
                        .collect(),
                    None => Vec::new(),
                }
            }
            E::Call(focus, f, args) => {
                let base = self.eval(focus, input, env)?;
                self.call(*f, base, args, env)?
            }
            E::Bin(op, a, b) => self.binary(*op, a, b, input, env)?,
            E::Neg(inner) => {
                let v = self.eval(inner, input, env)?;
                match single(&v, "unary -")? {
                    None => Vec::new(),
                    Some(i) => match i.prim() {
                        Some(Prim::Int(n)) => vec![Item::Int(-n)],
                        Some(Prim::Dec(d)) => vec![Item::Dec(d.neg())],
                        Some(Prim::Quantity(d, u)) => vec![Item::Quantity(d.neg(), u.to_owned())],
                        _ => return err("unary - needs a number"),
                    },
                }
            }
            E::Is(focus, t) => {
                let v = self.eval(focus, input, env)?;
                match single(&v, "is")? {
                    None => Vec::new(),
                    Some(i) => boolean(is_type(i, t)),
                }
            }
            // R4 definitions use `as` on collections (`descendants().as(canonical)`):
            // it filters like `ofType` rather than insisting on a singleton.
            E::As(focus, t) | E::OfType(focus, t) => {
                let v = self.eval(focus, input, env)?;
                v.iter().filter(|i| is_type(i, t)).map(|i| cast(i, t)).collect()
            }
        })
    }

    fn var(&self, v: &Var) -> R<Coll<'a>> {
        let s = |s: &str| vec![Item::Str(s.to_owned())];
        Ok(match v {
            Var::Context => vec![self.context.clone()],
            Var::Resource => vec![resource_node(self.resource)],
            Var::RootResource => vec![resource_node(self.root)],
            Var::Ucum => s("http://unitsofmeasure.org"),
            Var::Sct => s("http://snomed.info/sct"),
            Var::Loinc => s("http://loinc.org"),
            Var::Other(name) => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    s(&format!("http://hl7.org/fhir/ValueSet/{vs}"))
                } else if let Some(ext) = name.strip_prefix("ext-") {
                    s(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
                } else {
                    return err(format!("unknown variable %{name}"));
                }
            }
        })
    }

    /// Evaluates `arg` once per item with that item as `$this` (where, select, all...).
    fn each(
        &self,
        input: &[Item<'a>],
        arg: &'a E,
        env: &Env<'a>,
        mut f: impl FnMut(usize, Coll<'a>) -> R<bool>,
    ) -> R<()> {
        for (i, item) in input.iter().enumerate() {
            let inner = Env {
                this: item.clone(),
                index: i64::try_from(i).ok(),
                total: env.total.clone(),
            };
            let r = self.eval(arg, std::slice::from_ref(item), &inner)?;
            if !f(i, r)? {
                break;
            }
        }
        Ok(())
    }

    /// An argument that is not an iteration: evaluated against the enclosing `$this`.
    fn arg(&self, arg: &'a E, env: &Env<'a>) -> R<Coll<'a>> {
        self.eval(arg, std::slice::from_ref(&env.this), env)
    }

    fn str_arg(&self, args: &'a [E], n: usize, env: &Env<'a>, what: &str) -> R<Option<String>> {
        let Some(a) = args.get(n) else { return Ok(None) };
        let v = self.arg(a, env)?;
        Ok(string_of(&v, what)?.map(str::to_owned))
    }

    fn int_arg(&self, args: &'a [E], n: usize, env: &Env<'a>, what: &str) -> R<Option<i64>> {
        let Some(a) = args.get(n) else { return Ok(None) };
        let v = self.arg(a, env)?;
        int_of(&v, what)
    }

    #[allow(clippy::too_many_lines)]
    fn call(&self, f: Func, input: Coll<'a>, args: &'a [E], env: &Env<'a>) -> R<Coll<'a>> {
        use Func::*;
        Ok(match f {
            Empty => boolean(input.is_empty()),
            Exists => match args.first() {
                None => boolean(!input.is_empty()),
                Some(crit) => {
                    let mut any = false;
                    self.each(&input, crit, env, |_, r| {
                        any = truth(&r)? == Some(true);
                        Ok(!any)
                    })?;
                    boolean(any)
                }
            },
            All => {
                let mut all = true;
                if let Some(crit) = args.first() {
                    self.each(&input, crit, env, |_, r| {
                        all = truth(&r)? == Some(true);
                        Ok(all)
                    })?;
                }
                boolean(all)
            }
            AllTrue | AnyTrue | AllFalse | AnyFalse => {
                let mut vals = Vec::with_capacity(input.len());
                for i in &input {
                    vals.push(truth(std::slice::from_ref(i))? == Some(true));
                }
                boolean(match f {
                    AllTrue => vals.iter().all(|b| *b),
                    AnyTrue => vals.iter().any(|b| *b),
                    AllFalse => vals.iter().all(|b| !*b),
                    _ => vals.iter().any(|b| !*b),
                })
            }
            SubsetOf | SupersetOf => {
                let other = self.arg(&args[0], env)?;
                let (small, big) = if f == SubsetOf {
                    (&input, &other)
                } else {
                    (&other, &input)
                };
                boolean(small.iter().all(|x| contains_item(big, x)))
            }
            Count => vec![Item::Int(i64::try_from(input.len()).unwrap_or(i64::MAX))],
            Distinct => distinct(input),
            IsDistinct => {
                let n = input.len();
                boolean(distinct(input).len() == n)
            }
            Where => {
                let mut out = Vec::new();
                self.each(&input, &args[0], env, |i, r| {
                    if truth(&r)? == Some(true) {
                        out.push(input[i].clone());
                    }
                    Ok(true)
                })?;
                out
            }
            Select => {
                let mut out = Vec::new();
                self.each(&input, &args[0], env, |_, mut r| {
                    out.append(&mut r);
                    Ok(true)
                })?;
                out
            }
            Repeat => {
                let mut out: Coll<'a> = Vec::new();
                let mut frontier = input;
                // Bounded: a projection that keeps producing equal items stops once
                // nothing new appears.
                while !frontier.is_empty() {
                    let mut next = Vec::new();
                    self.each(&frontier, &args[0], env, |_, r| {
                        for x in r {
                            if !contains_item(&out, &x) && !contains_item(&next, &x) {
                                next.push(x);
                            }
                        }
                        Ok(true)
                    })?;
                    out.extend(next.iter().cloned());
                    frontier = next;
                }
                out
            }
            Aggregate => {
                let mut total = match args.get(1) {
                    Some(init) => self.arg(init, env)?,
                    None => Vec::new(),
                };
                for (i, item) in input.iter().enumerate() {
                    let inner = Env {
                        this: item.clone(),
                        index: i64::try_from(i).ok(),
                        total: Some(total),
                    };
                    total = self.eval(&args[0], std::slice::from_ref(item), &inner)?;
                }
                total
            }
            Single => match input.len() {
                0 | 1 => input,
                n => return err(format!("single(): {n} items")),
            },
            First => input.into_iter().take(1).collect(),
            Last => input.into_iter().last().into_iter().collect(),
            Tail => input.into_iter().skip(1).collect(),
            Skip | Take => {
                let n = self.int_arg(args, 0, env, "skip/take")?.unwrap_or(0);
                let n = usize::try_from(n.max(0)).unwrap_or(0);
                if f == Skip {
                    input.into_iter().skip(n).collect()
                } else {
                    input.into_iter().take(n).collect()
                }
            }
            Intersect => {
                let other = self.arg(&args[0], env)?;
                distinct(input.into_iter().filter(|x| contains_item(&other, x)).collect())
            }
            Exclude => {
                let other = self.arg(&args[0], env)?;
                input.into_iter().filter(|x| !contains_item(&other, x)).collect()
            }
            Union => {
                let mut all = input;
                all.extend(self.arg(&args[0], env)?);
                distinct(all)
            }
            Combine => {
                let mut all = input;
                all.extend(self.arg(&args[0], env)?);
                all
            }
            Iif => {
                // The criterion and branches see the focus as their input
                // (`member.resolve().iif(empty(), ...)` in R4's ctm-1).
                let c = self.eval(&args[0], &input, env)?;
                let chosen = if truth(&c)? == Some(true) {
                    args.get(1)
                } else {
                    args.get(2)
                };
                match chosen {
                    Some(branch) => self.eval(branch, &input, env)?,
                    None => Vec::new(),
                }
            }
            Not => opt_bool(truth(&input)?.map(|b| !b)),
            HasValue => boolean(matches!(
                single(&input, "hasValue()").ok().flatten(),
                Some(Item::Node(Node {
                    value: Value::Bool(_) | Value::Number(_) | Value::String(_),
                    ..
                }))
            )),
            GetValue => match single(&input, "getValue()")? {
                Some(Item::Node(n)) if !n.value.is_object() && !n.value.is_null() => vec![Item::Node(*n)],
                _ => Vec::new(),
            },
            Children => {
                let mut out = Vec::new();
                for i in &input {
                    children(i, &mut out);
                }
                out
            }
            Descendants => {
                let mut out = Vec::new();
                descendants(&input, &mut out);
                out
            }
            Trace => input,
            Matches | ReplaceMatches | StartsWith | EndsWith | Contains | IndexOf | Replace | Split => {
                self.string_fn(f, &input, args, env)?
            }
            Length | Lower | Upper | ToChars | Trim => {
                let Some(s) = string_of(&input, "string function")? else {
                    return Ok(Vec::new());
                };
                match f {
                    Length => vec![Item::Int(i64::try_from(s.chars().count()).unwrap_or(0))],
                    Lower => vec![Item::Str(s.to_lowercase())],
                    Upper => vec![Item::Str(s.to_uppercase())],
                    Trim => vec![Item::Str(s.trim().to_owned())],
                    _ => s.chars().map(|c| Item::Str(c.to_string())).collect(),
                }
            }
            Substring => {
                let Some(s) = string_of(&input, "substring()")? else {
                    return Ok(Vec::new());
                };
                let Some(start) = self.int_arg(args, 0, env, "substring()")? else {
                    return Ok(Vec::new());
                };
                let chars: Vec<char> = s.chars().collect();
                let Ok(start) = usize::try_from(start) else {
                    return Ok(Vec::new());
                };
                if start >= chars.len() {
                    return Ok(Vec::new());
                }
                let len = match self.int_arg(args, 1, env, "substring()")? {
                    Some(l) => usize::try_from(l.max(0)).unwrap_or(0),
                    None => chars.len(),
                };
                vec![Item::Str(chars[start..].iter().take(len).collect())]
            }
            Join => {
                let sep = self.str_arg(args, 0, env, "join()")?.unwrap_or_default();
                let mut parts = Vec::new();
                for i in &input {
                    parts.push(to_string_item(i).unwrap_or_default());
                }
                vec![Item::Str(parts.join(&sep))]
            }
            ToString => match single(&input, "toString()")? {
                Some(i) => to_string_item(i).map(Item::Str).into_iter().collect(),
                None => Vec::new(),
            },
            ToInteger | ToDecimal | ToBoolean | ToDate | ToDateTime | ToTime | ToQuantity => {
                let Some(p) = single(&input, "conversion")?.and_then(Item::prim) else {
                    return Ok(Vec::new());
                };
                let out = match f {
                    ToInteger => to_integer(&p).map(Item::Int),
                    ToDecimal => to_decimal(&p).map(Item::Dec),
                    ToBoolean => to_boolean(&p).map(Item::Bool),
                    ToDate => to_temporal(&p, TKind::Date).map(Item::Temporal),
                    ToDateTime => to_temporal(&p, TKind::DateTime).map(Item::Temporal),
                    ToTime => to_temporal(&p, TKind::Time).map(Item::Temporal),
                    _ => to_quantity(&p).map(|(v, u)| Item::Quantity(v, u)),
                };
                out.into_iter().collect()
            }
            ConvertsToString | ConvertsToInteger | ConvertsToDecimal | ConvertsToBoolean | ConvertsToDate
            | ConvertsToDateTime | ConvertsToTime | ConvertsToQuantity => {
                let Some(item) = single(&input, "convertsTo")? else {
                    return Ok(Vec::new());
                };
                let Some(p) = item.prim() else {
                    return Ok(boolean(false));
                };
                boolean(match f {
                    ConvertsToString => true,
                    ConvertsToInteger => to_integer(&p).is_some(),
                    ConvertsToDecimal => to_decimal(&p).is_some(),
                    ConvertsToBoolean => to_boolean(&p).is_some(),
                    ConvertsToDate => to_temporal(&p, TKind::Date).is_some(),
                    ConvertsToDateTime => to_temporal(&p, TKind::DateTime).is_some(),
                    ConvertsToTime => to_temporal(&p, TKind::Time).is_some(),
                    _ => to_quantity(&p).is_some(),
                })
            }
            Extension => {
                let Some(url) = self.str_arg(args, 0, env, "extension()")? else {
                    return Ok(Vec::new());
                };
                let mut exts = Vec::new();
                for i in &input {
                    member(i, "extension", &mut exts);
                }
                exts.retain(
                    |e| matches!(e, Item::Node(n) if n.value.get("url").and_then(Value::as_str) == Some(url.as_str())),
                );
                exts
            }
            Resolve => input.iter().filter_map(|i| self.resolve(i)).collect(),
            Today => vec![Item::Temporal(now_parts().0)],
            Now => vec![Item::Temporal(now_parts().1)],
            TimeOfDay => {
                let mut t = now_parts().1;
                t.kind = TKind::Time;
                t.tz = None;
                vec![Item::Temporal(t)]
            }
            // No terminology server here: membership is unknown, hence empty.
            MemberOf => Vec::new(),
            ConformsTo => {
                let Some(url) = self.str_arg(args, 0, env, "conformsTo()")? else {
                    return Ok(Vec::new());
                };
                let Some(item) = single(&input, "conformsTo()")? else {
                    return Ok(Vec::new());
                };
                match url.strip_prefix("http://hl7.org/fhir/StructureDefinition/") {
                    Some(base) => boolean(item.type_name().is_some_and(|t| t == base || types::is_a(t, base))),
                    // Other profiles need a profile registry the evaluator lacks: unknown.
                    None => Vec::new(),
                }
            }
            HtmlChecks => match single(&input, "htmlChecks()")? {
                Some(i) => match i.prim() {
                    Some(Prim::Str(s)) => boolean(html::check(s).is_ok()),
                    _ => boolean(false),
                },
                None => Vec::new(),
            },
            LowBoundary | HighBoundary => {
                let Some(p) = single(&input, "boundary")?.and_then(Item::prim) else {
                    return Ok(Vec::new());
                };
                boundary(&p, f == HighBoundary).into_iter().collect()
            }
            Abs | Ceiling | Floor | Round | Truncate => {
                let Some(p) = single(&input, "math")?.and_then(Item::prim) else {
                    return Ok(Vec::new());
                };
                let places = self.int_arg(args, 0, env, "round()")?.unwrap_or(0);
                math(f, &p, u32::try_from(places.max(0)).unwrap_or(0))?
                    .into_iter()
                    .collect()
            }
        })
    }

    fn string_fn(&self, f: Func, input: &[Item<'a>], args: &'a [E], env: &Env<'a>) -> R<Coll<'a>> {
        use Func::*;
        let Some(s) = string_of(input, "string function")? else {
            return Ok(Vec::new());
        };
        let Some(a) = self.str_arg(args, 0, env, "string function")? else {
            return Ok(Vec::new());
        };
        Ok(match f {
            Matches => boolean(regex(&a)?.is_match(s)),
            ReplaceMatches => {
                let Some(with) = self.str_arg(args, 1, env, "replaceMatches()")? else {
                    return Ok(Vec::new());
                };
                vec![Item::Str(regex(&a)?.replace_all(s, with.as_str()).into_owned())]
            }
            StartsWith => boolean(s.starts_with(a.as_str())),
            EndsWith => boolean(s.ends_with(a.as_str())),
            Contains => boolean(s.contains(a.as_str())),
            IndexOf => vec![Item::Int(
                s.find(a.as_str())
                    .map_or(-1, |b| i64::try_from(s[..b].chars().count()).unwrap_or(-1)),
            )],
            Replace => {
                let Some(with) = self.str_arg(args, 1, env, "replace()")? else {
                    return Ok(Vec::new());
                };
                vec![Item::Str(s.replace(a.as_str(), &with))]
            }
            _ => s.split(a.as_str()).map(|p| Item::Str(p.to_owned())).collect(),
        })
    }

    /// Without a resolver: a `#id` reference is the contained resource; a reference in
    /// a Bundle is the entry with that fullUrl; otherwise the Reference itself, typed
    /// by the resource type its string names (enough for `is`/`ofType`).
    fn resolve(&self, item: &Item<'a>) -> Option<Item<'a>> {
        let Item::Node(n) = item else { return None };
        let reference = match n.value {
            Value::String(s) => s.as_str(),
            v => v.get("reference").and_then(Value::as_str)?,
        };
        if let Some(id) = reference.strip_prefix('#') {
            for container in [self.resource, self.root] {
                let found = container
                    .get("contained")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|c| c.get("id").and_then(Value::as_str) == Some(id));
                if let Some(c) = found {
                    return Some(resource_node(c));
                }
            }
            return None;
        }
        if self.root.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
            let entries = self.root.get("entry").and_then(Value::as_array).into_iter().flatten();
            for e in entries {
                let full = e.get("fullUrl").and_then(Value::as_str).unwrap_or("");
                if !full.is_empty() && (full == reference || full.ends_with(&format!("/{reference}"))) {
                    return e.get("resource").map(resource_node);
                }
            }
        }
        let ty = crate::reference_type(reference)?;
        Some(Item::Node(Node { ty: Some(ty), ..*n }))
    }

    fn binary(&self, op: Op, a: &'a E, b: &'a E, input: &[Item<'a>], env: &Env<'a>) -> R<Coll<'a>> {
        let ev = |e: &'a E| self.eval(e, input, env);
        match op {
            Op::And => {
                let x = truth(&ev(a)?)?;
                if x == Some(false) {
                    return Ok(boolean(false));
                }
                let y = truth(&ev(b)?)?;
                Ok(opt_bool(match (x, y) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }))
            }
            Op::Or => {
                let x = truth(&ev(a)?)?;
                if x == Some(true) {
                    return Ok(boolean(true));
                }
                let y = truth(&ev(b)?)?;
                Ok(opt_bool(match (x, y) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }))
            }
            Op::Xor => {
                let (x, y) = (truth(&ev(a)?)?, truth(&ev(b)?)?);
                Ok(opt_bool(x.zip(y).map(|(x, y)| x != y)))
            }
            Op::Implies => {
                let x = truth(&ev(a)?)?;
                if x == Some(false) {
                    return Ok(boolean(true));
                }
                let y = truth(&ev(b)?)?;
                Ok(opt_bool(match (x, y) {
                    (_, Some(true)) => Some(true),
                    (Some(true), Some(false)) => Some(false),
                    _ => None,
                }))
            }
            Op::Union => {
                let mut all = ev(a)?;
                all.extend(ev(b)?);
                Ok(distinct(all))
            }
            Op::Eq | Op::Ne => {
                let (x, y) = (ev(a)?, ev(b)?);
                if x.is_empty() || y.is_empty() {
                    return Ok(Vec::new());
                }
                let eq = if x.len() == y.len() {
                    let mut all = Some(true);
                    for (p, q) in x.iter().zip(&y) {
                        match item_eq(p, q) {
                            Some(true) => {}
                            Some(false) => {
                                all = Some(false);
                                break;
                            }
                            None => all = None,
                        }
                    }
                    all
                } else {
                    Some(false)
                };
                Ok(opt_bool(eq.map(|e| e == (op == Op::Eq))))
            }
            Op::Equiv | Op::NotEquiv => {
                let (x, y) = (ev(a)?, ev(b)?);
                Ok(boolean(coll_equiv(&x, &y) == (op == Op::Equiv)))
            }
            Op::Lt | Op::Gt | Op::Le | Op::Ge => {
                let (x, y) = (ev(a)?, ev(b)?);
                let (Some(p), Some(q)) = (single(&x, "comparison")?, single(&y, "comparison")?) else {
                    return Ok(Vec::new());
                };
                Ok(opt_bool(compare(p, q)?.map(|o| match op {
                    Op::Lt => o == Ordering::Less,
                    Op::Gt => o == Ordering::Greater,
                    Op::Le => o != Ordering::Greater,
                    _ => o != Ordering::Less,
                })))
            }
            Op::In | Op::Contains => {
                let (x, y) = (ev(a)?, ev(b)?);
                let (needle, hay) = if op == Op::In { (x, y) } else { (y, x) };
                match single(&needle, "in/contains")? {
                    None => Ok(Vec::new()),
                    Some(n) => Ok(boolean(contains_item(&hay, n))),
                }
            }
            Op::Concat => {
                let (x, y) = (ev(a)?, ev(b)?);
                let s =
                    |c: &[Item<'_>]| -> R<String> { Ok(single(c, "&")?.and_then(to_string_item).unwrap_or_default()) };
                Ok(vec![Item::Str(s(&x)? + &s(&y)?)])
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::IntDiv | Op::Mod => {
                let (x, y) = (ev(a)?, ev(b)?);
                let (Some(p), Some(q)) = (single(&x, "arithmetic")?, single(&y, "arithmetic")?) else {
                    return Ok(Vec::new());
                };
                let (Some(p), Some(q)) = (p.prim(), q.prim()) else {
                    return err("arithmetic on non-primitive values");
                };
                arith(op, &p, &q)
            }
        }
    }
}

fn arith<'a>(op: Op, p: &Prim<'_>, q: &Prim<'_>) -> R<Coll<'a>> {
    if let (Prim::Int(x), Prim::Int(y)) = (p, q) {
        let r = match op {
            Op::Add => x.checked_add(*y),
            Op::Sub => x.checked_sub(*y),
            Op::Mul => x.checked_mul(*y),
            Op::IntDiv => x.checked_div(*y),
            Op::Mod => x.checked_rem(*y),
            _ => {
                return Ok(Dec::div(Dec::int(*x), Dec::int(*y))
                    .map(|d| vec![Item::Dec(d)])
                    .unwrap_or_default());
            }
        };
        return Ok(r.map(|r| vec![Item::Int(r)]).unwrap_or_default());
    }
    if let Some((x, y)) = num_pair(p, q) {
        let r = match op {
            Op::Add => Dec::add(x, y),
            Op::Sub => Dec::add(x, y.neg()),
            Op::Mul => Dec::mul(x, y),
            Op::Div => Dec::div(x, y),
            Op::IntDiv => {
                return Ok(Dec::div(x, y)
                    .and_then(|d| i64::try_from(d.truncate()).ok())
                    .map(|i| vec![Item::Int(i)])
                    .unwrap_or_default());
            }
            _ => Dec::div(x, y).and_then(|d| {
                let q = Dec {
                    m: d.truncate(),
                    scale: 0,
                };
                Dec::add(x, Dec::mul(q, y)?.neg())
            }),
        };
        return Ok(r.map(|d| vec![Item::Dec(d)]).unwrap_or_default());
    }
    match (op, p, q) {
        (Op::Add, Prim::Str(x), Prim::Str(y)) => Ok(vec![Item::Str(format!("{x}{y}"))]),
        (Op::Add | Op::Sub, Prim::Temporal(t), Prim::Quantity(v, u)) => {
            let sign = if op == Op::Add { 1 } else { -1 };
            Ok(vec![Item::Temporal(temporal_add(t, *v, u, sign)?)])
        }
        (Op::Add | Op::Sub, Prim::Quantity(x, u), Prim::Quantity(y, v)) if units_equal(u, v) => {
            let y = if op == Op::Add { *y } else { y.neg() };
            Ok(Dec::add(*x, y)
                .map(|d| vec![Item::Quantity(d, (*u).to_owned())])
                .unwrap_or_default())
        }
        (Op::Mul | Op::Div, Prim::Quantity(x, u), Prim::Int(_) | Prim::Dec(_)) => {
            let (_, y) = num_pair(&Prim::Int(0), q).unwrap_or((Dec::int(0), Dec::int(1)));
            let r = if op == Op::Mul {
                Dec::mul(*x, y)
            } else {
                Dec::div(*x, y)
            };
            Ok(r.map(|d| vec![Item::Quantity(d, (*u).to_owned())]).unwrap_or_default())
        }
        _ => err("unsupported operand types for arithmetic"),
    }
}

fn boundary<'a>(p: &Prim<'_>, high: bool) -> Option<Item<'a>> {
    match p {
        Prim::Int(i) => Some(Item::Int(*i)),
        Prim::Dec(d) => {
            // Half a unit of the last written digit either way, at 8 places.
            let half = Dec {
                m: 5,
                scale: d.scale + 1,
            };
            let b = if high {
                Dec::add(*d, half)
            } else {
                Dec::add(*d, half.neg())
            }?;
            Some(Item::Dec(b))
        }
        Prim::Temporal(t) => {
            let mut b = *t;
            let (lo, hi) = ([0, 1, 1, 0, 0, 0], [9999, 12, 31, 23, 59, 59]);
            for i in usize::from(t.prec)..6 {
                b.parts[i] = if high { hi[i] } else { lo[i] };
            }
            if high && t.prec < 3 && t.kind != TKind::Time {
                b.parts[2] = days_in_month(b.parts[0], b.parts[1]);
            }
            b.millis = if high { 999 } else { 0 };
            b.has_millis = b.kind != TKind::Date;
            b.prec = if b.kind == TKind::Date { 3 } else { 6 };
            Some(Item::Temporal(b))
        }
        _ => None,
    }
}

fn math<'a>(f: Func, p: &Prim<'_>, places: u32) -> R<Option<Item<'a>>> {
    let d = match p {
        Prim::Int(i) => {
            return Ok(Some(match f {
                Func::Abs => Item::Int(i.abs()),
                Func::Round => Item::Dec(Dec::int(*i)),
                _ => Item::Int(*i),
            }));
        }
        Prim::Dec(d) => *d,
        Prim::Quantity(v, u) if f == Func::Abs => {
            return Ok(Some(Item::Quantity(Dec { m: v.m.abs(), ..*v }, (*u).to_owned())));
        }
        _ => return err("math function needs a number"),
    };
    let int = |i: i128| i64::try_from(i).ok().map(Item::Int);
    Ok(match f {
        Func::Abs => Some(Item::Dec(Dec { m: d.m.abs(), ..d })),
        Func::Ceiling => int(d.ceiling()),
        Func::Floor => int(d.floor()),
        Func::Truncate => int(d.truncate()),
        _ => Some(Item::Dec(d.round(places))),
    })
}

/// Compiles a FHIRPath regular expression; a cache keeps repeated invariants cheap.
fn regex(pattern: &str) -> R<regex::Regex> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<String, regex::Regex>> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        if let Some(r) = c.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = regex::RegexBuilder::new(pattern)
            .dot_matches_new_line(true)
            .build()
            .map_err(|e| EvalError {
                message: format!("bad regular expression {pattern:?}: {e}"),
            })?;
        let mut cache = c.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), r.clone());
        Ok(r)
    })
}

/// How a result item reads in tests and diagnostics.
pub(crate) fn display(i: &Item<'_>) -> String {
    match i {
        Item::Node(n) if n.value.is_object() || n.value.is_array() => n.value.to_string(),
        other => to_string_item(other).unwrap_or_else(|| "null".to_owned()),
    }
}
