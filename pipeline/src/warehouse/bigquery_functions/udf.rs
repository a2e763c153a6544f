//! A small [`ScalarUDFImpl`] for functions written as "arrays in, array out".

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// The body of a function: its arguments as arrays of equal length, its result as one array of
/// that length.
pub type Body = Arc<dyn Fn(&[ArrayRef]) -> Result<ArrayRef> + Send + Sync>;

/// A BigQuery function on DataFusion: a name, the argument type lists it accepts (DataFusion
/// coerces to them), a fixed result type and a body.
pub struct Function {
    name: &'static str,
    signature: Signature,
    return_type: DataType,
    body: Body,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Function {}

impl Hash for Function {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// A function named `name` (lowercase) taking one of `arguments`, returning `return_type`.
pub fn function(
    name: &'static str,
    arguments: Vec<Vec<DataType>>,
    return_type: DataType,
    body: impl Fn(&[ArrayRef]) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    let signature = Signature::one_of(
        arguments.into_iter().map(TypeSignature::Exact).collect(),
        Volatility::Immutable,
    );
    ScalarUDF::new_from_impl(Function {
        name,
        signature,
        return_type,
        body: Arc::new(body),
    })
}

/// A function named `name` with any `signature` DataFusion offers (variadic, ...).
pub fn function_with_signature(
    name: &'static str,
    signature: Signature,
    return_type: DataType,
    body: impl Fn(&[ArrayRef]) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(Function {
        name,
        signature,
        return_type,
        body: Arc::new(body),
    })
}

impl ScalarUDFImpl for Function {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = if args.args.is_empty() {
            Vec::new()
        } else {
            ColumnarValue::values_to_arrays(&args.args)?
        };
        let out = (self.body)(&arrays)?;
        finish(out, scalar && !args.args.is_empty())
    }
}

/// The result column, or a scalar when every argument was one.
pub fn finish(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}
