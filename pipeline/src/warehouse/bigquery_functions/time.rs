//! BigQuery's TIMESTAMP and DATE functions. A TIMESTAMP is `Timestamp(µs, "UTC")`, as in gma's
//! tables; a DATE is `Date32`. Time zone arguments take IANA names and `+HH:MM` offsets.

use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::udf::function;
use gma_store::schema::UTC;

/// BigQuery's TIMESTAMP type on DataFusion.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// The time functions.
pub fn functions() -> Vec<ScalarUDF> {
    let ts = timestamp_type;
    let text = || DataType::Utf8;
    vec![
        function(
            "timestamp",
            vec![
                vec![text()],
                vec![text(), text()],
                vec![DataType::Date32],
                vec![ts()],
            ],
            ts(),
            |args| to_timestamp(args, false),
        ),
        function(
            SAFE_CAST_TO_TIMESTAMP,
            vec![vec![text()], vec![DataType::Date32], vec![ts()]],
            ts(),
            |args| to_timestamp(args, true),
        ),
        ScalarUDF::new_from_impl(CurrentTimestamp::default()),
        function(
            "timestamp_trunc",
            vec![vec![ts(), text()]],
            ts(),
            timestamp_trunc,
        ),
        function(
            "date",
            vec![vec![ts()], vec![text()], vec![DataType::Date32]],
            DataType::Date32,
            date,
        ),
        function(
            "date_diff",
            vec![vec![DataType::Date32, DataType::Date32, text()]],
            DataType::Int64,
            date_diff,
        ),
        function(
            "timestamp_diff",
            vec![vec![ts(), ts(), text()]],
            DataType::Int64,
            timestamp_diff,
        ),
        epoch_function("unix_seconds", false, 1_000_000),
        epoch_function("unix_millis", false, 1_000),
        epoch_function("unix_micros", false, 1),
        epoch_function("timestamp_seconds", true, 1_000_000),
        epoch_function("timestamp_millis", true, 1_000),
        epoch_function("timestamp_micros", true, 1),
        function(
            "format_timestamp",
            vec![vec![text(), ts()], vec![text(), ts(), text()]],
            text(),
            format_timestamp,
        ),
        function(
            "parse_timestamp",
            vec![vec![text(), text()], vec![text(), text(), text()]],
            ts(),
            parse_timestamp,
        ),
    ]
}

/// The function `SAFE_CAST(x AS TIMESTAMP)` is rewritten to: TIMESTAMP that gives NULL instead
/// of an error.
pub const SAFE_CAST_TO_TIMESTAMP: &str = "safe_cast_to_timestamp";

fn error(function: &str, message: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{function}: {message}"))
}

fn time_zone(function: &str, name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|e| {
        error(
            function,
            format!("unknown time zone {name:?} ({e}); use an IANA name or +HH:MM"),
        )
    })
}

/// The optional time zone argument at `index`, UTC when absent.
fn zone_argument(args: &[ArrayRef], index: usize) -> Option<&StringArray> {
    args.get(index).map(|a| a.as_string::<i32>())
}

fn zone_at(function: &str, zones: Option<&StringArray>, row: usize) -> Result<Option<Tz>> {
    match zones {
        None => Ok(Some(time_zone(function, UTC)?)),
        Some(zones) if zones.is_null(row) => Ok(None),
        Some(zones) => time_zone(function, zones.value(row)).map(Some),
    }
}

