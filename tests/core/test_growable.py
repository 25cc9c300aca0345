import numpy as np
import pytest

from core.growable import MIN_CAPACITY, GrowableColumns


def test_appended_rows_survive_every_growth():
    # setup
    columns = GrowableColumns((np.int64, np.float64), capacity=MIN_CAPACITY)

    # execute
    for index in range(1000):
        columns.append(index, index / 2)

    # assert
    starts, halves = columns.rows()
    assert len(columns) == 1000 and columns.capacity >= 1000
    assert starts.tolist() == list(range(1000)) and halves[999] == 499.5
    assert starts.dtype == np.int64 and halves.dtype == np.float64 and columns.dtypes == (starts.dtype, halves.dtype)


def test_extend_adds_equal_length_columns_and_grows_to_fit():
    # setup
    columns = GrowableColumns((np.int64, np.int32), capacity=16)
    columns.append(7, 1)

    # execute
    columns.extend(np.arange(100), np.full(100, 3))

    # assert
    first, second = columns.rows()
    assert len(columns) == 101 and first[:3].tolist() == [7, 0, 1] and second[1:].tolist() == [3] * 100
    with pytest.raises(ValueError, match="2 arrays of equal length"):
        columns.extend(np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="2 arrays of equal length"):
        columns.extend(np.arange(3))
    assert len(columns) == 101


def test_reserve_makes_room_once_and_never_shrinks():
    # setup
    columns = GrowableColumns((np.int64,), capacity=16)
    columns.extend(np.arange(10))

    # execute
    columns.reserve(5000)
    for index in range(10, 5000):
        columns.append(index)
    columns.reserve(100)

    # assert: the 4990 appends fitted (growing would have doubled the capacity)
    assert columns.capacity == 5000
    assert columns.rows()[0].tolist() == list(range(5000))


def test_rows_and_views_are_ranges_of_the_prefix():
    # setup
    columns = GrowableColumns((np.int64, np.int64))
    columns.extend(np.arange(50), np.arange(50) * 10)

    # execute
    tail = columns.rows(45)
    middle = columns.view(10, 13)
    beyond = columns.rows(40, 1000)

    # assert
    assert tail[1].tolist() == [450, 460, 470, 480, 490]
    assert middle[0].tolist() == [10, 11, 12] and not middle[0].flags.writeable
    assert beyond[0].tolist() == list(range(40, 50))
    tail[0][:] = -1  # a copy: the columns do not change
    assert columns.rows(45)[0].tolist() == [45, 46, 47, 48, 49]


def test_a_view_taken_before_growth_keeps_its_rows():
    # setup
    columns = GrowableColumns((np.int64,), capacity=16)
    columns.extend(np.arange(16))
    before = columns.view()[0]

    # execute
    columns.extend(np.arange(16, 1000))

    # assert
    assert before.tolist() == list(range(16)) and columns.rows()[0].tolist() == list(range(1000))


def test_a_wrong_row_adds_nothing():
    # setup
    columns = GrowableColumns((np.int64, np.int64))

    # execute
    with pytest.raises(ValueError):
        columns.append(1)

    # assert
    assert len(columns) == 0


class ReadWhileStored:
    """A value that reads the columns while it is being stored: what another thread may do at that moment."""

    def __init__(self, columns: GrowableColumns, value: int):
        self.columns, self.value = columns, value
        self.seen: tuple[np.ndarray, ...] = ()

    def __index__(self) -> int:
        self.seen = self.columns.rows()
        return self.value


@pytest.mark.parametrize("rows_before", [5, MIN_CAPACITY])  # the second append grows the table first
def test_a_row_being_appended_is_not_yet_visible_and_earlier_rows_are(rows_before: int):
    # setup
    columns = GrowableColumns((np.int64, np.int64), capacity=MIN_CAPACITY)
    columns.extend(np.arange(rows_before), np.arange(rows_before) * 2)
    probe = ReadWhileStored(columns, 99)

    # execute
    columns.append(probe, 7)

    # assert
    first, second = probe.seen
    assert first.tolist() == list(range(rows_before)) and second.tolist() == [2 * i for i in range(rows_before)]
    assert columns.rows(rows_before)[0].tolist() == [99] and len(columns) == rows_before + 1
