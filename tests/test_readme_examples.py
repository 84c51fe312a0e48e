"""The reading and comparing of the README's example outputs (the digits job's real run checks them in
tests/test_end_to_end.py)."""

from __future__ import annotations

from decimal import Decimal

from service.jobs.router import EXAMPLE_SPEC
from tests.fixtures import DIGITS_SPEC
from tests.readme_examples import commented_json_after, curl_body, first_event_data, mismatches, parse_shown


def test_a_shown_value_matches_within_the_rounding_it_is_shown_with() -> None:
    shown = parse_shown('{"id": "...", "items": [{"epoch": 1, "loss": 2.88, "epoch_seconds": 0.05}, ...]}')

    assert shown == {"id": "...", "items": [{"epoch": 1, "loss": Decimal("2.88"), "epoch_seconds": Decimal("0.05")}]}
    assert mismatches(shown, {"id": "x", "items": [{"epoch": 1, "loss": 2.8792, "epoch_seconds": 9.0}, {}]}) == []
    assert mismatches(shown, {"id": "x", "items": [{"epoch": 1, "loss": 2.8751}]}) == []
    assert mismatches(shown, {"id": "x", "items": [{"epoch": 1, "loss": 2.8749}]}) == [
        ".items[0].loss: shown 2.88, really 2.8749"
    ]
    assert mismatches(shown, {"id": "x", "items": [{"epoch": 2, "loss": 2.88}]}) == [
        ".items[0].epoch: shown 1, really 2"
    ]
    assert mismatches({"status": "running"}, {"status": "succeeded"}) == [
        ".status: shown 'running', really 'succeeded'"
    ]


def test_the_readme_shows_the_digits_jobs_outputs_where_the_comparison_reads_them() -> None:
    page_items = commented_json_after('metrics?after_epoch=0"')["items"]
    job = commented_json_after('curl -s "http://127.0.0.1:8000/v1/jobs/$JOB"')

    assert page_items[0]["epoch"] == 1 and "val_loss" in page_items[0]
    assert {"status", "epochs_completed", "best_epoch", "test_metrics"} <= set(job)
    assert first_event_data()["epoch"] == 1


def test_the_readme_the_api_and_the_tests_show_one_digits_spec_examples_digits_json() -> None:
    assert curl_body("curl -s -X POST http://127.0.0.1:8000/v1/jobs") == DIGITS_SPEC
    assert EXAMPLE_SPEC == DIGITS_SPEC
