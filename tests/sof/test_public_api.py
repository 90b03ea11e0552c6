"""The public names of fhirlake.sof: what users import, and nothing private leaking."""

from __future__ import annotations

import fhirlake.sof


def test_public_names() -> None:
    assert set(fhirlake.sof.__all__) == {
        "Column", "CompiledView", "Constant", "FhirPathSyntaxError", "OutputColumn", "PathExpression",
        "RunResult", "Select", "SofError", "Tag", "ViewDefinition", "ViewDefinitionError",
        "ViewEvaluationError", "Where", "compile_view", "load_view", "parse_view", "resources_table", "run_view",
        "spark_view_dataframe",
    }
    for name in fhirlake.sof.__all__:
        assert getattr(fhirlake.sof, name) is not None


def test_errors_share_one_root() -> None:
    from fhirlake.errors import FhirlakeError

    for error in (fhirlake.sof.SofError, fhirlake.sof.ViewDefinitionError, fhirlake.sof.FhirPathSyntaxError,
                  fhirlake.sof.ViewEvaluationError):
        assert issubclass(error, FhirlakeError)
