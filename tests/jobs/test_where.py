"""The `where` grammar of GET /v1/jobs (core/jobs/where.py): what each expression means, and where a
malformed one goes wrong."""

from __future__ import annotations

import pytest

from core.jobs.where import Condition, WhereError, parse


@pytest.mark.parametrize(
    ("expression", "condition"),
    [
        ("model.dropout>=0.2", Condition(("model", "dropout"), ">=", 0.2)),
        ("model.dropout >= 0.2", Condition(("model", "dropout"), ">=", 0.2)),
        ("training.epochs<-1e2", Condition(("training", "epochs"), "<", -100.0)),
        ("model.hidden_layers.0=128", Condition(("model", "hidden_layers", 0), "=", 128.0)),
        ("optimizer.name=adam", Condition(("optimizer", "name"), "=", "adam")),
        ('name!="a \\"quoted\\" name"', Condition(("name",), "!=", 'a "quoted" name')),
        ('optimizer.name="0.1"', Condition(("optimizer", "name"), "=", "0.1")),
        ("dataset.id=team:red/v2", Condition(("dataset", "id"), "=", "team:red/v2")),
        ("model.batch_norm=true", Condition(("model", "batch_norm"), "=", True)),
        ("optimizer.nesterov!=false", Condition(("optimizer", "nesterov"), "!=", False)),
        ("scheduler=null", Condition(("scheduler",), "=", None)),
        ("_x<=3", Condition(("_x",), "<=", 3.0)),
        ("x>0", Condition(("x",), ">", 0.0)),
    ],
)
def test_an_expression_is_a_path_an_operator_and_a_value(expression: str, condition: Condition) -> None:
    assert parse(expression) == condition


@pytest.mark.parametrize(
    ("expression", "position", "expected"),
    [
        ("", 1, "a field name"),
        (".dropout=1", 1, "a field name"),
        ("model..dropout=1", 7, "a field name"),
        ("model.dropout", 14, "an operator"),
        ("model.dropout~0.2", 14, "an operator"),
        ("model.dropout==0.2", 15, "a value"),
        ("model.dropout>=", 16, "a value"),
        ("model.dropout>=0.2x", 19, "the end"),
        ("model.dropout>=0.2 0.3", 20, "the end"),
        ("model.dropout>=.2", 16, "a value"),
        ("model.dropout>=01", 17, "the end"),
        ("optimizer.name=adam w", 21, "the end"),
        ('name="open', 6, 'a string closed by "'),
        ("model.dropout>=1e999", 16, "a number of at most"),
        ("model.dropout>=adam", 16, "a number: `>=` compares numbers only"),
        ("model.batch_norm<true", 18, "a number: `<` compares numbers only"),
        ("model.dropout>null", 15, "a number"),
        ("model.dropout>'0.2'", 15, "a value"),
    ],
)
def test_a_malformed_expression_names_the_character_where_it_goes_wrong(
    expression: str, position: int, expected: str
) -> None:
    with pytest.raises(WhereError) as raised:
        parse(expression)

    assert raised.value.position == position
    assert str(raised.value).startswith(f"`{expression}`: at character {position}, expected {expected}")


def test_an_expression_and_a_path_are_bounded() -> None:
    with pytest.raises(WhereError, match="at most 200 characters") as too_long:
        parse("a" * 196 + "=1.25")  # 201 characters
    with pytest.raises(WhereError, match="at most 16 segments") as too_deep:
        parse(".".join(["a"] * 17) + "=1")

    assert too_long.value.position == 201
    assert too_deep.value.position == 33  # the 17th segment
