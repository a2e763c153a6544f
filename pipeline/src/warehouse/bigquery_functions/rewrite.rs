//! Rewrites of BigQuery syntax DataFusion plans differently or not at all, applied to the parsed
//! statement before planning:
//!
//! - date-part arguments (`TIMESTAMP_DIFF(a, b, SECOND)`, `TIMESTAMP_TRUNC(t, WEEK(MONDAY))`),
//!   bare identifiers DataFusion would resolve as columns, become string literals;
//! - BigQuery's type names in casts (`INT64`, `FLOAT64`, `BOOL`) become DataFusion's;
//!   `SAFE_CAST` becomes `TRY_CAST`; a cast to TIMESTAMP and a `TIMESTAMP '...'` literal become
//!   the `timestamp` function, so they have BigQuery's type (µs, UTC) and parsing; a cast to
//!   STRING gives BigQuery's text of a TIMESTAMP, one to INT64 rounds a FLOAT64 as BigQuery does;
//! - `TIMESTAMP_ADD(t, INTERVAL n unit)` / `_SUB` (and `DATE_ADD` / `DATE_SUB`) become `t ± INTERVAL`;
//! - `COUNTIF(x)` becomes `COUNT(NULLIF(x, FALSE))`, `IF(c, a, b)` a `CASE`, `DIV(x, y)` the
//!   integer division `x / y`;
//! - BigQuery's `DATE_TRUNC(date, MONTH)` (DataFusion's `date_trunc` takes the part first)
//!   becomes `DATE(TIMESTAMP_TRUNC(TIMESTAMP(date), 'MONTH'))`;
//! - `x IN UNNEST([a, b])` becomes `x IN (a, b)` and `x IN UNNEST(array)` becomes
//!   `array_has(array, x)`;
//! - `FROM UNNEST(array) AS v` names its column `v`, as BigQuery does; a correlated ("lateral")
//!   `FROM t, UNNEST(t.array) AS v` (or `CROSS JOIN UNNEST`), which DataFusion cannot plan,
//!   becomes `FROM (SELECT t.*, UNNEST(t.array) AS v FROM t) AS t`: one row per element, none for
//!   an empty or NULL array, as in BigQuery;
//! - raw (`r'\d+'`) and triple-quoted string literals become plain ones.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, CastKind, DataType, ExactNumberInfo, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, JoinConstraint, JoinOperator,
    ObjectName, Query, SetExpr, Statement, TableAliasColumnDef, TableFactor, TableWithJoins,
    UnaryOperator, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::numeric::{CAST_TO_INT64, SAFE_CAST_TO_INT64};
use super::strings::CAST_TO_STRING;
use super::time::SAFE_CAST_TO_TIMESTAMP;

/// Functions whose date-part argument is a bare identifier in BigQuery, and its position.
const DATE_PART_ARGUMENTS: &[(&str, usize)] = &[
    ("timestamp_diff", 2),
    ("date_diff", 2),
    ("timestamp_trunc", 1),
];

/// Applies every rewrite of this module to `statement`.
pub fn rewrite(statement: &mut Statement) {
    let _ = statement.visit(&mut Rewriter);
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        rewrite_expr(expr);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        lateral_unnest(&mut query.body);
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            with_offset: false,
            ..
        } = factor
            && alias.columns.is_empty()
            && array_exprs.len() == 1
        {
            alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites the lateral UNNESTs of every SELECT in `body` (also inside UNION and friends).
fn lateral_unnest(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let mut i = 1;
            while i < select.from.len() {
                if select.from[i].joins.is_empty()
                    && let Some(merged) =
                        unnest_beside(&select.from[i - 1], &select.from[i].relation)
                {
                    select.from[i - 1] = merged;
                    select.from.remove(i);
                } else {
                    i += 1;
                }
            }
            for from in &mut select.from {
                while let Some(join) = from.joins.first()
                    && matches!(
                        join.join_operator,
                        JoinOperator::CrossJoin(JoinConstraint::None)
                    )
                    && let Some(merged) = unnest_beside(
                        &TableWithJoins {
                            relation: from.relation.clone(),
                            joins: Vec::new(),
                        },
                        &join.relation,
                    )
                {
                    from.relation = merged.relation;
                    from.joins.remove(0);
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            lateral_unnest(left);
            lateral_unnest(right);
        }
        _ => {}
    }
}

/// `left` with the elements of the lateral `UNNEST(expr) AS v` beside each row, as a derived
/// table named like `left`; `None` when `unnest` is not such an UNNEST or `left` has no name.
fn unnest_beside(left: &TableWithJoins, unnest: &TableFactor) -> Option<TableWithJoins> {
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = unnest
    else {
        return None;
    };
    let [array] = array_exprs.as_slice() else {
        return None;
    };
    if !left.joins.is_empty() {
        return None;
    }
    let name = match &left.relation {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => alias.name.clone(),
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last()?.as_ident()?.clone(),
        _ => return None,
    };
    let element = alias.columns.first().map_or(&alias.name, |c| &c.name);
    let text = format!(
        "SELECT * FROM (SELECT {name}.*, UNNEST({array}) AS {element} FROM {relation}) AS {name}",
        relation = left.relation,
    );
    let statement = Parser::parse_sql(&BigQueryDialect {}, &text).ok()?.pop()?;
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = *query.body else {
        return None;
    };
    select.from.into_iter().next()
}

/// A call of `name` with `args`.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// A string literal.
pub fn string(text: impl Into<String>) -> Expr {
    Expr::value(Value::SingleQuotedString(text.into()))
}

fn plain_args(function: &mut Function) -> Option<Vec<&mut Expr>> {
    let FunctionArguments::List(list) = &mut function.args else {
        return None;
    };
    list.args
        .iter_mut()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            _ => None,
        })
        .collect()
}