/// Parses BigQuery's canonical timestamp text (`2026-01-01 10:00:00[.ffffff][+HH[:MM]|Z| zone]`,
/// `T` or space, or a date alone) in `zone` when the text names none.
fn parse_timestamp_text(text: &str, zone: &Tz) -> Option<i64> {
    let text = text.trim();
    let text = text.strip_suffix(" UTC").unwrap_or(text);
    string_to_datetime(zone, text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn to_timestamp(args: &[ArrayRef], safe: bool) -> Result<ArrayRef> {
    let name = if safe { "SAFE_CAST" } else { "TIMESTAMP" };
    let input = &args[0];
    let out: TimestampMicrosecondArray = match input.data_type() {
        DataType::Utf8 => {
            let text = input.as_string::<i32>();
            let zones = zone_argument(args, 1);
            let mut values = Vec::with_capacity(text.len());
            for row in 0..text.len() {
                let zone = zone_at(name, zones, row)?;
                let value = match (text.is_valid(row), zone) {
                    (true, Some(zone)) => {
                        let parsed = parse_timestamp_text(text.value(row), &zone);
                        if parsed.is_none() && !safe {
                            return Err(error(
                                name,
                                format!("invalid timestamp {:?}", text.value(row)),
                            ));
                        }
                        parsed
                    }
                    _ => None,
                };
                values.push(value);
            }
            values.into()
        }
        DataType::Date32 => input
            .as_primitive::<Date32Type>()
            .unary(|days| i64::from(days) * MICROS_PER_DAY),
        _ => input.as_primitive::<TimestampMicrosecondType>().clone(),
    };
    Ok(Arc::new(out.with_timezone(UTC)))
}

/// CURRENT_TIMESTAMP(): the query's start time, the same in every row and every call of one
/// query, like BigQuery's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentTimestamp {
    signature: Signature,
}

impl Default for CurrentTimestamp {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for CurrentTimestamp {
    fn name(&self) -> &str {
        "current_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(timestamp_type())
    }

    /// Never called: planning replaces the call by the query's start time ([`Self::simplify`]).
    /// Failing here (as DataFusion's `now()` does) keeps constant folding from evaluating each
    /// call at a different instant before that.
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::Internal(
            "CURRENT_TIMESTAMP() is replaced by the query's start time when planning".into(),
        ))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(start) = info.query_execution_start_time() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(start.timestamp_micros()), Some(UTC.into())),
            None,
        )))
    }
}

