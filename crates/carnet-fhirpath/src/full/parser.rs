//! Pratt parser for the full grammar (FHIRPath N1 precedence).

use super::ast::{E, Func, Op, Var};
use super::value::{Dec, Temporal};
use crate::ParseError;
use crate::lexer::{Token, tokenize};

pub(crate) fn parse(src: &str) -> Result<E, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        len: src.len(),
    };
    let expr = p.expr(0)?;
    match p.peek() {
        None => Ok(expr),
        Some(_) => Err(p.error("unexpected trailing input")),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    len: usize,
}

enum Infix {
    Bin(Op),
    Is,
    As,
}

/// Binding powers, loosest first: implies, or/xor, and, in/contains, equality,
/// comparison, union, is/as, additive, multiplicative.
fn infix(tok: &Token) -> Option<(u8, Infix)> {
    use Infix::Bin;
    Some(match tok {
        Token::Ident(k) => match k.as_str() {
            "implies" => (1, Bin(Op::Implies)),
            "or" => (2, Bin(Op::Or)),
            "xor" => (2, Bin(Op::Xor)),
            "and" => (3, Bin(Op::And)),
            "in" => (4, Bin(Op::In)),
            "contains" => (4, Bin(Op::Contains)),
            "is" => (8, Infix::Is),
            "as" => (8, Infix::As),
            "div" => (10, Bin(Op::IntDiv)),
            "mod" => (10, Bin(Op::Mod)),
            _ => return None,
        },
        Token::Op(op) => match *op {
            "=" => (5, Bin(Op::Eq)),
            "!=" => (5, Bin(Op::Ne)),
            "~" => (5, Bin(Op::Equiv)),
            "!~" => (5, Bin(Op::NotEquiv)),
            "<" => (6, Bin(Op::Lt)),
            ">" => (6, Bin(Op::Gt)),
            "<=" => (6, Bin(Op::Le)),
            ">=" => (6, Bin(Op::Ge)),
            "|" => (7, Bin(Op::Union)),
            "+" => (9, Bin(Op::Add)),
            "-" => (9, Bin(Op::Sub)),
            "&" => (9, Bin(Op::Concat)),
            "*" => (10, Bin(Op::Mul)),
            "/" => (10, Bin(Op::Div)),
            _ => return None,
        },
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        tok
    }

    fn error(&self, msg: &str) -> ParseError {
        let at = self.tokens.get(self.pos).map_or(self.len, |(o, _)| *o);
        ParseError::new(at, msg)
    }

    fn expect(&mut self, want: &Token) -> Result<(), ParseError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {want:?}")))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<E, ParseError> {
        let mut lhs = self.unary()?;
        while let Some((prec, op)) = self.peek().and_then(infix) {
            if prec <= min_prec {
                break;
            }
            self.pos += 1;
            lhs = match op {
                Infix::Bin(op) => E::Bin(op, Box::new(lhs), Box::new(self.expr(prec)?)),
                Infix::Is => E::Is(Box::new(lhs), self.type_spec()?),
                Infix::As => E::As(Box::new(lhs), self.type_spec()?),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<E, ParseError> {
        match self.peek() {
            Some(Token::Op("-")) => {
                self.pos += 1;
                let inner = self.unary()?;
                Ok(match inner {
                    E::Int(i) => E::Int(-i),
                    E::Dec(d) => E::Dec(d.neg()),
                    E::Quantity(d, u) => E::Quantity(d.neg(), u),
                    other => E::Neg(Box::new(other)),
                })
            }
            Some(Token::Op("+")) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<E, ParseError> {
        let mut expr = self.term()?;
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    let name = self.name()?;
                    expr = self.invocation(expr, name)?;
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    let index = self.expr(0)?;
                    self.expect(&Token::RBracket)?;
                    expr = E::Indexer(Box::new(expr), Box::new(index));
                }
                _ => return Ok(expr),
            }
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Ident(n) | Token::Quoted(n)) => Ok(n),
            _ => {
                self.pos -= 1;
                Err(self.error("expected a name"))
            }
        }
    }

    fn term(&mut self) -> Result<E, ParseError> {
        let Some(tok) = self.next() else {
            return Err(self.error("unexpected end of expression"));
        };
        match tok {
            Token::Ident(n) if n == "true" || n == "false" => Ok(E::Bool(n == "true")),
            Token::Ident(n) | Token::Quoted(n) => self.invocation(E::Input, n),
            Token::Str(s) => Ok(E::Str(s)),
            Token::Num(n) => self.number(&n),
            Token::Temporal(t) => self.temporal(&t),
            Token::Env(n) => Ok(E::Var(match n.as_str() {
                "context" => Var::Context,
                "resource" => Var::Resource,
                "rootResource" => Var::RootResource,
                "ucum" => Var::Ucum,
                "sct" => Var::Sct,
                "loinc" => Var::Loinc,
                _ => Var::Other(n),
            })),
            Token::Special(n) => match n.as_str() {
                "this" => Ok(E::This),
                "index" => Ok(E::Index),
                "total" => Ok(E::Total),
                _ => {
                    self.pos -= 1;
                    Err(self.error("unknown special variable"))
                }
            },
            Token::LBrace => {
                self.expect(&Token::RBrace)?;
                Ok(E::Empty)
            }
            Token::LParen => {
                let inner = self.expr(0)?;
                self.expect(&Token::RParen)?;
                Ok(inner)
            }
            _ => {
                self.pos -= 1;
                Err(self.error("unexpected token"))
            }
        }
    }

    /// A number, or a quantity when a unit (string or calendar keyword) follows.
    fn number(&mut self, text: &str) -> Result<E, ParseError> {
        let dec = Dec::parse(text).ok_or_else(|| self.error("bad number"))?;
        let unit = match self.peek() {
            Some(Token::Str(u)) => Some(u.clone()),
            Some(Token::Ident(u)) if calendar_unit(u) => Some(u.clone()),
            _ => None,
        };
        if let Some(unit) = unit {
            self.pos += 1;
            return Ok(E::Quantity(dec, unit));
        }
        if text.contains('.') {
            return Ok(E::Dec(dec));
        }
        match text.parse::<i64>() {
            Ok(i) => Ok(E::Int(i)),
            Err(_) => Ok(E::Dec(dec)),
        }
    }

    fn temporal(&mut self, text: &str) -> Result<E, ParseError> {
        let parsed = match text.strip_prefix('T') {
            Some(time) => Temporal::parse_time(time),
            None => Temporal::parse_date_time(text),
        };
        parsed.map(E::Temporal).ok_or_else(|| {
            ParseError::new(
                self.tokens.get(self.pos - 1).map_or(0, |t| t.0),
                "bad date/time literal",
            )
        })
    }

    /// A member access, or a function call when `(` follows the name.
    fn invocation(&mut self, focus: E, name: String) -> Result<E, ParseError> {
        if self.peek() != Some(&Token::LParen) {
            return Ok(E::Member(Box::new(focus), name));
        }
        let name_pos = self.pos - 1;
        self.pos += 1;
        let focus = Box::new(focus);
        if matches!(name.as_str(), "is" | "as" | "ofType") {
            let t = self.type_spec()?;
            self.expect(&Token::RParen)?;
            return Ok(match name.as_str() {
                "is" => E::Is(focus, t),
                "as" => E::As(focus, t),
                _ => E::OfType(focus, t),
            });
        }
        let Some(func) = Func::from_name(&name) else {
            self.pos = name_pos;
            return Err(self.error(&format!("function {name}() is not supported")));
        };
        let mut args = Vec::new();
        if self.peek() != Some(&Token::RParen) {
            loop {
                args.push(self.expr(0)?);
                if self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(&Token::RParen)?;
        if let Some(msg) = arity(func, args.len()) {
            self.pos = name_pos;
            return Err(self.error(&format!("{name}(): {msg}")));
        }
        // A literal pattern is checked now, so a profile's bad regex fails to compile
        // instead of failing every evaluation.
        if matches!(func, Func::Matches | Func::ReplaceMatches)
            && let Some(E::Str(pattern)) = args.first()
            && let Err(e) = regex::Regex::new(pattern)
        {
            self.pos = name_pos;
            return Err(self.error(&format!("{name}(): bad regular expression: {e}")));
        }
        Ok(E::Call(focus, func, args))
    }

    fn type_spec(&mut self) -> Result<String, ParseError> {
        let mut name = self.name()?;
        // Qualified names (`FHIR.Patient`, `System.String`): keep the namespace, it
        // decides between `System.String` and `FHIR.string`.
        if matches!(name.as_str(), "FHIR" | "System") && self.peek() == Some(&Token::Dot) {
            self.pos += 1;
            name = format!("{name}.{}", self.name()?);
        }
        Ok(name)
    }
}

fn calendar_unit(u: &str) -> bool {
    matches!(
        u,
        "year"
            | "years"
            | "month"
            | "months"
            | "week"
            | "weeks"
            | "day"
            | "days"
            | "hour"
            | "hours"
            | "minute"
            | "minutes"
            | "second"
            | "seconds"
            | "millisecond"
            | "milliseconds"
    )
}

/// Checks the argument count; `Some(reason)` when wrong.
fn arity(f: Func, n: usize) -> Option<&'static str> {
    use Func::*;
    let (min, max) = match f {
        Exists | Round | Join | LowBoundary | HighBoundary | ToQuantity | ConvertsToQuantity => (0, 1),
        Trace | Substring | Aggregate => (1, 2),
        Iif => (2, 3),
        ReplaceMatches | Replace => (2, 2),
        Where | All | Select | Repeat | Skip | Take | Intersect | Exclude | Union | Combine | SubsetOf | SupersetOf
        | Matches | StartsWith | EndsWith | Contains | IndexOf | Extension | MemberOf | ConformsTo | Split => (1, 1),
        _ => (0, 0),
    };
    if n < min {
        Some("too few arguments")
    } else if n > max {
        Some("too many arguments")
    } else {
        None
    }
}
