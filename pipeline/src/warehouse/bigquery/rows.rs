//! Rows between Arrow and BigQuery's REST JSON: result pages into `RecordBatch`es, batches into
//! insertAll rows, [`Params`] into `queryParameters`.
//!
//! BigQuery's REST results carry every value as a string inside `{"f":[{"v":...}]}` cells;
//! repeated fields are arrays of cells and records are nested `{"f":[...]}`. TIMESTAMPs are
//! requested as int64 microseconds (`formatOptions.useInt64Timestamp`), the one form both
//! BigQuery and its emulator return, and float seconds are accepted too.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListArray, RecordBatch,
    RecordBatchOptions, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::warehouse::{ParamValue, Params, WarehouseError};
use gma_store::schema::UTC;

/// One field of a BigQuery schema, as the REST API describes it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BqField {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) mode: Option<String>,
    #[serde(default)]
    pub(crate) fields: Vec<BqField>,
}

impl BqField {
    fn repeated(&self) -> bool {
        self.mode.as_deref() == Some("REPEATED")
    }

    fn required(&self) -> bool {
        self.mode.as_deref() == Some("REQUIRED")
    }

    /// The field's element: the same field, not repeated.
    fn element(&self) -> BqField {
        BqField {
            mode: Some("NULLABLE".into()),
            ..self.clone()
        }
    }

    /// The Arrow type of the field's values.
    fn arrow_type(&self) -> DataType {
        if self.repeated() {
            return DataType::List(Arc::new(Field::new(
                "item",
                self.element().arrow_type(),
                true,
            )));
        }
        match self.kind.as_str() {
            "INTEGER" | "INT64" => DataType::Int64,
            "FLOAT" | "FLOAT64" => DataType::Float64,
            "BOOLEAN" | "BOOL" => DataType::Boolean,
            "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            "DATE" => DataType::Date32,
            "RECORD" | "STRUCT" => DataType::Struct(self.arrow_children()),
            // STRING, JSON (its text), NUMERIC/BIGNUMERIC (exact decimal text), BYTES (base64),
            // DATETIME, TIME, GEOGRAPHY, INTERVAL: kept as BigQuery's text.
            _ => DataType::Utf8,
        }
    }

    fn arrow_children(&self) -> Fields {
        self.fields.iter().map(BqField::arrow_field).collect()
    }

    fn arrow_field(&self) -> Field {
        Field::new(&self.name, self.arrow_type(), !self.required())
    }
}

/// The Arrow schema of a result with BigQuery schema `fields`.
pub(crate) fn arrow_schema(fields: &[BqField]) -> SchemaRef {
    Arc::new(Schema::new(
        fields.iter().map(BqField::arrow_field).collect::<Vec<_>>(),
    ))
}

fn bad(field: &BqField, value: &Value, why: &str) -> WarehouseError {
    WarehouseError::Remote {
        backend: "bigquery",
        message: format!(
            "column {} ({}): cannot read {value} from the result: {why}",
            field.name, field.kind
        ),
    }
}

