"""Values that count only once their batch is committed (versioned.py): a batch's writes read as
the values they replaced until the batch is committed, and never count when it dies uncommitted."""

from __future__ import annotations

from typing import Any

from services.regulator.versioned import COMMITS, Batches, effective, next_epoch, stamped


def _process(commits: dict[str, Any]) -> Batches:
    batches = Batches(commits)
    batches.open_epoch()
    return batches


def test_a_value_written_before_batches_existed_reads_as_it_is() -> None:
    assert effective({"placed": 3}, {}) == {"placed": 3}
    assert effective(True, {"1": 4}) is True
    assert effective(None, {}) is None


def test_a_batchs_writes_read_as_the_values_they_replace_until_it_is_committed() -> None:
    commits: dict[str, Any] = {}
    cells: dict[str, Any] = {"k": "old"}
    batches = _process(commits)

    batches.write(cells, "k", "new")
    batches.write(cells, "fresh", 1)
    assert (batches.read(cells, "k"), batches.read(cells, "fresh")) == ("old", None)

    batches.commit()
    assert (batches.read(cells, "k"), batches.read(cells, "fresh")) == ("new", 1)


def test_a_key_written_twice_in_one_batch_still_replaces_the_committed_value() -> None:
    commits: dict[str, Any] = {}
    cells: dict[str, Any] = {"k": "old"}
    batches = _process(commits)
    batches.write(cells, "k", "first")
    batches.write(cells, "k", "second")

    assert batches.read(cells, "k") == "old"
    batches.commit()
    assert batches.read(cells, "k") == "second"


def test_a_batch_that_died_uncommitted_never_counts_not_even_after_later_commits() -> None:
    commits: dict[str, Any] = {}
    cells: dict[str, Any] = {}
    first = _process(commits)
    first.write(cells, "k", "committed")
    first.commit()
    first.write(cells, "k", "lost")  # the process dies here: its batch 2 never commits
    first.write(cells, "other", "lost")

    second = _process(commits)
    assert second.epoch != first.epoch
    assert (second.read(cells, "k"), second.read(cells, "other")) == ("committed", None)
    second.write(cells, "third", 3)
    second.commit()
    second.commit()
    assert (second.read(cells, "k"), second.read(cells, "other"), second.read(cells, "third")) == (
        "committed",
        None,
        3,
    )


def test_each_process_records_its_epoch_before_it_writes() -> None:
    commits: dict[str, Any] = {COMMITS: {"epochs": {"1": 7, "2": 0}, "follow_up": ["k"]}}
    batches = _process(commits)

    assert batches.epoch == "3" == next_epoch({"1": 7, "2": 0})
    assert commits[COMMITS] == {"epochs": {"1": 7, "2": 0, "3": 0}, "follow_up": ["k"]}
    assert batches.batch == 1


def test_a_stamped_value_carries_the_one_it_replaces_so_nothing_nests() -> None:
    commits: dict[str, Any] = {}
    cells: dict[str, Any] = {}
    batches = _process(commits)
    for n in range(3):
        batches.write(cells, "k", n)
        batches.commit()

    assert cells["k"] == stamped(2, 1, (batches.epoch, 3))


def test_after_a_batch_failed_to_commit_the_next_one_takes_a_new_epoch_so_its_writes_stay_out() -> None:
    commits: dict[str, Any] = {}
    cells: dict[str, Any] = {}
    batches = _process(commits)
    failed = batches.epoch
    batches.write(cells, "k", "failed")  # its acknowledgement never came
    batches.abandon()

    batches.open_epoch()
    batches.write(cells, "other", "next")
    batches.commit()

    assert batches.epoch != failed
    assert (batches.read(cells, "k"), batches.read(cells, "other")) == (None, "next")


def test_a_marked_member_counts_once_its_batch_is_committed_and_never_when_it_died() -> None:
    commits: dict[str, Any] = {}
    ids: dict[str, Any] = {"before-batches": True}
    first = _process(commits)
    first.mark(ids, "a")
    assert not first.marked(ids, "a")
    first.commit()
    first.mark(ids, "lost")  # dies uncommitted

    second = _process(commits)
    second.mark(ids, "b")
    second.commit()

    assert [second.marked(ids, k) for k in ("before-batches", "a", "lost", "b", "never")] == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert all(type(ids[k]) is int for k in ("a", "lost", "b"))


def test_the_last_commits_follow_up_is_there_for_the_next_process() -> None:
    commits: dict[str, Any] = {}
    first = _process(commits)
    assert first.follow_up() is None
    first.commit(["110105/2026-12-03"])
    first.commit(["110108/2026-12-03"])

    second = _process(commits)
    assert second.follow_up() == ["110108/2026-12-03"]
    second.commit()
    assert second.follow_up() is None
