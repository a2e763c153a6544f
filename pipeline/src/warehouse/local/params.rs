//! Binds `@name` query parameters locally: BigQuery's dialect parses `@name` as an identifier,
//! which this module replaces with a literal of the parameter's type before planning.
//!
//! STRING, INT64 and BOOL become literals; TIMESTAMP becomes `timestamp('…')` (µs, UTC); arrays
//! become array literals, which the function rewrites then turn into `x IN (…)` for
//! `x IN UNNEST(@ids)` and a one-column table for `FROM UNNEST(@ids) AS id`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Array, Expr, Statement, Value, VisitMut, VisitorMut};

use crate::warehouse::bigquery_functions::{call, string};
use crate::warehouse::{ParamValue, Params, WarehouseError};

/// Replaces every `@name` of `statement` with the literal of `params`' value.
///
/// # Errors
/// [`WarehouseError::Param`] naming the first parameter the SQL uses and `params` lacks.
pub fn bind(statement: &mut Statement, params: &Params) -> Result<(), WarehouseError> {
    let mut binder = Binder { params };
    match statement.visit(&mut binder) {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Binder<'a> {
    params: &'a Params,
}

impl VisitorMut for Binder<'_> {
    type Break = WarehouseError;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<WarehouseError> {
        if let Expr::Identifier(ident) = expr
            && ident.quote_style.is_none()
            && let Some(name) = ident.value.strip_prefix('@')
        {
            match self.params.get(name) {
                Some(value) => *expr = literal(value),
                None => {
                    return ControlFlow::Break(WarehouseError::Param {
                        name: name.to_owned(),
                        reason: "the SQL uses it but no value was given".into(),
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn number(n: i64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// The SQL literal of a parameter's value.
pub fn literal(value: &ParamValue) -> Expr {
    let array = |elem: Vec<Expr>| Expr::Array(Array { elem, named: true });
    match value {
        ParamValue::String(s) => string(s.clone()),
        ParamValue::Int64(n) => number(*n),
        ParamValue::Bool(b) => Expr::value(Value::Boolean(*b)),
        ParamValue::Timestamp(t) => call(
            "timestamp",
            vec![string(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())],
        ),
        ParamValue::StringArray(items) => array(items.iter().cloned().map(string).collect()),
        ParamValue::Int64Array(items) => array(items.iter().copied().map(number).collect()),
    }
}
