"""Leases for once-per-cluster duties: acquire, renew, expire, take over, release (both
backends; PostgreSQL's workers racing for one lease are in test_postgres_workers.py)."""

from storage import Lease, Repositories

TTL = 10.0


async def test_a_free_lease_is_taken_and_others_are_refused(repos: Repositories) -> None:
    lease = await repos.leases.acquire("broadcast_feeder", "worker-a", TTL, now=100.0)
    assert lease == Lease("broadcast_feeder", "worker-a", 1, 100.0, 110.0)
    assert await repos.leases.acquire("broadcast_feeder", "worker-b", TTL, now=105.0) is None
    assert await repos.leases.current("broadcast_feeder", now=105.0) == lease
    # Another duty is another lease.
    other = await repos.leases.acquire("refund_poller", "worker-b", TTL, now=105.0)
    assert other is not None and other.holder == "worker-b"


async def test_the_holder_renews_and_acquiring_again_extends(repos: Repositories) -> None:
    await repos.leases.acquire("jobs", "worker-a", TTL, now=100.0)
    renewed = await repos.leases.renew("jobs", "worker-a", TTL, now=108.0)
    assert renewed == Lease("jobs", "worker-a", 1, 100.0, 118.0)
    again = await repos.leases.acquire("jobs", "worker-a", TTL, now=115.0)
    assert again == Lease("jobs", "worker-a", 1, 100.0, 125.0)  # same holding, same token
    assert await repos.leases.renew("jobs", "worker-b", TTL, now=116.0) is None


async def test_an_expired_lease_is_taken_over_with_a_new_token(repos: Repositories) -> None:
    await repos.leases.acquire("jobs", "worker-a", TTL, now=100.0)
    assert await repos.leases.current("jobs", now=110.0) is None  # expired at 110
    taken = await repos.leases.acquire("jobs", "worker-b", TTL, now=111.0)
    assert taken == Lease("jobs", "worker-b", 2, 111.0, 121.0)
    # The old holder finds out when it renews: it must stop the duty.
    assert await repos.leases.renew("jobs", "worker-a", TTL, now=112.0) is None
    assert not await repos.leases.release("jobs", "worker-a", now=112.0)
    # A holder whose lease expired and that nobody took gets it back as a new holding.
    assert await repos.leases.renew("jobs", "worker-b", TTL, now=131.0) is None
    back = await repos.leases.acquire("jobs", "worker-b", TTL, now=131.0)
    assert back == Lease("jobs", "worker-b", 3, 131.0, 141.0)


async def test_a_released_lease_is_free_at_once(repos: Repositories) -> None:
    await repos.leases.acquire("jobs", "worker-a", TTL, now=100.0)
    assert await repos.leases.release("jobs", "worker-a", now=101.0)
    assert await repos.leases.current("jobs", now=101.0) is None
    taken = await repos.leases.acquire("jobs", "worker-b", TTL, now=101.5)
    assert taken is not None and taken.token == 2  # tokens keep growing after a release
    assert await repos.leases.current("unknown", now=101.5) is None
