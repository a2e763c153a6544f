//! BigQuery's functions for DataFusion, so the same SQL text runs on both backends.
//!
//! [`functions`] lists the scalar functions DataFusion lacks or computes differently from
//! BigQuery, each written with BigQuery's semantics (NULL in, NULL out; NULL on a JSON path that
//! matches nothing; MOD with the sign of the dividend; FARM_FINGERPRINT's exact values).
//! [`register_all`] registers them with a few aliases of DataFusion's own functions
//! (`GENERATE_UUID`, `LOGICAL_OR`, `LOGICAL_AND`, `APPROX_COUNT_DISTINCT`, `REGEXP_CONTAINS`,
//! `SPLIT`). BigQuery syntax that DataFusion parses but plans differently is rewritten on the
//! AST by [`rewrite`] before planning.
//!
//! To add a function: write it in the module of its kind with [`udf::function`] (lowercase
//! name), list it in that module's `functions`, and test it here with scalar and column inputs
//! and NULLs, and in the BigQuery cross-check (`warehouse::crosscheck_tests`).

pub mod json;
pub mod numeric;
mod rewrite;
pub mod strings;
pub mod time;
pub mod udf;

#[cfg(test)]
mod tests;

use datafusion::functions::regex::regexp_like;
use datafusion::functions::string::uuid;
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::bool_and_or::{bool_and_udaf, bool_or_udaf};
use datafusion::functions_nested::string::string_to_array_udf;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use rewrite::{call, rewrite, string};

/// Every scalar function gma provides on DataFusion.
pub fn functions() -> Vec<ScalarUDF> {
    let mut all = json::functions();
    all.extend(time::functions());
    all.extend(numeric::functions());
    all.extend(strings::functions());
    all
}

/// Registers [`functions`] in `ctx`, and BigQuery's names of DataFusion's own functions.
pub fn register_all(ctx: &SessionContext) {
    for function in functions() {
        ctx.register_udf(function);
    }
    let alias = |udf: &ScalarUDF, name: &'static str| udf.clone().with_aliases([name]);
    ctx.register_udf(alias(&uuid(), "generate_uuid"));
    ctx.register_udf(alias(&regexp_like(), "regexp_contains"));
    ctx.register_udf(alias(&string_to_array_udf(), "split"));
    let alias = |udaf: &AggregateUDF, name: &'static str| udaf.clone().with_aliases([name]);
    ctx.register_udaf(alias(&bool_or_udaf(), "logical_or"));
    ctx.register_udaf(alias(&bool_and_udaf(), "logical_and"));
    ctx.register_udaf(alias(&approx_distinct_udaf(), "approx_count_distinct"));
}
