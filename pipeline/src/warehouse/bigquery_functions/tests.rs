//! SQL-level tests of every function and rewrite, with scalar and column inputs and NULLs.

use std::collections::HashSet;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;

use super::*;

/// Runs `sql` (rewritten like the local warehouse does) and returns its rows, each cell as text
/// ("NULL" for NULL).
async fn rows(sql: &str) -> Result<Vec<Vec<String>>, String> {
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().set_str("datafusion.sql_parser.dialect", "BigQuery"),
    );
    register_all(&ctx);
    let mut statements =
        DFParser::parse_sql_with_dialect(sql, &BigQueryDialect {}).map_err(|e| e.to_string())?;
    let mut statement = statements.pop_front().ok_or("no statement")?;
    if let DFStatement::Statement(inner) = &mut statement {
        rewrite(inner);
    }
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(|e| e.to_string())?;
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(|e| e.to_string())?;
    let batches = frame.collect().await.map_err(|e| e.to_string())?;
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The single value of `SELECT expr`.
async fn value(expr: &str) -> String {
    let rows = rows(&format!("SELECT {expr}"))
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    rows[0][0].clone()
}

/// The values of `expr` over a column `x` holding `values` (SQL literals), in order.
async fn column(expr: &str, values: &[&str]) -> Vec<String> {
    let source = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("SELECT {i} AS i, {v} AS x"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    rows(&format!("SELECT {expr} FROM ({source}) ORDER BY i"))
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

async fn fails(expr: &str) -> String {
    rows(&format!("SELECT {expr}")).await.expect_err(expr)
}

#[test]
fn names_are_unique_and_lowercase() {
    let names: Vec<String> = functions().iter().map(|f| f.name().to_owned()).collect();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
}

#[tokio::test]
async fn json_functions() {
    let json = r#"'{"n": 7, "o": {"p": [1, "two", null]}, "s": "hi"}'"#;
    assert_eq!(value(&format!("JSON_VALUE({json}, '$.n')")).await, "7");
    assert_eq!(value(&format!("JSON_VALUE({json}, \"$.s\")")).await, "hi");
    assert_eq!(value(&format!("JSON_VALUE({json}, '$.o')")).await, "NULL");
    assert_eq!(
        value(&format!("JSON_VALUE({json}, '$.missing')")).await,
        "NULL"
    );
    assert_eq!(value("JSON_VALUE(NULL, '$.a')").await, "NULL");
    assert_eq!(value("JSON_VALUE('\"x\"')").await, "x");
    assert_eq!(
        value(&format!("JSON_QUERY({json}, '$.o')")).await,
        r#"{"p":[1,"two",null]}"#
    );
    assert_eq!(
        value(&format!("JSON_QUERY_ARRAY({json}, '$.o.p')")).await,
        r#"[1, "two", null]"#
    );
    assert_eq!(
        value(&format!("JSON_QUERY_ARRAY({json}, '$.s')")).await,
        "NULL"
    );
    assert_eq!(
        value(&format!("JSON_VALUE_ARRAY({json}, '$.o.p')")).await,
        "[1, two, NULL]"
    );
    assert_eq!(
        value("JSON_VALUE_ARRAY('[1, [2]]')").await,
        "NULL",
        "an array holding an array"
    );
    assert_eq!(
        column(
            "JSON_VALUE(x, '$.a')",
            &[r#"'{"a": 1}'"#, "NULL", "'not json'", r#"'{"a": "b"}'"#]
        )
        .await,
        ["1", "NULL", "NULL", "b"]
    );
    assert_eq!(
        column(
            "ARRAY_LENGTH(JSON_QUERY_ARRAY(x))",
            &["'[1, 2]'", "NULL", "'{}'"]
        )
        .await,
        ["2", "NULL", "NULL"]
    );
    assert!(
        fails("JSON_VALUE('{}', 'a.b')")
            .await
            .contains("invalid JSONPath")
    );
}

#[tokio::test]
async fn casts() {
    assert_eq!(value("SAFE_CAST('x' AS INT64)").await, "NULL");
    assert_eq!(value("SAFE_CAST('12' AS INT64)").await, "12");
    assert_eq!(value("CAST('12' AS INT64) + 1").await, "13");
    assert_eq!(value("CAST(5 AS STRING)").await, "5");
    assert_eq!(
        column("CAST(x AS INT64)", &["1.5", "-2.5", "2.4", "NULL"]).await,
        ["2", "-3", "2", "NULL"]
    );
    assert_eq!(value("CAST('-0x10' AS INT64)").await, "-16");
    assert!(
        fails("CAST('1.5' AS INT64)")
            .await
            .contains("bad INT64 value")
    );
    assert_eq!(value("SAFE_CAST(1e30 AS INT64)").await, "NULL");
    assert_eq!(value("CAST('1.5' AS FLOAT64)").await, "1.5");
    assert_eq!(value("CAST('true' AS BOOL)").await, "true");
    assert_eq!(
        value("CAST('2026-01-02 03:04:05+00' AS TIMESTAMP)").await,
        "2026-01-02T03:04:05Z"
    );
    assert_eq!(value("SAFE_CAST('nope' AS TIMESTAMP)").await, "NULL");
    assert_eq!(
        column(
            "CAST(x AS STRING)",
            &[
                "TIMESTAMP '2026-01-02 03:04:05.120+00'",
                "TIMESTAMP '2026-01-02 03:04:05+00'",
                "NULL"
            ]
        )
        .await,
        [
            "2026-01-02 03:04:05.12+00",
            "2026-01-02 03:04:05+00",
            "NULL"
        ]
    );
    assert_eq!(
        value("CAST(DATE '2026-01-02' AS STRING)").await,
        "2026-01-02"
    );
    assert_eq!(
        column("SAFE_CAST(x AS INT64)", &["'1'", "'a'", "NULL"]).await,
        ["1", "NULL", "NULL"]
    );
}

#[tokio::test]
async fn timestamps() {
    for (text, expected) in [
        ("'2026-01-02 03:04:05+00'", "2026-01-02T03:04:05Z"),
        ("'2026-01-02T03:04:05Z'", "2026-01-02T03:04:05Z"),
        (
            "'2026-01-02 03:04:05.123456 UTC'",
            "2026-01-02T03:04:05.123456Z",
        ),
        ("'2026-01-02 03:04:05-02:00'", "2026-01-02T05:04:05Z"),
        ("'2026-01-02'", "2026-01-02T00:00:00Z"),
        (
            "'2026-01-02 03:04:05', 'America/Los_Angeles'",
            "2026-01-02T11:04:05Z",
        ),
        ("NULL", "NULL"),
    ] {
        assert_eq!(
            value(&format!("TIMESTAMP({text})")).await,
            expected,
            "{text}"
        );
    }
    assert_eq!(
        value("TIMESTAMP '2026-01-02 03:04:05+00'").await,
        "2026-01-02T03:04:05Z"
    );
    assert!(
        fails("TIMESTAMP('soon')")
            .await
            .contains("invalid timestamp")
    );
    let now = value("CURRENT_TIMESTAMP()").await;
    assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    assert_eq!(
        rows("SELECT CURRENT_TIMESTAMP() = CURRENT_TIMESTAMP()")
            .await
            .unwrap()[0][0],
        "true"
    );
    let t = "TIMESTAMP '2026-01-07 13:45:30.5+00'"; // a Wednesday
    for (part, expected) in [
        ("SECOND", "2026-01-07T13:45:30Z"),
        ("MINUTE", "2026-01-07T13:45:00Z"),
        ("HOUR", "2026-01-07T13:00:00Z"),
        ("DAY", "2026-01-07T00:00:00Z"),
        ("WEEK", "2026-01-04T00:00:00Z"),
        ("WEEK(MONDAY)", "2026-01-05T00:00:00Z"),
        ("ISOWEEK", "2026-01-05T00:00:00Z"),
        ("MONTH", "2026-01-01T00:00:00Z"),
        ("QUARTER", "2026-01-01T00:00:00Z"),
        ("YEAR", "2026-01-01T00:00:00Z"),
    ] {
        assert_eq!(
            value(&format!("TIMESTAMP_TRUNC({t}, {part})")).await,
            expected,
            "{part}"
        );
    }
    assert_eq!(
        value(&format!("TIMESTAMP_ADD({t}, INTERVAL 2 HOUR)")).await,
        "2026-01-07T15:45:30.500Z"
    );
    assert_eq!(
        value(&format!("TIMESTAMP_SUB({t}, INTERVAL 1 DAY)")).await,
        "2026-01-06T13:45:30.500Z"
    );
    assert_eq!(
        value(&format!(
            "TIMESTAMP_DIFF({t}, TIMESTAMP '2026-01-07 00:00:00+00', MINUTE)"
        ))
        .await,
        "825"
    );
    assert_eq!(value(&format!("DATE({t})")).await, "2026-01-07");
    assert_eq!(value("DATE('2026-03-04')").await, "2026-03-04");
    assert_eq!(
        value("DATE_DIFF(DATE '2026-03-01', DATE '2026-01-31', DAY)").await,
        "29"
    );
    assert_eq!(
        value("DATE_DIFF(DATE '2026-03-01', DATE '2026-01-31', MONTH)").await,
        "2"
    );
    assert_eq!(
        value("DATE_DIFF(DATE '2026-01-04', DATE '2026-01-03', WEEK)").await,
        "1"
    );
    assert_eq!(
        value("DATE_DIFF(DATE '2027-01-01', DATE '2026-12-31', YEAR)").await,
        "1"
    );
    assert_eq!(
        value(&format!("FORMAT_TIMESTAMP('%Y-%m-%d %H:%M:%E3S %Z', {t})")).await,
        "2026-01-07 13:45:30.500 UTC"
    );
    assert_eq!(
        value(&format!(
            "FORMAT_TIMESTAMP('%F %T', {t}, 'America/New_York')"
        ))
        .await,
        "2026-01-07 08:45:30"
    );
    assert_eq!(
        value("PARSE_TIMESTAMP('%Y-%m-%d %H:%M:%S', '2026-01-02 03:04:05')").await,
        "2026-01-02T03:04:05Z"
    );
    assert_eq!(
        value("PARSE_TIMESTAMP('%Y%m%d', '20260102')").await,
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        value("PARSE_TIMESTAMP('%FT%T%Ez', '2026-01-02T03:04:05+01:00')").await,
        "2026-01-02T02:04:05Z"
    );
    assert!(
        fails("PARSE_TIMESTAMP('%Y', 'x')")
            .await
            .contains("does not match")
    );
    assert_eq!(
        column(
            "TIMESTAMP_TRUNC(TIMESTAMP(x), HOUR)",
            &["'2026-01-01 10:30:00+00'", "NULL"]
        )
        .await,
        ["2026-01-01T10:00:00Z", "NULL"]
    );
    assert_eq!(
        column("DATE(TIMESTAMP(x))", &["'2026-01-01 23:59:59+00'", "NULL"]).await,
        ["2026-01-01", "NULL"]
    );
}

#[tokio::test]
async fn numbers_and_hashes() {
    assert_eq!(value("MOD(-7, 3)").await, "-1");
    assert_eq!(value("MOD(7, -3)").await, "1");
    assert_eq!(value("MOD(NULL, 3)").await, "NULL");
    assert!(fails("MOD(1, 0)").await.contains("division by zero"));
    assert_eq!(value("SAFE_DIVIDE(1, 0)").await, "NULL");
    assert_eq!(value("SAFE_DIVIDE(3, 2)").await, "1.5");
    assert_eq!(
        value("FARM_FINGERPRINT('alphabet')").await,
        "-2427165924636348523"
    );
    assert_eq!(value("FARM_FINGERPRINT(NULL)").await, "NULL");
    assert_eq!(
        column(
            "FARM_FINGERPRINT(CONCAT(CAST(x AS STRING), 'foo', CAST(true AS STRING)))",
            &["1", "NULL"]
        )
        .await,
        ["-1541654101129638711", "NULL"]
    );
    assert_eq!(
        column(
            "ABS(MOD(FARM_FINGERPRINT(CAST(x AS STRING)), 4))",
            &["1", "2", "3"]
        )
        .await,
        column("ABS(MOD(FARM_FINGERPRINT(x), 4))", &["'1'", "'2'", "'3'"]).await,
    );
}

#[tokio::test]
async fn aggregates_and_strings() {
    let r = rows(
        "SELECT COUNTIF(x > 1), LOGICAL_OR(x > 2), LOGICAL_AND(x > 0) \
         FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT NULL)",
    )
    .await
    .unwrap();
    assert_eq!(r[0], ["2", "true", "true"]);
    let empty = rows("SELECT COUNTIF(x > 1) FROM (SELECT 1 AS x) WHERE FALSE")
        .await
        .unwrap();
    assert_eq!(empty[0], ["0"]);
    assert_eq!(value("STARTS_WITH('abc', 'ab')").await, "true");
    assert_eq!(value("ENDS_WITH('abc', 'b')").await, "false");
    let uuid = value("GENERATE_UUID()").await;
    assert_eq!(uuid.len(), 36, "{uuid}");
}

#[tokio::test]
async fn unnest_forms() {
    assert_eq!(
        rows("SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 5) WHERE x IN UNNEST([1, 2]) ")
            .await
            .unwrap(),
        [["1"]]
    );
    assert_eq!(
        rows("SELECT 1 WHERE 3 NOT IN UNNEST([1, 2])")
            .await
            .unwrap(),
        [["1"]]
    );
    assert_eq!(
        rows("SELECT 1 WHERE 3 IN UNNEST([])").await.unwrap().len(),
        0
    );
    assert_eq!(
        rows("SELECT id FROM UNNEST(['a', 'b']) AS id ORDER BY id")
            .await
            .unwrap(),
        [["a"], ["b"]]
    );
}

#[tokio::test]
async fn lateral_unnest_gives_a_row_per_element() {
    let t = "(SELECT 'p' AS id, '[{\"n\":\"x\"},{\"n\":\"y\"}]' AS j \
             UNION ALL SELECT 'q', '[]' UNION ALL SELECT 'r', CAST(NULL AS STRING))";
    // The comma form and CROSS JOIN, with and without the left side's alias; empty and NULL
    // arrays give no row, as in BigQuery.
    for sql in [
        format!(
            "SELECT t.id, JSON_VALUE(e, '$.n') AS n FROM {t} AS t, UNNEST(JSON_QUERY_ARRAY(t.j)) AS e ORDER BY n"
        ),
        format!(
            "SELECT id, JSON_VALUE(e, '$.n') FROM {t} AS t CROSS JOIN UNNEST(JSON_QUERY_ARRAY(j)) AS e ORDER BY 2"
        ),
        format!(
            "WITH s AS {t} SELECT s.id, JSON_VALUE(e, '$.n') FROM s, UNNEST(JSON_QUERY_ARRAY(s.j)) AS e ORDER BY 2"
        ),
    ] {
        assert_eq!(rows(&sql).await.unwrap(), [["p", "x"], ["p", "y"]], "{sql}");
    }
    // Inside a UNION and a subquery too.
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT e FROM {t} AS t, UNNEST(JSON_QUERY_ARRAY(t.j)) AS e \
         UNION ALL SELECT e FROM {t} AS u, UNNEST(JSON_QUERY_ARRAY(u.j)) AS e)"
    );
    assert_eq!(rows(&sql).await.unwrap(), [["4"]]);
}

#[tokio::test]
async fn more_of_bigquerys_syntax() {
    assert_eq!(value("IF(1 > 0, 'a', 'b')").await, "a");
    assert_eq!(
        column("IF(x > 1, 'big', 'small')", &["1", "2", "NULL"]).await,
        ["small", "big", "small"]
    );
    assert_eq!(value("DIV(-7, 2)").await, "-3");
    assert!(fails("DIV(1, 0)").await.contains("Divide by zero"));
    assert_eq!(
        value("DATE_TRUNC(DATE '2026-05-17', QUARTER)").await,
        "2026-04-01"
    );
    assert_eq!(
        column(
            "DATE_TRUNC(x, WEEK(MONDAY))",
            &["DATE '2026-01-07'", "NULL"]
        )
        .await,
        ["2026-01-05", "NULL"]
    );
    assert_eq!(
        value("date_trunc('month', TIMESTAMP '2026-05-17 10:00:00+00')").await,
        "2026-05-01T00:00:00Z",
        "DataFusion's own argument order still works"
    );
    assert_eq!(value(r"REGEXP_CONTAINS('a1', r'\d')").await, "true");
    assert_eq!(value("ARRAY_LENGTH(SPLIT('a,b', ','))").await, "2");
    assert_eq!(
        value("UNIX_SECONDS(TIMESTAMP '1969-12-31 23:59:59.5+00')").await,
        "-1",
        "rounds down"
    );
    assert_eq!(
        column(
            "UNIX_MILLIS(TIMESTAMP_MILLIS(x))",
            &["1767793530123", "NULL"]
        )
        .await,
        ["1767793530123", "NULL"]
    );
    assert_eq!(value("TIMESTAMP_SECONDS(0)").await, "1970-01-01T00:00:00Z");
    let r = rows("SELECT APPROX_COUNT_DISTINCT(x) FROM UNNEST([1, 1, 2]) AS x")
        .await
        .unwrap();
    assert_eq!(r[0], ["2"]);
}