/// Converts one page of result rows (`rows` of jobs.query or getQueryResults) into a batch of
/// `schema`, which [`arrow_schema`] made from `fields`.
pub(crate) fn page_to_batch(
    schema: &SchemaRef,
    fields: &[BqField],
    rows: &[Value],
) -> Result<RecordBatch, WarehouseError> {
    let columns = fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let cells: Vec<&Value> = rows.iter().map(|row| cell(row, i)).collect();
            decode(field, &cells)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    // The result schema says REQUIRED where BigQuery knows a value is never NULL; a decoded
    // column is nullable only by its data, so build with the declared schema and check.
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

static NULL: Value = Value::Null;

/// The value of cell `i` of a `{"f":[{"v":...}]}` row.
fn cell(row: &Value, i: usize) -> &Value {
    row.get("f")
        .and_then(|f| f.get(i))
        .and_then(|c| c.get("v"))
        .unwrap_or(&NULL)
}

fn decode(field: &BqField, cells: &[&Value]) -> Result<ArrayRef, WarehouseError> {
    if field.repeated() {
        return decode_list(field, cells);
    }
    let text = |value: &Value| -> Result<Option<String>, WarehouseError> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Bool(_) | Value::Number(_) => Ok(Some(value.to_string())),
            _ => Err(bad(field, value, "expected a scalar")),
        }
    };
    let parsed = |parse: &dyn Fn(&str) -> Option<i64>| -> Result<Vec<Option<i64>>, WarehouseError> {
        cells
            .iter()
            .map(|v| match text(v)? {
                None => Ok(None),
                Some(s) => parse(&s)
                    .map(Some)
                    .ok_or_else(|| bad(field, v, "not a number")),
            })
            .collect()
    };
    Ok(match field.arrow_type() {
        DataType::Int64 => Arc::new(Int64Array::from(parsed(&|s| s.parse().ok())?)),
        DataType::Timestamp(_, _) => {
            Arc::new(TimestampMicrosecondArray::from(parsed(&timestamp_micros)?).with_timezone(UTC))
        }
        DataType::Date32 => Arc::new(Date32Array::from(
            parsed(&|s| {
                let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
                Some((date - epoch).num_days())
            })?
            .into_iter()
            .map(|d| d.and_then(|d| i32::try_from(d).ok()))
            .collect::<Vec<_>>(),
        )),
        DataType::Float64 => Arc::new(Float64Array::from(
            cells
                .iter()
                .map(|v| match text(v)? {
                    None => Ok(None),
                    Some(s) => float(&s)
                        .map(Some)
                        .ok_or_else(|| bad(field, v, "not a number")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        )),
        DataType::Boolean => Arc::new(BooleanArray::from(
            cells
                .iter()
                .map(|v| match text(v)?.as_deref() {
                    None => Ok(None),
                    Some("true") => Ok(Some(true)),
                    Some("false") => Ok(Some(false)),
                    Some(_) => Err(bad(field, v, "not a boolean")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        )),
        DataType::Struct(children) => decode_struct(field, children, cells)?,
        _ => Arc::new(StringArray::from(
            cells
                .iter()
                .map(|v| text(v))
                .collect::<Result<Vec<_>, _>>()?,
        )),
    })
}

/// A TIMESTAMP cell: int64 microseconds, or (without `useInt64Timestamp`) float seconds.
fn timestamp_micros(s: &str) -> Option<i64> {
    if let Ok(micros) = s.parse::<i64>() {
        return Some(micros);
    }
    let seconds = s.parse::<f64>().ok()?;
    let micros = (seconds * 1e6).round();
    (micros.is_finite() && micros.abs() < 9.2e18).then_some(micros as i64)
}

fn float(s: &str) -> Option<f64> {
    match s {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn decode_list(field: &BqField, cells: &[&Value]) -> Result<ArrayRef, WarehouseError> {
    let element = field.element();
    let mut offsets = Vec::with_capacity(cells.len() + 1);
    let mut valid = Vec::with_capacity(cells.len());
    let mut items: Vec<&Value> = Vec::new();
    offsets.push(0i32);
    for value in cells {
        match value {
            Value::Null => valid.push(false),
            Value::Array(elements) => {
                valid.push(true);
                items.extend(elements.iter().map(|e| e.get("v").unwrap_or(&NULL)));
            }
            other => return Err(bad(field, other, "expected an array")),
        }
        let end = i32::try_from(items.len()).map_err(|_| bad(field, &NULL, "page too large"))?;
        offsets.push(end);
    }
    let values = decode(&element, &items)?;
    let item = Arc::new(Field::new("item", element.arrow_type(), true));
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    Ok(Arc::new(ListArray::try_new(
        item,
        OffsetBuffer::new(offsets.into()),
        values,
        nulls,
    )?))
}

fn decode_struct(
    field: &BqField,
    children: Fields,
    cells: &[&Value],
) -> Result<ArrayRef, WarehouseError> {
    let mut valid = Vec::with_capacity(cells.len());
    for value in cells {
        match value {
            Value::Null => valid.push(false),
            Value::Object(_) => valid.push(true),
            other => return Err(bad(field, other, "expected a record")),
        }
    }
    let columns = field
        .fields
        .iter()
        .enumerate()
        .map(|(i, sub)| {
            let sub_cells: Vec<&Value> = cells.iter().map(|v| cell(v, i)).collect();
            decode(sub, &sub_cells)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    if columns.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(cells.len(), nulls)));
    }
    Ok(Arc::new(StructArray::try_new(children, columns, nulls)?))
}

/// The rows of `batch` as insertAll's `json` objects: NULLs left out, TIMESTAMPs as RFC 3339
/// strings (BigQuery reads numbers as seconds, the emulator as microseconds), INT64s as strings
/// (exact beyond 2^53), DATEs as `YYYY-MM-DD`.
pub(crate) fn batch_to_rows(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, String> {
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        for (row, out) in rows.iter_mut().enumerate() {
            if column.is_null(row) {
                continue;
            }
            let value = encode(field, column.as_ref(), row)?;
            out.insert(field.name().clone(), value);
        }
    }
    Ok(rows)
}

fn encode(field: &Field, column: &dyn Array, row: usize) -> Result<Value, String> {
    use arrow::array::AsArray;
    use arrow::datatypes as t;
    let value = match column.data_type() {
        DataType::Utf8 => json!(column.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => json!(column.as_string::<i64>().value(row)),
        DataType::Utf8View => json!(column.as_string_view().value(row)),
        DataType::Boolean => json!(column.as_boolean().value(row)),
        DataType::Int64 => json!(column.as_primitive::<t::Int64Type>().value(row).to_string()),
        DataType::Int32 => json!(column.as_primitive::<t::Int32Type>().value(row)),
        DataType::Int16 => json!(column.as_primitive::<t::Int16Type>().value(row)),
        DataType::Int8 => json!(column.as_primitive::<t::Int8Type>().value(row)),
        DataType::UInt32 => json!(column.as_primitive::<t::UInt32Type>().value(row)),
        DataType::UInt16 => json!(column.as_primitive::<t::UInt16Type>().value(row)),
        DataType::UInt8 => json!(column.as_primitive::<t::UInt8Type>().value(row)),
        DataType::Float64 => float_json(column.as_primitive::<t::Float64Type>().value(row)),
        DataType::Float32 => float_json(f64::from(
            column.as_primitive::<t::Float32Type>().value(row),
        )),
        DataType::Date32 => {
            let days = column.as_primitive::<t::Date32Type>().value(row);
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
                .ok_or_else(|| format!("column {}: date out of range", field.name()))?;
            json!(date.format("%Y-%m-%d").to_string())
        }
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => column.as_primitive::<t::TimestampSecondType>().value(row),
                TimeUnit::Millisecond => column
                    .as_primitive::<t::TimestampMillisecondType>()
                    .value(row),
                TimeUnit::Microsecond => column
                    .as_primitive::<t::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => column
                    .as_primitive::<t::TimestampNanosecondType>()
                    .value(row),
            };
            let time = match unit {
                TimeUnit::Second => DateTime::from_timestamp(raw, 0),
                TimeUnit::Millisecond => DateTime::from_timestamp_millis(raw),
                TimeUnit::Microsecond => DateTime::from_timestamp_micros(raw),
                TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(raw)),
            }
            .ok_or_else(|| format!("column {}: timestamp out of range", field.name()))?;
            json!(rfc3339(&time))
        }
        other => {
            return Err(format!(
                "column {} has Arrow type {other}, which gma does not write to BigQuery",
                field.name()
            ));
        }
    };
    Ok(value)
}

fn float_json(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value.is_infinite() {
        json!(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(value)
    }
}

/// A timestamp as BigQuery and the emulator both read it: RFC 3339, microseconds, `Z`.
pub(crate) fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `params` as jobs.query's `queryParameters` (named mode).
pub(crate) fn query_parameters(params: &Params) -> Vec<Value> {
    params
        .0
        .iter()
        .map(|(name, value)| {
            let scalar = |kind: &str, value: String| {
                json!({
                    "name": name,
                    "parameterType": {"type": kind},
                    "parameterValue": {"value": value},
                })
            };
            let array = |kind: &str, values: Vec<String>| {
                json!({
                    "name": name,
                    "parameterType": {"type": "ARRAY", "arrayType": {"type": kind}},
                    "parameterValue": {
                        "arrayValues": values.into_iter().map(|v| json!({"value": v})).collect::<Vec<_>>()
                    },
                })
            };
            match value {
                ParamValue::String(s) => scalar("STRING", s.clone()),
                ParamValue::Int64(i) => scalar("INT64", i.to_string()),
                ParamValue::Bool(b) => scalar("BOOL", b.to_string()),
                ParamValue::Timestamp(t) => scalar("TIMESTAMP", rfc3339(t)),
                ParamValue::StringArray(values) => array("STRING", values.clone()),
                ParamValue::Int64Array(values) => {
                    array("INT64", values.iter().map(i64::to_string).collect())
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    fn fields(json: Value) -> Vec<BqField> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn decodes_a_page_of_every_type() {
        let fields = fields(json!([
            {"name": "s", "type": "STRING", "mode": "NULLABLE"},
            {"name": "i", "type": "INTEGER", "mode": "REQUIRED"},
            {"name": "t", "type": "TIMESTAMP"},
            {"name": "f", "type": "FLOAT"},
            {"name": "b", "type": "BOOLEAN"},
            {"name": "d", "type": "DATE"},
            {"name": "a", "type": "INTEGER", "mode": "REPEATED"},
            {"name": "r", "type": "RECORD", "fields": [
                {"name": "x", "type": "INTEGER"}, {"name": "y", "type": "STRING"}]},
        ]));
        let rows = vec![
            json!({"f": [{"v": "a"}, {"v": "1"}, {"v": "1767225600123456"}, {"v": "1.5"},
                {"v": "true"}, {"v": "2026-01-02"}, {"v": [{"v": "1"}, {"v": "2"}]},
                {"v": {"f": [{"v": "7"}, {"v": "s"}]}}]}),
            json!({"f": [{"v": null}, {"v": "2"}, {"v": "1.7672256E9"}, {"v": "NaN"},
                {"v": null}, {"v": null}, {"v": []}, {"v": null}]}),
        ];
        let schema = arrow_schema(&fields);
        let batch = page_to_batch(&schema, &fields, &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "a");
        assert!(batch.column(0).is_null(1));
        assert_eq!(
            batch.column(1).as_primitive::<Int64Type>().values(),
            &[1, 2]
        );
        let t = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.values(), &[1_767_225_600_123_456, 1_767_225_600_000_000]);
        let d = batch
            .column(5)
            .as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!(d.value(0), 20455);
        let a = batch.column(6).as_list::<i32>();
        assert_eq!(a.value(0).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert_eq!(a.value(1).len(), 0);
        let r = batch.column(7).as_struct();
        assert_eq!(r.column(0).as_primitive::<Int64Type>().value(0), 7);
        assert!(r.is_null(1));
        assert!(!schema.field(1).is_nullable());
    }

    #[test]
    fn encodes_rows_for_insert_all() {
        let mut builder = gma_store::schema::EventBatchBuilder::new();
        let event = gma_store::testing::EventBuilder::new("d1", "{}")
            .hook_id(9_007_199_254_740_993)
            .received_micros(1_767_225_600_123_456)
            .build();
        builder.append(&event, "{}");
        let rows = batch_to_rows(&builder.finish().unwrap()).unwrap();
        assert_eq!(rows[0]["received"], json!("2026-01-01T00:00:00.123456Z"));
        assert_eq!(rows[0]["hook_id"], json!("9007199254740993"));
        assert_eq!(rows[0]["payload"], json!("{}"));
        assert!(!rows[0].contains_key("action"));
    }
}
