"""Spark SQL's spelling of compiled views (sqlglot's Spark dialect and the overrides that keep
the compiler's list semantics, those of DuckDB, which it was written for) and the Spark schema
resource JSON is read with (:func:`spark_schema`, for ``from_json``).

* ``transform``'s index is 0-based in Spark, 1-based in the compiler's trees: the index
  parameter is shifted in the lambda's body;
* ``concat`` and ``flatten`` return NULL when any list is NULL in Spark; the compiler counts a
  NULL list as empty;
* ``size(NULL)`` is -1 outside ANSI mode: ``array_size`` is NULL for NULL in every mode;
* a safe cast must stay ``try_cast`` (ANSI mode, Spark 4's default, fails a plain cast);
* ``round``'s scale must be a constant: a computed one scales by a power of ten instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import rename_func
from sqlglot.dialects.spark import Spark
from sqlglot.generator import Generator
from sqlglot.generators.spark import SparkGenerator

from fhirlake.sof.compiler.sql import RaiseError
from fhirlake.sof.schema import Structure

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

__all__ = ["DIALECT", "SparkEngine", "spark_schema"]

_NOT_NULL = "__l"


def _transform_sql(self: Generator, expression: exp.Transform) -> str:
    function = expression.expression
    if isinstance(function, exp.Lambda) and len(function.expressions) == 2:
        index = function.expressions[1].name
        shifted = exp.Paren(this=exp.Add(this=exp.column(index), expression=exp.Literal.number(1)))

        def shift(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table and node.name == index:
                return shifted.copy()
            return node

        function = function.copy()
        function.set("this", function.this.transform(shift))
    return self.func("TRANSFORM", expression.this, function)


def _not_null_lists(values: exp.Expression) -> exp.Expression:
    keep = exp.Lambda(this=exp.Not(this=exp.Is(this=exp.column(_NOT_NULL), expression=exp.null())),
                      expressions=[exp.to_identifier(_NOT_NULL)])
    return exp.ArrayFilter(this=values, expression=keep)


def _flatten_sql(self: Generator, expression: exp.Flatten) -> str:
    return self.func("FLATTEN", _not_null_lists(expression.this))


def _concat_sql(self: Generator, expression: exp.ArrayConcat) -> str:
    lists = [expression.this, *expression.expressions]
    return self.func("CONCAT", *(exp.Coalesce(this=values, expressions=[exp.Array(expressions=[])]) for values in lists))


def _round_sql(self: Generator, expression: exp.Round) -> str:
    decimals = expression.args.get("decimals")
    if decimals is None or isinstance(decimals, exp.Literal):
        return self.func("ROUND", expression.this, decimals)
    # Spark wants a constant scale: scale by a power of ten, round to an integer, scale back.
    scale = exp.Pow(this=exp.Literal.number(10), expression=decimals)
    scaled = exp.Round(this=exp.Mul(this=exp.Paren(this=expression.this), expression=scale))
    return self.sql(exp.Div(this=scaled, expression=scale.copy()))


def _try_cast_sql(self: Generator, expression: exp.TryCast) -> str:
    return f"TRY_CAST({self.sql(expression, 'this')} AS {self.sql(expression, 'to')})"


class SparkEngine(Spark):
    """Spark SQL as fhirlake spells it."""

    class Generator(SparkGenerator):
        TRANSFORMS: ClassVar[dict[type[exp.Expr], Callable[..., str]]] = {
            **SparkGenerator.TRANSFORMS,
            exp.Transform: _transform_sql,
            exp.Flatten: _flatten_sql,
            exp.ArrayConcat: _concat_sql,
            exp.ArraySize: rename_func("ARRAY_SIZE"),
            exp.TryCast: _try_cast_sql,
            exp.Round: _round_sql,
            RaiseError: rename_func("RAISE_ERROR"),
        }


DIALECT = SparkEngine


def spark_schema(structure: Mapping[str, Structure]) -> StructType:
    """The Spark ``StructType`` of a view's read structure (:attr:`CompiledView.read_structure`).

    Scalars map by their DuckDB type (BOOLEAN, BIGINT, DOUBLE; text otherwise); ``JSON``, an
    element read only for its presence or as raw JSON, is a string: Spark's JSON reader gives a
    string field the raw JSON text of an object or array.
    """
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(name, _spark_type(value), nullable=True) for name, value in structure.items()])


def _spark_type(structure: Structure) -> DataType:
    from pyspark.sql.types import ArrayType, BooleanType, DoubleType, LongType, StringType

    if isinstance(structure, list):
        return ArrayType(_spark_type(structure[0]), containsNull=True)
    if isinstance(structure, dict):
        return spark_schema(structure)
    scalars: dict[str, DataType] = {"BOOLEAN": BooleanType(), "BIGINT": LongType(), "DOUBLE": DoubleType()}
    return scalars.get(structure, StringType())