fn rewrite_expr(expr: &mut Expr) {
    match expr {
        Expr::Function(_) => rewrite_function(expr),
        Expr::Cast { .. } => rewrite_cast(expr),
        Expr::Value(value) => {
            // BigQuery's raw (r'…') and triple-quoted strings are plain strings to DataFusion.
            if let Value::SingleQuotedRawStringLiteral(text)
            | Value::DoubleQuotedRawStringLiteral(text)
            | Value::TripleSingleQuotedRawStringLiteral(text)
            | Value::TripleDoubleQuotedRawStringLiteral(text)
            | Value::TripleSingleQuotedString(text)
            | Value::TripleDoubleQuotedString(text) = &value.value
            {
                value.value = Value::SingleQuotedString(text.clone());
            }
        }
        Expr::TypedString(typed) if matches!(typed.data_type, DataType::Timestamp(..)) => {
            *expr = call("timestamp", vec![Expr::Value(typed.value.clone())]);
        }
        Expr::InUnnest {
            expr: needle,
            array_expr,
            negated,
        } => *expr = in_unnest(needle, array_expr, *negated),
        _ => {}
    }
}

/// A cast with BigQuery's meaning: to TIMESTAMP, INT64 and STRING through gma's functions,
/// `SAFE_CAST` as `TRY_CAST`, BigQuery's type names as DataFusion's.
fn rewrite_cast(expr: &mut Expr) {
    let Expr::Cast {
        kind,
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return;
    };
    let safe = matches!(kind, CastKind::SafeCast | CastKind::TryCast);
    if matches!(data_type, DataType::Timestamp(..)) {
        let name = if safe {
            SAFE_CAST_TO_TIMESTAMP
        } else {
            "timestamp"
        };
        *expr = call(name, vec![(**inner).clone()]);
        return;
    }
    if matches!(data_type, DataType::Int64) {
        let name = if safe {
            SAFE_CAST_TO_INT64
        } else {
            CAST_TO_INT64
        };
        *expr = call(name, vec![(**inner).clone()]);
        return;
    }
    if matches!(data_type, DataType::String(_)) {
        *expr = call(CAST_TO_STRING, vec![(**inner).clone()]);
        return;
    }
    if matches!(kind, CastKind::SafeCast) {
        *kind = CastKind::TryCast;
    }
    match data_type {
        DataType::Int64 => *data_type = DataType::BigInt(None),
        DataType::Float64 => *data_type = DataType::Double(ExactNumberInfo::None),
        DataType::Bool => *data_type = DataType::Boolean,
        _ => {}
    }
}

/// `needle IN UNNEST(array)`: a list for a literal array, else `array_has`.
fn in_unnest(needle: &Expr, array: &Expr, negated: bool) -> Expr {
    match array {
        Expr::Array(array) if array.elem.is_empty() => Expr::value(Value::Boolean(negated)),
        Expr::Array(array) => Expr::InList {
            expr: Box::new(needle.clone()),
            list: array.elem.clone(),
            negated,
        },
        other => {
            let has = call("array_has", vec![other.clone(), needle.clone()]);
            if negated {
                Expr::UnaryOp {
                    op: UnaryOperator::Not,
                    expr: Box::new(Expr::Nested(Box::new(has))),
                }
            } else {
                has
            }
        }
    }
}

