"""The one bounded, thread-safe LRU store behind the app's model cache and its memos."""
import threading

from webui.lru import LRU


def test_a_stored_value_is_not_computed_again():
    lru, calls = LRU(2), []
    assert lru.get("a", lambda: calls.append("a") or 1) == 1
    assert lru.get("a", lambda: calls.append("a") or 2) == 1
    assert calls == ["a"]


def test_the_least_recently_used_value_goes_first():
    lru = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.get("a", lambda: None)          # a is now the most recent
    lru.put("c", 3)
    assert list(lru.items) == ["a", "c"] and len(lru) == 2


def test_discard_drops_what_the_predicate_refuses():
    lru = LRU(5)
    for k in range(5):
        lru.put(k, k)
    lru.discard(lambda k: k % 2 == 0)
    assert list(lru.items) == [0, 2, 4]


def test_concurrent_use_stays_within_the_bound():
    lru = LRU(8)

    def work(offset):
        for i in range(500):
            lru.get((offset + i) % 50, lambda i=i: i)

    threads = [threading.Thread(target=work, args=(n * 7,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lru) <= 8
