"""The fault test's checker finds each kind of violation (no cluster needed).

A checker that cannot fail proves nothing: feed it fabricated acknowledgements and
logs, one violation at a time, and see it named."""

from types import SimpleNamespace

from crash_load import value_of
from checker import check


def load_with(acked):
    log = SimpleNamespace(acked=dict(acked), errors=[])
    return SimpleNamespace(log=log, sent=[len(acked)], unflushed=[0])


A0, A1, A2 = value_of(0, 0), value_of(0, 1), value_of(0, 2)
B0 = value_of(1, 0)
GOOD_ACKED = {A0: (0, 0), B0: (0, 1), A1: (0, 2), A2: (1, 0)}
GOOD_LOGS = {0: [(0, A0), (1, B0), (2, A1)], 1: [(0, A2)]}


def test_a_clean_run_has_no_violations():
    assert check(load_with(GOOD_ACKED), GOOD_LOGS) == []


def test_an_acked_value_missing_from_the_log_is_found():
    logs = {0: [(0, A0), (1, B0)], 1: [(0, A2)]}
    assert any("not at their acked offset" in v for v in check(load_with(GOOD_ACKED), logs))


def test_an_acked_value_at_another_offset_is_found():
    logs = {0: [(0, A0), (1, B0), (3, A1)], 1: [(0, A2)]}
    assert any("not at their acked offset" in v for v in check(load_with(GOOD_ACKED), logs))


def test_two_values_acknowledged_at_one_offset_are_found():
    acked = dict(GOOD_ACKED, **{})
    acked[B0] = (0, 0)  # B0 and A0 both acknowledged at offset 0 of partition 0
    assert any("acknowledged to two values" in v for v in check(load_with(acked), GOOD_LOGS))


def test_an_offset_returned_twice_is_found():
    logs = {0: [(0, A0), (1, B0), (1, B0), (2, A1)], 1: [(0, A2)]}
    assert any("offset twice" in v for v in check(load_with(GOOD_ACKED), logs))


def test_a_value_stored_twice_is_found():
    logs = {0: [(0, A0), (1, B0), (2, A1), (3, A1)], 1: [(0, A2)]}
    assert any("stored twice" in v for v in check(load_with(GOOD_ACKED), logs))


def test_a_producer_out_of_order_within_a_partition_is_found():
    acked = {A0: (0, 1), B0: (0, 0), A1: (0, 2)}
    logs = {0: [(0, B0), (1, A1), (2, A0)]}
    violations = check(load_with({A1: (0, 1), A0: (0, 2), B0: (0, 0)}), logs)
    assert any("order violations" in v for v in violations), violations
    assert check(load_with(acked), {0: [(0, B0), (1, A0), (2, A1)]}) == []


def test_a_value_acked_without_an_offset_must_be_in_its_partition():
    # librdkafka's implicit ack: delivered, offset unknown (None).
    acked = dict(GOOD_ACKED)
    acked[A1] = (0, None)
    assert check(load_with(acked), GOOD_LOGS) == []
    assert any("without an offset are not in their partition" in v
               for v in check(load_with(acked), {0: [(0, A0), (1, B0)], 1: [(0, A2), (1, A1)]}))