/// Whether `expr` is a bare date part: `MONTH`, or `WEEK(MONDAY)`.
fn is_date_part(expr: &Expr) -> bool {
    match expr {
        Expr::Identifier(_) => true,
        Expr::Function(f) => f.name.to_string().eq_ignore_ascii_case("week"),
        _ => false,
    }
}

fn rewrite_function(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    if let Some((_, position)) = DATE_PART_ARGUMENTS.iter().find(|(n, _)| *n == name) {
        quote_date_part(function, *position);
        return;
    }
    let replacement = match name.as_str() {
        "timestamp_add" | "date_add" => interval_arithmetic(function, BinaryOperator::Plus),
        "timestamp_sub" | "date_sub" => interval_arithmetic(function, BinaryOperator::Minus),
        "date_trunc" => date_trunc(function),
        "if" => if_to_case(function),
        "div" => integer_division(function),
        "countif" => count_if(function),
        _ => None,
    };
    if let Some(replacement) = replacement {
        *expr = replacement;
    }
}

/// The date part at `position` (`SECOND`, `WEEK(MONDAY)`) as the string literal DataFusion's
/// functions take.
fn quote_date_part(function: &mut Function, position: usize) {
    if let Some(mut args) = plain_args(function)
        && let Some(arg) = args.get_mut(position)
    {
        match &**arg {
            Expr::Identifier(ident) => **arg = string(ident.value.to_ascii_uppercase()),
            Expr::Function(part) if is_date_part(arg) => {
                **arg = string(part.to_string().to_ascii_uppercase())
            }
            _ => {}
        }
    }
}

/// `TIMESTAMP_ADD(t, INTERVAL n unit)` as `(t) + INTERVAL n unit` (`op` minus for `_SUB`).
fn interval_arithmetic(function: &mut Function, op: BinaryOperator) -> Option<Expr> {
    let args = plain_args(function)?;
    let [left, right] = args.as_slice() else {
        return None;
    };
    let (left, right) = ((**left).clone(), (**right).clone());
    Some(Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new(left))),
        op,
        right: Box::new(right),
    })))
}

/// BigQuery's `DATE_TRUNC(date, MONTH)` as `DATE(TIMESTAMP_TRUNC(TIMESTAMP(date), 'MONTH'))`.
fn date_trunc(function: &mut Function) -> Option<Expr> {
    let args = plain_args(function)?;
    let [date, part] = args.as_slice() else {
        return None;
    };
    if !is_date_part(part) {
        return None;
    }
    let part = match &**part {
        Expr::Identifier(ident) => ident.value.to_ascii_uppercase(),
        other => other.to_string().to_ascii_uppercase(),
    };
    let timestamp = call("timestamp", vec![(**date).clone()]);
    Some(call(
        "date",
        vec![call("timestamp_trunc", vec![timestamp, string(part)])],
    ))
}

/// `IF(c, a, b)` as `CASE WHEN c THEN a ELSE b END`.
fn if_to_case(function: &mut Function) -> Option<Expr> {
    let args = plain_args(function)?;
    let [condition, then, otherwise] = args.as_slice() else {
        return None;
    };
    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: (**condition).clone(),
            result: (**then).clone(),
        }],
        else_result: Some(Box::new((**otherwise).clone())),
    })
}

/// `DIV(x, y)` as the integer division `(x) / (y)`.
fn integer_division(function: &mut Function) -> Option<Expr> {
    let args = plain_args(function)?;
    let [x, y] = args.as_slice() else {
        return None;
    };
    Some(Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(Expr::Nested(Box::new((**x).clone()))),
        op: BinaryOperator::Divide,
        right: Box::new(Expr::Nested(Box::new((**y).clone()))),
    })))
}

/// `COUNTIF(x)` as `COUNT(NULLIF(x, FALSE))`, keeping the call's window and filter.
fn count_if(function: &mut Function) -> Option<Expr> {
    let args = plain_args(function)?;
    let [arg] = args.as_slice() else {
        return None;
    };
    let condition = call(
        "nullif",
        vec![(**arg).clone(), Expr::value(Value::Boolean(false))],
    );
    let mut count = function.clone();
    count.name = ObjectName::from(vec![Ident::new("count")]);
    count.args = match call("count", vec![condition]) {
        Expr::Function(f) => f.args,
        _ => return None,
    };
    Some(Expr::Function(count))
}
