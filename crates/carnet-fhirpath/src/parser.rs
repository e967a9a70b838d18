//! Pratt parser from tokens to [`Expr`].

use crate::ast::{BinaryOp, Expr, Function, Literal, TypeSpec};
use crate::lexer::{Token, tokenize};
use crate::{ParseError, types};

pub fn parse(src: &str) -> Result<Expr, ParseError> {
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

/// Infix operators with their binding power (FHIRPath precedence, loosest first).
fn infix(tok: &Token) -> Option<(u8, Infix)> {
    let (prec, op) = match tok {
        Token::Ident(k) => match k.as_str() {
            "implies" => (1, Infix::Bin(BinaryOp::Implies)),
            "or" => (2, Infix::Bin(BinaryOp::Or)),
            "xor" => (2, Infix::Bin(BinaryOp::Xor)),
            "and" => (3, Infix::Bin(BinaryOp::And)),
            "is" => (8, Infix::Is),
            "as" => (8, Infix::As),
            _ => return None,
        },
        Token::Op("=") => (5, Infix::Bin(BinaryOp::Equals)),
        Token::Op("!=") => (5, Infix::Bin(BinaryOp::NotEquals)),
        Token::Op("|") => (7, Infix::Bin(BinaryOp::Union)),
        Token::Op(other) => (5, Infix::Unsupported(other)),
        _ => return None,
    };
    Some((prec, op))
}

enum Infix {
    Bin(BinaryOp),
    Is,
    As,
    Unsupported(&'static str),
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

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.postfix()?;
        while let Some((prec, op)) = self.peek().and_then(infix) {
            if prec <= min_prec {
                break;
            }
            self.pos += 1;
            lhs = match op {
                Infix::Bin(op) => Expr::Binary(op, Box::new(lhs), Box::new(self.expr(prec)?)),
                Infix::Is => Expr::Is(Box::new(lhs), self.type_spec()?),
                Infix::As => Expr::As(Box::new(lhs), self.type_spec()?),
                Infix::Unsupported(op) => {
                    self.pos -= 1;
                    return Err(self.error(&format!("operator {op} is not supported")));
                }
            };
        }
        Ok(lhs)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
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
                    let index = match self.next() {
                        Some(Token::Num(n)) => n.parse::<usize>().map_err(|_| self.error("bad index"))?,
                        _ => return Err(self.error("only literal indexes are supported")),
                    };
                    self.expect(&Token::RBracket)?;
                    expr = Expr::Index(Box::new(expr), index);
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

    fn term(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.next() else {
            return Err(self.error("unexpected end of expression"));
        };
        match tok {
            Token::Ident(n) if n == "true" || n == "false" => Ok(Expr::Literal(Literal::Boolean(n == "true"))),
            Token::Ident(n) | Token::Quoted(n) => self.invocation(Expr::This, n),
            Token::Str(s) => Ok(Expr::Literal(Literal::String(s))),
            Token::Num(n) => Ok(Expr::Literal(Literal::Number(n))),
            Token::Env(n) if matches!(n.as_str(), "resource" | "rootResource" | "context") => Ok(Expr::Resource),
            Token::Special(n) if n == "this" => Ok(Expr::This),
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

    /// A member access, or a function call when `(` follows the name.
    fn invocation(&mut self, focus: Expr, name: String) -> Result<Expr, ParseError> {
        if self.peek() != Some(&Token::LParen) {
            return Ok(Expr::Member(Box::new(focus), name));
        }
        self.pos += 1;
        let focus = Box::new(focus);
        let expr = match name.as_str() {
            "as" | "ofType" => Expr::As(focus, self.type_spec()?),
            "is" => Expr::Is(focus, self.type_spec()?),
            "where" => Expr::Call(focus, Function::Where(Box::new(self.expr(0)?))),
            "exists" if self.peek() == Some(&Token::RParen) => Expr::Call(focus, Function::Exists(None)),
            "exists" => Expr::Call(focus, Function::Exists(Some(Box::new(self.expr(0)?)))),
            "extension" => match self.next() {
                Some(Token::Str(url)) => Expr::Call(focus, Function::Extension(url)),
                _ => {
                    self.pos -= 1;
                    return Err(self.error("extension() takes a string literal"));
                }
            },
            "empty" => Expr::Call(focus, Function::Empty),
            "not" => Expr::Call(focus, Function::Not),
            "first" => Expr::Call(focus, Function::First),
            "last" => Expr::Call(focus, Function::Last),
            "resolve" => Expr::Call(focus, Function::Resolve),
            "hasValue" => Expr::Call(focus, Function::HasValue),
            _ => {
                self.pos -= 2;
                return Err(self.error(&format!("function {name}() is not supported")));
            }
        };
        self.expect(&Token::RParen)?;
        Ok(expr)
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let mut name = self.name()?;
        // Qualified names (`FHIR.Patient`): the namespace adds nothing for R4 types.
        while self.peek() == Some(&Token::Dot)
            && matches!(self.tokens.get(self.pos + 1), Some((_, Token::Ident(_))))
            && matches!(name.as_str(), "FHIR" | "System")
        {
            self.pos += 1;
            name = self.name()?;
        }
        let known = types::type_specifier(&name);
        Ok(TypeSpec { name, known })
    }
}