fn utc(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

fn micros_of(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// The weekday a `WEEK(<WEEKDAY>)` part starts on; plain WEEK starts on Sunday.
fn week_start(part: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    let inner = part.strip_prefix("WEEK")?.trim();
    if inner.is_empty() {
        return Some(Sun);
    }
    let day = inner.strip_prefix('(')?.strip_suffix(')')?.trim();
    Some(match day {
        "SUNDAY" => Sun,
        "MONDAY" => Mon,
        "TUESDAY" => Tue,
        "WEDNESDAY" => Wed,
        "THURSDAY" => Thu,
        "FRIDAY" => Fri,
        "SATURDAY" => Sat,
        _ => return None,
    })
}

/// The first day of the week (starting on `start`) holding `date`.
fn week_floor(date: NaiveDate, start: chrono::Weekday) -> NaiveDate {
    let back = (7 + date.weekday().num_days_from_monday() - start.num_days_from_monday()) % 7;
    date - Duration::days(i64::from(back))
}

/// Truncates a date to a date part coarser than a day.
fn truncate_date(date: NaiveDate, part: &str) -> Option<NaiveDate> {
    if let Some(start) = week_start(part) {
        return Some(week_floor(date, start));
    }
    match part {
        "DAY" => Some(date),
        "ISOWEEK" => Some(week_floor(date, chrono::Weekday::Mon)),
        "MONTH" => date.with_day(1),
        "QUARTER" => NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1),
        "YEAR" => NaiveDate::from_ymd_opt(date.year(), 1, 1),
        _ => None,
    }
}

const TRUNC_PARTS: &str = "MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR, DAY, WEEK, WEEK(<WEEKDAY>), ISOWEEK, MONTH, QUARTER or YEAR";

fn timestamp_trunc(args: &[ArrayRef]) -> Result<ArrayRef> {
    let ts = args[0].as_primitive::<TimestampMicrosecondType>();
    let parts = args[1].as_string::<i32>();
    let mut out = Vec::with_capacity(ts.len());
    for row in 0..ts.len() {
        if ts.is_null(row) || parts.is_null(row) {
            out.push(None);
            continue;
        }
        let part = parts.value(row).to_ascii_uppercase();
        let micros = ts.value(row);
        let fixed = match part.as_str() {
            "MICROSECOND" => Some(1),
            "MILLISECOND" => Some(1_000),
            "SECOND" => Some(1_000_000),
            "MINUTE" => Some(60_000_000),
            "HOUR" => Some(3_600_000_000),
            _ => None,
        };
        let value = match fixed {
            Some(unit) => micros.div_euclid(unit) * unit,
            None => {
                let date = utc(micros)
                    .ok_or_else(|| error("TIMESTAMP_TRUNC", "timestamp out of range"))?
                    .date_naive();
                let floor = truncate_date(date, &part).ok_or_else(|| {
                    error(
                        "TIMESTAMP_TRUNC",
                        format!("unsupported date part {part}; use {TRUNC_PARTS}"),
                    )
                })?;
                micros_of(floor)
            }
        };
        out.push(Some(value));
    }
    Ok(Arc::new(
        TimestampMicrosecondArray::from(out).with_timezone(UTC),
    ))
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date_of(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?)
}

fn days_of(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

fn date(args: &[ArrayRef]) -> Result<ArrayRef> {
    let input = &args[0];
    let out: Date32Array = match input.data_type() {
        DataType::Date32 => input.as_primitive::<Date32Type>().clone(),
        DataType::Utf8 => {
            let text = input.as_string::<i32>();
            let mut out = Vec::with_capacity(text.len());
            for row in 0..text.len() {
                if text.is_null(row) {
                    out.push(None);
                    continue;
                }
                let value = text.value(row);
                let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
                    .map_err(|_| error("DATE", format!("invalid date {value:?}")))?;
                out.push(Some(days_of(date)));
            }
            out.into()
        }
        _ => {
            let ts = input.as_primitive::<TimestampMicrosecondType>();
            ts.unary(|micros| i32::try_from(micros.div_euclid(MICROS_PER_DAY)).unwrap_or(i32::MAX))
        }
    };
    Ok(Arc::new(out))
}

fn date_diff(args: &[ArrayRef]) -> Result<ArrayRef> {
    let a = args[0].as_primitive::<Date32Type>();
    let b = args[1].as_primitive::<Date32Type>();
    let parts = args[2].as_string::<i32>();
    let mut out = Vec::with_capacity(a.len());
    for row in 0..a.len() {
        if a.is_null(row) || b.is_null(row) || parts.is_null(row) {
            out.push(None);
            continue;
        }
        let part = parts.value(row).to_ascii_uppercase();
        let (Some(x), Some(y)) = (date_of(a.value(row)), date_of(b.value(row))) else {
            return Err(error("DATE_DIFF", "date out of range"));
        };
        let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
        let value = match part.as_str() {
            "DAY" => i64::from(a.value(row)) - i64::from(b.value(row)),
            "MONTH" => months(x) - months(y),
            "QUARTER" => months(x).div_euclid(3) - months(y).div_euclid(3),
            "YEAR" => i64::from(x.year()) - i64::from(y.year()),
            _ => {
                let start = if part == "ISOWEEK" {
                    Some(chrono::Weekday::Mon)
                } else {
                    week_start(&part)
                };
                let start = start.ok_or_else(|| {
                    error(
                        "DATE_DIFF",
                        format!(
                            "unsupported date part {part}; use DAY, WEEK, WEEK(<WEEKDAY>), ISOWEEK, MONTH, QUARTER or YEAR"
                        ),
                    )
                })?;
                (week_floor(x, start) - week_floor(y, start)).num_days() / 7
            }
        };
        out.push(Some(value));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// Microseconds per date part TIMESTAMP_DIFF accepts.
fn micros_per(part: &str) -> Option<i64> {
    Some(match part.to_ascii_uppercase().as_str() {
        "MICROSECOND" => 1,
        "MILLISECOND" => 1_000,
        "SECOND" => 1_000_000,
        "MINUTE" => 60_000_000,
        "HOUR" => 3_600_000_000,
        "DAY" => MICROS_PER_DAY,
        _ => return None,
    })
}

/// TIMESTAMP_DIFF(a, b, part): whole `part`s from `b` to `a`, truncated toward zero.
fn timestamp_diff(args: &[ArrayRef]) -> Result<ArrayRef> {
    let a = args[0].as_primitive::<TimestampMicrosecondType>();
    let b = args[1].as_primitive::<TimestampMicrosecondType>();
    let part = args[2].as_string::<i32>();
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        if a.is_null(i) || b.is_null(i) || part.is_null(i) {
            out.push(None);
            continue;
        }
        let unit = micros_per(part.value(i)).ok_or_else(|| {
            error(
                "TIMESTAMP_DIFF",
                format!(
                    "unsupported date part {:?}; use MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR or DAY",
                    part.value(i)
                ),
            )
        })?;
        out.push(Some((a.value(i) - b.value(i)) / unit));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// UNIX_SECONDS and the like (TIMESTAMP to whole units since the epoch, rounded down as in
/// BigQuery) or, with `to_timestamp`, TIMESTAMP_SECONDS and the like (units to TIMESTAMP).
fn epoch_function(name: &'static str, to_timestamp: bool, micros_per_unit: i64) -> ScalarUDF {
    if to_timestamp {
        function(
            name,
            vec![vec![DataType::Int64]],
            timestamp_type(),
            move |args: &[ArrayRef]| {
                let units = args[0].as_primitive::<arrow::datatypes::Int64Type>();
                let mut out = Vec::with_capacity(units.len());
                for value in units {
                    out.push(match value {
                        Some(v) => Some(v.checked_mul(micros_per_unit).ok_or_else(|| {
                            error(&name.to_ascii_uppercase(), format!("{v} is out of range"))
                        })?),
                        None => None,
                    });
                }
                Ok(Arc::new(TimestampMicrosecondArray::from(out).with_timezone(UTC)) as ArrayRef)
            },
        )
    } else {
        function(
            name,
            vec![vec![timestamp_type()]],
            DataType::Int64,
            move |args: &[ArrayRef]| {
                let ts = args[0].as_primitive::<TimestampMicrosecondType>();
                let out: Int64Array = ts.unary(|m| m.div_euclid(micros_per_unit));
                Ok(Arc::new(out) as ArrayRef)
            },
        )
    }
}

/// `%E*S` of BigQuery (cctz): the seconds with as many fractional digits as needed, trailing
/// zeros removed (`05`, `05.25`, `05.123456`).
pub fn seconds_with_fraction(time: &DateTime<Utc>) -> String {
    let micros = time.timestamp_subsec_micros();
    let mut text = format!("{:02}", time.second());
    if micros != 0 {
        let fraction = format!("{micros:06}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text
}

/// Turns BigQuery's format elements into chrono's where they differ (for parsing; formatting
/// replaces `%E*S` first, see [`seconds_with_fraction`]).
fn chrono_format(format: &str) -> String {
    format
        .replace("%E*S", "%S%.f")
        .replace("%E3S", "%S%.3f")
        .replace("%E6S", "%S%.6f")
        .replace("%Ez", "%:z")
}

fn format_timestamp(args: &[ArrayRef]) -> Result<ArrayRef> {
    use std::fmt::Write;
    let formats = args[0].as_string::<i32>();
    let ts = args[1].as_primitive::<TimestampMicrosecondType>();
    let zones = zone_argument(args, 2);
    let mut out = Vec::with_capacity(ts.len());
    for row in 0..ts.len() {
        let zone = zone_at("FORMAT_TIMESTAMP", zones, row)?;
        let (Some(zone), true, true) = (zone, formats.is_valid(row), ts.is_valid(row)) else {
            out.push(None);
            continue;
        };
        let time = utc(ts.value(row))
            .ok_or_else(|| error("FORMAT_TIMESTAMP", "timestamp out of range"))?;
        let seconds = seconds_with_fraction(&time.with_timezone(&zone).with_timezone(&Utc));
        let format = chrono_format(&formats.value(row).replace("%E*S", &seconds));
        let is_utc = zones.is_none_or(|z| z.value(row).eq_ignore_ascii_case(UTC));
        let mut text = String::new();
        // chrono names UTC "UTC" (BigQuery's %Z) only through its own Utc zone.
        let written = if is_utc {
            write!(text, "{}", time.format(&format))
        } else {
            write!(text, "{}", time.with_timezone(&zone).format(&format))
        };
        written.map_err(|_| {
            error(
                "FORMAT_TIMESTAMP",
                format!("invalid format {:?}", formats.value(row)),
            )
        })?;
        out.push(Some(text));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// Parses `text` with `format` in `zone` (used when the format has no zone element).
fn parse_with_format(format: &str, text: &str, zone: &Tz) -> Option<i64> {
    if let Ok(time) = DateTime::parse_from_str(text, format) {
        return Some(time.with_timezone(&Utc).timestamp_micros());
    }
    let naive = NaiveDateTime::parse_from_str(text, format)
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, format)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    let local = zone.from_local_datetime(&naive).single()?;
    Some(local.with_timezone(&Utc).timestamp_micros())
}

fn parse_timestamp(args: &[ArrayRef]) -> Result<ArrayRef> {
    let formats = args[0].as_string::<i32>();
    let text = args[1].as_string::<i32>();
    let zones = zone_argument(args, 2);
    let mut out = Vec::with_capacity(text.len());
    for row in 0..text.len() {
        let zone = zone_at("PARSE_TIMESTAMP", zones, row)?;
        let (Some(zone), true, true) = (zone, formats.is_valid(row), text.is_valid(row)) else {
            out.push(None);
            continue;
        };
        let format = chrono_format(formats.value(row));
        let value = parse_with_format(&format, text.value(row), &zone).ok_or_else(|| {
            error(
                "PARSE_TIMESTAMP",
                format!(
                    "{:?} does not match the format {:?}",
                    text.value(row),
                    formats.value(row)
                ),
            )
        })?;
        out.push(Some(value));
    }
    Ok(Arc::new(
        TimestampMicrosecondArray::from(out).with_timezone(UTC),
    ))
}
